"""``rtplan structures``: targets on a planning CT, to RTSTRUCT."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError

from rtplan._shared.table import format_table
from rtplan.cli._pet_geometry import (
    add_exclude,
    add_registration,
    add_suv_overrides,
    exclude_sources,
    suv_overrides,
)
from rtplan.cli.options import (
    add_force,
    add_json,
    keywords_as_flags,
    new_command,
    non_negative_float_arg,
    parse_source,
    print_json,
    progress_printer,
)
from rtplan.errors import InputError

if TYPE_CHECKING:
    from rtplan.imaging.ct import CTSeries
    from rtplan.imaging.registration import RigidTransform, SpatialRegistration
    from rtplan.lesions import LesionsFile


def _margin(text: str) -> float | list[float]:
    parts = [p for p in text.replace(",", " ").split() if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a margin is one number of mm or six (R,L,A,P,S,I), got {text!r}"
        ) from None
    if len(values) == 1:
        return values[0]
    if len(values) == 6:
        return values
    raise argparse.ArgumentTypeError(
        f"a margin is one number of mm or six (R,L,A,P,S,I), got {len(values)} values"
    )


def _merge_spec(args: argparse.Namespace) -> LesionsFile:
    from rtplan.lesions import (
        ENISpec,
        LesionsFile,
        MarginSpec,
        load_lesions_file,
        validation_input_error,
    )

    spec = load_lesions_file(args.lesions)
    margins = spec.margins.model_dump()
    if args.ctv_margin_mm is not None:
        margins["ctv_margin_mm"] = args.ctv_margin_mm
    if args.ptv_margin_mm is not None:
        margins["ptv_margin_mm"] = args.ptv_margin_mm
    eni = spec.eni.model_dump() if spec.eni is not None else None
    if args.eni_ctv is not None or args.sib or args.eni_margin_mm is not None:
        eni = eni or {}
        if args.eni_ctv is not None:
            eni["ctv"] = parse_source(args.eni_ctv)
        if args.eni_margin_mm is not None:
            eni["margin_mm"] = args.eni_margin_mm
        if args.sib:
            eni["sib"] = True
    try:
        return LesionsFile(
            lesions=spec.lesions,
            margins=MarginSpec.model_validate(margins),
            eni=None if eni is None else ENISpec.model_validate(eni),
        )
    except ValidationError as exc:
        raise validation_input_error(exc, "margins/ENI options") from None


def _body_arg(text: str, ct: CTSeries) -> str | NDArray[np.bool_]:
    from rtplan.structures.rtstruct import rtstruct_masks

    if text in ("auto", "none"):
        return text
    path, sep, roi = text.rpartition(":")
    if not sep or not Path(path).is_file():
        raise InputError(
            f"--body {text!r}: use auto, none, or RTSTRUCT:ROI (e.g. RS.dcm:BODY)"
        )
    masks = rtstruct_masks(path, ct, [roi])
    return next(iter(masks.values()))


def run_structures(
    ct_dir: str | Path,
    lesions_path: str | Path,
    output: str | Path,
    *,
    spec: LesionsFile | None = None,
    body: str = "auto",
    inside_skin_mm: float = 0.0,
    pet_dir: str | Path | None = None,
    report: str | Path | None = None,
    force: bool = False,
    say: Callable[[str], None] | None = None,
    registration: str | Path | None = None,
    pet_to_ct_matrix: str | Path | None = None,
    suv_overrides: dict[str, Any] | None = None,
    exclude: Sequence[str] = (),
    series_uid: str | None = None,
    qa: str | Path | None = None,
) -> dict[str, Any]:
    """``rtplan structures`` from paths: read, :func:`~rtplan.structures.plan_targets`,
    :func:`~rtplan.structures.write_structures`; returns the report (JSON-ready).

    ``registration`` (DICOM SRO) or ``pet_to_ct_matrix`` (matrix file, PET -> CT) relate
    a PET in another frame of reference to the CT; ``suv_overrides`` are
    :func:`~rtplan.imaging.load_pet` keywords; ``exclude`` are ``--exclude`` sources;
    ``series_uid`` picks one CT series from a folder holding several. Outputs are
    checked before anything is computed.
    """
    from rtplan.imaging.ct import load_ct_series
    from rtplan.lesions import load_lesions_file
    from rtplan.structures.pipeline import (
        check_structure_outputs,
        input_paths,
        plan_targets,
        write_structures,
    )

    say = say or (lambda _m: None)
    spec = spec if spec is not None else load_lesions_file(lesions_path)
    if pet_dir is None:
        given = [f for f, v in (("--registration", registration),
                                ("--pet-to-ct-matrix", pet_to_ct_matrix),
                                ("--exclude", exclude), ("SUV overrides", suv_overrides)) if v]
        if given:
            raise InputError(f"{', '.join(given)} apply to the PET: give --pet DIR too")
    if registration and pet_to_ct_matrix:
        raise InputError("give either --registration or --pet-to-ct-matrix, not both")
    excl = exclude_sources(exclude)
    body_file = None if body in ("auto", "none") else (str(body).rpartition(":")[0] or body)
    inputs = input_paths(spec, ct_dir, lesions_path, pet_dir, registration, pet_to_ct_matrix,
                         body_file, exclude=excl)
    check_structure_outputs(output, report, inputs=inputs, overwrite=force, qa=qa)
    say(f"loading CT from {ct_dir}")
    ct = load_ct_series(ct_dir, series_uid=series_uid)
    pet = None
    reg: SpatialRegistration | RigidTransform | None = None
    if pet_dir is not None:
        from rtplan.imaging import load_matrix, load_pet, load_spatial_registration

        say(f"loading PET from {pet_dir} (SUVbw)")
        pet = load_pet(pet_dir, **(suv_overrides or {}))
        if registration:
            reg = load_spatial_registration(registration)
        elif pet_to_ct_matrix:
            reg = load_matrix(pet_to_ct_matrix)
    targets = plan_targets(ct, spec, body=_body_arg(body, ct), inside_skin_mm=inside_skin_mm,
                           pet=pet, registration=reg, exclude=excl, progress=say)
    rep = write_structures(targets, ct, output, report=report, overwrite=force,
                           inputs=inputs, progress=say, qa=qa)
    return rep.model_dump(mode="json", exclude={"pet"} if rep.pet is None else set())


def print_structures(rep: dict[str, Any]) -> None:
    """Print the structures table and the warnings of a report."""
    rows = [
        [s["name"], s["roi_type"], f"{s['volume_cc']:.2f}", s.get("margin") or "-",
         s["lesion_id"] or "-", s["source"]]
        for s in rep["structures"]
    ]
    print(format_table(["name", "type", "volume (cc)", "margin", "lesion", "made from"], rows))
    for w in rep["warnings"]:
        print(f"warning: {w}")


@keywords_as_flags
def _run_structures(args: argparse.Namespace) -> int:
    say = progress_printer(args.quiet)
    spec = _merge_spec(args)
    rep = run_structures(
        args.ct, args.lesions, args.output, spec=spec, body=args.body,
        inside_skin_mm=args.inside_skin_mm, pet_dir=args.pet, report=args.report,
        force=args.force, say=say, registration=args.registration,
        pet_to_ct_matrix=args.pet_to_ct_matrix, suv_overrides=suv_overrides(args),
        exclude=args.exclude, series_uid=args.series_uid, qa=args.qa,
    )
    if args.json:
        print_json(rep)
    else:
        print_structures(rep)
        print(f"wrote {args.output}" + (f" and {args.report}" if args.report else "")
              + (f"; QA images in {args.qa}/" if args.qa else ""))
    return 0


def register(sub: Any) -> None:
    """Add ``structures``."""
    p = new_command(
        sub,
        "structures",
        help="GTV/CTV/PTV, ENI and SIB targets on a planning CT, written as RTSTRUCT",
        description=(
            "Build the protocol's targets on a planning CT: per lesion GTV, CTV = GTV + "
            "ctv margin, PTV = CTV + ptv margin (mm; true 3D expansions); with an elective "
            "nodal CTV, PTV_ENI = CTV + eni margin; with --sib, the boost PTV (union of "
            "the lesion PTVs) and the elective PTV (PTV_ENI minus the boost PTV). "
            "Targets are cropped to the body. pet_seed lesions are delineated on the "
            "native PET grid (seed point_mm in the PET frame), outside --exclude regions, "
            "and mapped onto the CT (through --registration or --pet-to-ct-matrix when the "
            "frames of reference differ). Writes an RTSTRUCT referencing the CT; "
            "never overwrites without --force; never modifies inputs."
        ),
        example="rtplan structures --ct CT/ --lesions lesions.json -o RS.dcm\n"
        "rtplan structures --ct CT/ --lesions lesions.json --eni-ctv atlas.dcm:CTV_Elective "
        "--sib --ctv-margin-mm 2 --ptv-margin-mm 3 -o RS.dcm --report report.json\n"
        "rtplan structures --ct CT/ --lesions lesions.json --pet PET/ --registration REG.dcm "
        "--exclude RS.dcm:Bladder -o RS_pet.dcm",
    )
    p.add_argument("--ct", required=True, metavar="DIR", help="folder of the planning CT")
    p.add_argument("--series-uid", metavar="UID",
                   help="SeriesInstanceUID of the planning CT when the folder holds several "
                   "series (the error lists them)")
    p.add_argument("--lesions", required=True, metavar="FILE",
                   help="lesions JSON (schema: schemas/structures/lesions_file.json)")
    p.add_argument("--pet", metavar="DIR",
                   help="PET series for pet_seed lesion sources (their point_mm are LPS mm "
                   "in the PET's frame of reference); in another frame than the CT, give "
                   "--registration or --pet-to-ct-matrix")
    p.add_argument("--eni-ctv", metavar="SOURCE",
                   help="elective nodal CTV: RTSTRUCT:ROI or a NIfTI mask[.nii.gz[:label]]")
    p.add_argument("--ctv-margin-mm", type=_margin, metavar="M",
                   help="CTV margin in mm: one value or six 'R,L,A,P,S,I' (default 3)")
    p.add_argument("--ptv-margin-mm", type=_margin, metavar="M",
                   help="PTV margin in mm: one value or six 'R,L,A,P,S,I' (default 3)")
    p.add_argument("--eni-margin-mm", type=_margin, metavar="M",
                   help="ENI PTV margin in mm (default 5)")
    p.add_argument("--sib", action="store_true",
                   help="simultaneous integrated boost: boost PTV and elective PTV")
    p.add_argument("--body", default="auto", metavar="auto|none|RS:ROI",
                   help="crop targets to the body: outline from the CT (auto), none, or "
                   "an RTSTRUCT ROI")
    p.add_argument("--inside-skin-mm", type=non_negative_float_arg, default=0.0, metavar="MM",
                   help="pull targets this many mm inside the skin (default 0)")
    add_registration(p, "with --pet, when the PET and CT frames of reference differ")
    add_exclude(p)
    add_suv_overrides(p)
    p.add_argument("-o", "--output", required=True, metavar="RS.dcm", help="RTSTRUCT to write")
    p.add_argument("--report", metavar="FILE", help="also write a JSON report")
    p.add_argument("--qa", metavar="DIR",
                   help="also write QA images into DIR: per lesion axial, coronal and "
                   "sagittal CT through the GTV centre with the contours in ROI colours "
                   "(W400/L40, scale bar in mm) and an overview index.html (needs "
                   "pip install 'rtplan[plot]')")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    add_force(p)
    add_json(p)
    p.set_defaults(func=_run_structures)
