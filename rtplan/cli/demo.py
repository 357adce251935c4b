"""``rtplan demo``: the whole pipeline on a synthetic patient."""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rtplan._shared.table import format_table
from rtplan.cli.options import (
    add_force,
    add_json,
    keywords_as_flags,
    new_command,
    print_json,
    progress_printer,
)
from rtplan.cli.structures import print_structures
from rtplan.errors import InputError, OutputError, RTPlanError

if TYPE_CHECKING:
    from rtplan.demo import DemoPETComparison


@keywords_as_flags
def _run_demo(args: argparse.Namespace) -> int:
    from rtplan._shared.io import check_outputs

    say = progress_printer(args.quiet)
    out = Path(args.output)
    check_outputs(folders=[out])  # not a file, its parent writable
    if out.exists() and any(out.iterdir()) and not args.force:
        raise InputError(
            f"demo folder '{out}' is not empty: choose another folder or pass --force"
        )
    with _all_or_nothing(out):
        return _write_demo(args, out, say)


@contextlib.contextmanager
def _all_or_nothing(out: Path) -> Iterator[None]:
    """On any failure (disk full, Ctrl-C), remove every file and folder the demo created
    under ``out`` (and ``out`` and its parents if they were created): nothing partial is
    left. Files that existed before (``--force``) are kept."""
    missing = [p for p in (out, *out.parents) if not p.exists()]
    before = set(out.rglob("*")) if out.is_dir() else set()
    try:
        yield
    except BaseException as exc:
        if out.is_dir():
            for p in sorted(out.rglob("*"), key=lambda q: len(q.parts), reverse=True):
                if p in before:
                    continue
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
        for p in missing:  # out first, then its new parents
            with contextlib.suppress(OSError):
                p.rmdir()
        if isinstance(exc, OSError) and not isinstance(exc, RTPlanError):
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise OutputError(
                    f"cannot write the demo into '{out}': disk full (no space left on the "
                    "device): free some space or choose another folder; nothing was left "
                    "behind"
                ) from None
            raise OutputError(
                f"cannot write the demo into '{out}': {exc.strerror or exc}: choose "
                "another folder; nothing was left behind"
            ) from None
        raise


def _write_demo(args: argparse.Namespace, out: Path, say: Callable[[str], None]) -> int:
    from rtplan._shared.io import atomic_write_text
    from rtplan.cli.radiobiology import DEFAULT_COMPARE_AB
    from rtplan.demo import measure_demo_pet, run_demo_structures, write_demo_inputs
    from rtplan.radiobiology import PLAN_PRESETS, compare_plans, ranking_by_alpha_beta

    say("writing the synthetic pelvis CT, ENI atlas, lesions files and PSMA-PET")
    paths = write_demo_inputs(out, overwrite=args.force)
    rep = run_demo_structures(paths, out, overwrite=args.force, progress=say)
    comps = compare_plans([p.plan for p in PLAN_PRESETS.values()], list(DEFAULT_COMPARE_AB))
    ranking = ranking_by_alpha_beta(comps, list(DEFAULT_COMPARE_AB))
    atomic_write_text(
        out / "schedules.json",
        json.dumps({"plans": [c.model_dump() for c in comps],
                    "lesion_ranking": {str(k): v for k, v in ranking.items()}}, indent=2)
        + "\n",
        overwrite=args.force,
    )
    say("delineating the PET lesions and comparing them with the known truth")
    pet_cmp = measure_demo_pet(paths["pet"], paths["lesions_pet"], paths["pet_truth"])
    pet_json = pet_cmp.model_dump(mode="json")
    atomic_write_text(out / "pet_report.json", json.dumps(pet_json, indent=2) + "\n",
                      overwrite=args.force)
    if args.json:
        print_json({"structures": rep, "schedules": [c.model_dump() for c in comps],
                    "pet": pet_json})
        return 0
    print(f"demo patient written to {out}/ (ct/, eni_atlas.dcm, lesions.json, pet/, "
          "pet_truth.json, lesions_pet.json)\n")
    print_structures(rep)
    print("\nschedules (EQD2 in Gy to the lesion / elective nodes):")
    rows = []
    for c in comps:
        for lv in c.levels:
            rows.append([c.plan, c.fraction_category, lv.level,
                         *[f"{r.eqd2_gy:.2f}" for r in lv.results]])
    print(format_table(["plan", "category", "level",
                        *[f"a/b={ab:g}" for ab in DEFAULT_COMPARE_AB]], rows))
    _print_pet(pet_cmp)
    print(f"\nwrote {out / 'RS_rtplan.dcm'}, {out / 'report.json'}, {out / 'schedules.json'}, "
          f"{out / 'pet_report.json'}")
    if (out / "qa" / "index.html").is_file():
        print(f"structure QA images: {out / 'qa' / 'index.html'}")
    return 0


def _print_pet(cmp: DemoPETComparison) -> None:
    print(f"\nPET lesions (SUVbw; Gaussian blur FWHM {cmp.fwhm_mm:g} mm, 4 mm voxels, "
          f"background SUV {cmp.background_suv:g}) versus the known truth:")
    rows = [
        [c.id, c.site, f"{c.true_suv:g}", f"{c.recovery_coefficient:.3f}",
         f"{c.expected_suv_max:.2f}", f"{c.suv_max:.2f}", f"{c.suv_max_ratio:.2f}",
         f"{c.true_volume_cc:.2f}", f"{c.volume_cc:.2f}", f"{c.volume_ratio:.2f}",
         "PV" if c.partial_volume else ""]
        for c in cmp.lesions
    ]
    print(format_table(["lesion", "site", "true SUV", "RC", "expected max", "SUVmax",
                        "ratio", "true cc", "volume cc", "ratio", "flag"], rows))
    print("expected max = background + (true SUV - background) x RC, the blurred value at "
          "the sphere centre; SUVmax is lower again by the averaging over 4 mm voxels.\n"
          "PV: equivalent diameter < 2 x FWHM, threshold volume unreliable.")
    for c in cmp.lesions:
        if c.hot_voxels_left_out:
            print(f"  {c.id}: {c.hot_voxels_left_out} voxels >= its threshold "
                  f"{c.threshold_suv:.2f} near the seed are not connected to it (the "
                  "bladder) and were left out")


def register(sub: Any) -> None:
    """Add ``demo``."""
    p = new_command(
        sub,
        "demo",
        help="synthetic pelvis patient: structure pipeline with SIB, schedule comparison, "
        "PSMA-PET lesions versus known truth",
        description=(
            "Build a synthetic pelvis-like patient (CT series with body, bones, rectal gas, "
            "a couch; four PSMA-positive lesions at different sites; an elective nodal "
            "CTV atlas), run the structure pipeline with ENI and SIB (margins 3/3 mm, ENI "
            "5 mm) and the schedule comparison (EQD2 in Gy), and write the RTSTRUCT, a "
            "JSON report and the comparison into DIR. It also writes a synthetic "
            "68Ga-PSMA-PET of the patient (pet/: 4 mm voxels, same frame of reference; "
            "uniform spheres of known SUV blurred by a 6 mm FWHM Gaussian, a hot bladder "
            "next to the prostate-bed lesion), its truth (pet_truth.json) and the lesions "
            "as PET seeds (lesions_pet.json), delineates the lesions on the PET "
            "(background-adaptive 40 %) and compares SUVmax with the analytic recovery of "
            "a blurred sphere and the delineated volume with the true volume "
            "(pet_report.json)."
        ),
        example="rtplan demo -o demo-out",
    )
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    add_force(p)
    add_json(p)
    p.set_defaults(func=_run_demo)
