"""``rtplan lesions``: delineate and measure PSMA-PET lesions from seed points."""

from __future__ import annotations

import argparse
from typing import Any

from rtplan._shared.table import format_table
from rtplan.cli._pet_geometry import (
    add_exclude,
    add_registration,
    add_suv_overrides,
    build_exclusion,
    load_registration,
    suv_overrides,
)
from rtplan.cli.options import (
    add_json,
    keywords_as_flags,
    new_command,
    positive_float_arg,
    print_json,
)
from rtplan.lesions import Lesion


def register(subparsers: Any) -> None:
    """Add the ``lesions`` command."""
    from rtplan.imaging.pet_lesions import THRESHOLD_PRESETS, ThresholdPreset
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
            "oligometastatic check (at most 5 metastases). Seed points (point_mm) are LPS "
            "mm in the PET's frame of reference. --exclude keeps delineations out of hot "
            "organs (bladder): an RTSTRUCT ROI in another frame (the planning CT's) needs "
            "--registration or --pet-to-ct-matrix.\n\n"
            "Thresholds (a source's \"preset\", or \"method\" and \"level\"; --preset "
            "for sources that set none):\n"
            "  adaptive   background_adaptive 0.40: B + 0.4 (SUVmax - B), the default.\n"
            "             No PSMA validation known; FDG/18F phantom basis: 41 +/- 2.5 % of\n"
            "             the background-subtracted signal (Radiother Oncol 2006,\n"
            "             PubMed 16876272).\n"
            "  sensitive  percent_max 0.20 and\n"
            "  specific   percent_max 0.45: 20 % of SUVmax gave 100 % sensitivity and\n"
            "             40-50 % 100 % specificity against histology for intraprostatic\n"
            "             [68Ga]PSMA-11 tumours (Zamboglou et al., Radiother Oncol\n"
            "             2019;141:208-213).\n\n"
            "--candidates lists connected regions with SUV >= 3 (a configurable convention "
            "of rtplan, not a published cut-off) as suggestions for review; they are never "
            "accepted automatically. Regions that overlap a delineated lesion (the lesion "
            "and its partial-volume rim) are reported as already delineated, not suggested."
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
    p.add_argument("--fwhm-mm", type=positive_float_arg, default=6.0, metavar="MM",
                   help="PET resolution (FWHM, mm) for the partial-volume flag (default 6)")
    p.add_argument("--candidates", type=positive_float_arg, nargs="?", const=3.0, default=None,
                   metavar="SUV", help="also list regions with SUV >= this (default 3, a "
                   "convention) as suggestions for review")
    p.add_argument(
        "--preset", choices=[t.value for t in ThresholdPreset], default=None,
        help="threshold for pet_seed sources that set no preset, method or level: "
        + ", ".join(f"{k} ({m} {v:g})" for k, (m, v) in THRESHOLD_PRESETS.items())
        + "; default: the source's own, else adaptive",
    )
    add_suv_overrides(p)
    add_exclude(p)
    add_registration(p, "only for --exclude RTSTRUCT ROIs drawn in another frame")
    add_json(p)
    p.set_defaults(func=run)


def _read_lesions(path: str) -> list[Lesion]:
    from rtplan.lesions import load_lesions_file

    return list(load_lesions_file(path).lesions)


@keywords_as_flags
def run(args: argparse.Namespace) -> int:
    """Run ``rtplan lesions``."""
    from rtplan.imaging.pet import load_pet
    from rtplan.imaging.pet_lesions import PETSeedSource, measure_pet_lesions

    lesions = _read_lesions(args.lesions)
    seeds = [x.source for x in lesions if isinstance(x.source, PETSeedSource)]
    n_default = sum(not s.gives_threshold for s in seeds)
    registration, matrix = load_registration(args)
    pet = load_pet(args.pet, args.normalization, series_uid=args.series_uid,
                   **suv_overrides(args))
    excl = build_exclusion(args.exclude, pet, registration=registration, transform=matrix)
    report = measure_pet_lesions(
        pet.suv, pet.grid, lesions, fwhm_mm=args.fwhm_mm, normalization=pet.normalization.value,
        candidates_suv=args.candidates, exclusion_mask=None if excl is None else excl.mask,
        default_preset=args.preset,
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
            ("" if r.preset is None else f"{r.preset.value}: ")
            + f"{r.method.value} {r.level:g} (>= {r.threshold_suv:.2f})",
            "PV" if m.partial_volume_warning else "",
        ])
    unit = "g/ml" if report.normalization != "bsa" else "cm2/ml"
    print(f"SUV{report.normalization} ({unit}) of {args.pet}: " + "; ".join(pet.rules))
    for h in pet.heuristics:
        print(f"  heuristic: {h}")
    if args.preset is not None:
        print(f"--preset {args.preset} applied to {n_default} of {len(seeds)} pet_seed "
              "lesions (the others set their own threshold)")
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
    if args.candidates is not None:
        if report.candidates:
            print(f"candidates for review (SUV >= {args.candidates:g}; suggestions only, "
                  "not targets):")
            print(format_table(
                ["#", "peak x,y,z mm", "centroid x,y,z mm", "SUVmax", "volume cc"],
                [[str(i + 1), ", ".join(f"{v:.1f}" for v in cand.peak_point_mm),
                  ", ".join(f"{v:.1f}" for v in cand.centroid_mm),
                  f"{cand.suv_max:.2f}", f"{cand.volume_cc:.2f}"]
                 for i, cand in enumerate(report.candidates)],
            ))
        else:
            print(f"no candidate: every region with SUV >= {args.candidates:g} overlaps a "
                  "delineated lesion or the exclusion")
        if report.delineated_regions:
            print("already delineated (lesion with its rim, not suggested): " + "; ".join(
                f"{'+'.join(c.delineated_as)} region {c.volume_cc:.2f} cc, "
                f"SUVmax {c.suv_max:.2f}" for c in report.delineated_regions))
    return 0
