"""``rtplan lesions``: delineate and measure PSMA-PET lesions from seed points."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rtplan._shared.table import format_table
from rtplan.cli._pet_geometry import (
    add_exclude,
    add_registration,
    add_suv_overrides,
    build_exclusion,
    load_registration,
    suv_overrides,
)
from rtplan.cli.options import add_json, new_command, print_json
from rtplan.errors import InputError, from_validation_error


class _LesionsFile(BaseModel):
    """The part of the lesions file this command reads (other sections are ignored)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    lesions: list[Any] = Field(min_length=1)


def register(subparsers: Any) -> None:
    """Add the ``lesions`` command."""
    from rtplan.imaging.suv import SUVNormalization

    p = new_command(
        subparsers,
        "lesions",
        help="delineate and measure PSMA-PET lesions from seed points (SUV table)",
        description=(
            "Read a PET series, convert it to SUV (vendor-neutral algorithm of the SUV "
            "DRO manual), delineate every lesion of the lesions file whose source is "
            '{"kind": "pet_seed", ...} on the PET grid, and print SUVmax, SUVpeak (1 ml), '
            "SUVmean, metabolic volume (cc), equivalent diameter (mm), miTNM label and the "
            "oligometastatic check (at most 5 metastases). SUV >= 3 regions can be listed "
            "as suggestions with --candidates; they are never accepted automatically. "
            "Seed points (point_mm) are LPS mm in the PET's frame of reference. --exclude "
            "keeps delineations out of hot organs (bladder): an RTSTRUCT ROI in another "
            "frame (the planning CT's) needs --registration or --pet-to-ct-matrix."
        ),
        example="rtplan lesions --pet PET/ --lesions lesions.json --weight-kg 82 --json\n"
        "rtplan lesions --pet PET/ --lesions lesions.json --exclude RS_ct.dcm:Bladder "
        "--registration REG.dcm",
    )
    p.add_argument("--pet", required=True, metavar="DIR", help="folder of the PET series")
    p.add_argument("--lesions", required=True, metavar="FILE", help="lesions file (JSON)")
    p.add_argument(
        "--normalization", choices=[n.value for n in SUVNormalization], default="bw",
        help="SUV normalization (default bw: body weight)",
    )
    p.add_argument("--series-uid", metavar="UID", help="PET series to use if there are several")
    p.add_argument("--fwhm-mm", type=float, default=6.0, metavar="MM",
                   help="PET resolution (FWHM, mm) for the partial-volume flag (default 6)")
    p.add_argument("--candidates", type=float, nargs="?", const=3.0, default=None,
                   metavar="SUV", help="also list regions with SUV >= this (default 3) as "
                   "suggestions for review")
    add_suv_overrides(p)
    add_exclude(p)
    add_registration(p, "only for --exclude RTSTRUCT ROIs drawn in another frame")
    add_json(p)
    p.set_defaults(func=run)


def _read_lesions(path: str) -> list[Any]:
    from rtplan.imaging.pet_lesions import PETLesion

    file = Path(path)
    if not file.is_file():
        raise InputError(f"lesions file {path!r} not found: give the path of the JSON file")
    try:
        raw = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"lesions file {path!r} is not valid JSON: {exc}") from None
    try:
        doc = _LesionsFile.model_validate(raw)
        return [PETLesion.model_validate(item) for item in doc.lesions]
    except ValidationError as exc:
        raise from_validation_error(exc, f"lesions file {path!r}") from None


def run(args: argparse.Namespace) -> int:
    """Run ``rtplan lesions``."""
    from rtplan.imaging.pet import load_pet
    from rtplan.imaging.pet_lesions import measure_pet_lesions

    lesions = _read_lesions(args.lesions)
    registration, matrix = load_registration(args)
    pet = load_pet(args.pet, args.normalization, series_uid=args.series_uid,
                   **suv_overrides(args))
    excl = build_exclusion(args.exclude, pet, registration=registration, transform=matrix)
    report = measure_pet_lesions(
        pet.suv, pet.grid, lesions, fwhm_mm=args.fwhm_mm, normalization=pet.normalization.value,
        candidates_suv=args.candidates, exclusion_mask=None if excl is None else excl.mask,
    )
    if args.json:
        payload = report.model_dump(mode="json")
        payload["suv"] = {
            "series_instance_uid": pet.series_instance_uid,
            "rules": list(pet.rules),
            "heuristics": list(pet.heuristics),
            "first_slice": pet.provenance[0].model_dump(mode="json"),
        }
        payload["exclusion"] = None if excl is None else {
            "sources": list(excl.parts), "pet_voxels": excl.n_voxels}
        print_json(payload)
        return 0
    rows = []
    for r in report.lesions:
        m = r.measures
        rows.append([
            r.id, r.site.value, r.mitnm, f"{m.suv_max:.2f}",
            "-" if m.suv_peak is None else f"{m.suv_peak:.2f}", f"{m.suv_mean:.2f}",
            f"{m.volume_cc:.2f}", f"{m.equivalent_diameter_mm:.1f}",
            f"{r.method.value} {r.level:g} (>= {r.threshold_suv:.2f})",
            "PV" if m.partial_volume_warning else "",
        ])
    unit = "g/ml" if report.normalization != "bsa" else "cm2/ml"
    print(f"SUV{report.normalization} ({unit}) of {args.pet}: " + "; ".join(pet.rules))
    for h in pet.heuristics:
        print(f"  heuristic: {h}")
    if excl is not None:
        print(f"excluded ({excl.n_voxels} PET voxels): " + "; ".join(excl.parts))
    if rows:
        print(format_table(
            ["lesion", "site", "miTNM", "SUVmax", "SUVpeak", "SUVmean", "volume cc",
             "diam mm", "threshold", "flag"], rows))
    else:
        print("no pet_seed lesion to delineate")
    for r in report.lesions:
        for w in r.warnings:
            print(f"  {r.id}: {w}")
    if report.not_on_pet:
        print("not delineated on PET (source is not pet_seed): " + ", ".join(report.not_on_pet))
    c = report.oligometastatic
    print(f"metastases: {c.n_metastases} (oligometastatic: at most {c.max_metastases}): "
          + ("yes" if c.oligometastatic else f"NO - {c.warning}"))
    if report.candidates:
        print("candidates for review (suggestions only, not targets):")
        print(format_table(
            ["#", "peak x,y,z mm", "SUVmax", "volume cc"],
            [[str(i + 1), ", ".join(f"{v:.1f}" for v in cand.peak_point_mm),
              f"{cand.suv_max:.2f}", f"{cand.volume_cc:.2f}"]
             for i, cand in enumerate(report.candidates)],
        ))
    return 0
