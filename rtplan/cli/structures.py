"""``rtplan structures``: targets on a planning CT, to RTSTRUCT."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rtplan._shared.table import format_table
from rtplan.cli._pet_geometry import (
    add_exclude,
    add_registration,
    add_suv_overrides,
    suv_overrides,
)
from rtplan.cli.options import add_force, add_json, new_command, print_json
from rtplan.errors import InputError


def _progress(quiet: bool):
    start = time.perf_counter()

    def say(msg: str) -> None:
        if not quiet:
            print(f"[{time.perf_counter() - start:6.1f} s] {msg}", file=sys.stderr, flush=True)

    return say


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


def _eni_source(text: str, option: str = "--eni-ctv") -> dict:
    """``RS.dcm:ROI`` -> rtstruct source; ``mask.nii.gz[:label]`` -> mask source."""
    low = text.lower()
    if ".nii" in low:
        path, _, label = text.partition(".nii")
        rest = label
        ext = ".nii.gz" if rest.startswith(".gz") else ".nii"
        rest = rest[3:] if rest.startswith(".gz") else rest
        src: dict[str, Any] = {"kind": "mask", "path": path + ext}
        if rest.startswith(":") and rest[1:]:
            src["label"] = int(rest[1:])
        return src
    path, sep, roi = text.rpartition(":")
    if not sep or not path or not roi:
        raise InputError(
            f"{option} {text!r}: give RTSTRUCT:ROI (e.g. RS.dcm:Bladder) or a NIfTI mask "
            "(mask.nii.gz[:label])"
        )
    return {"kind": "rtstruct", "path": path, "roi": roi}


def _merge_spec(args: argparse.Namespace):
    from rtplan.structures.spec import (
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
            eni["ctv"] = _eni_source(args.eni_ctv)
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


def _body_arg(text: str, ct: Any) -> Any:
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


def _input_paths(ct_dir, lesions_path, spec, *, body="auto", pet_dir=None,
                 registration=None, pet_to_ct_matrix=None, exclude=()) -> list:
    """Every file or folder ``rtplan structures`` reads (outputs may be none of them)."""
    from rtplan.structures.spec import MaskSource, RTStructSource

    paths = [ct_dir, lesions_path, pet_dir, registration, pet_to_ct_matrix]
    sources = [lesion.source for lesion in spec.lesions]
    if spec.eni is not None and spec.eni.ctv is not None:
        sources.append(spec.eni.ctv)
    paths += [src.path for src in sources if isinstance(src, RTStructSource | MaskSource)]
    for text in exclude:
        try:
            paths.append(_eni_source(text, option="--exclude")["path"])
        except InputError:
            pass  # reported when the exclusion is read
    if body not in ("auto", "none"):
        paths.append(str(body).rpartition(":")[0] or body)
    return [p for p in paths if p]


def run_structures(
    ct_dir: str | Path,
    lesions_path: str | Path,
    output: str | Path,
    *,
    spec: Any = None,
    body: str = "auto",
    inside_skin_mm: float = 0.0,
    pet_dir: str | Path | None = None,
    report: str | Path | None = None,
    force: bool = False,
    say=None,
    registration: str | Path | None = None,
    pet_to_ct_matrix: str | Path | None = None,
    suv_overrides: dict | None = None,
    exclude: tuple[str, ...] | list[str] = (),
    series_uid: str | None = None,
) -> dict:
    """The whole structure pipeline: load, build, contour, write RTSTRUCT (+ report).

    ``registration`` (DICOM SRO) or ``pet_to_ct_matrix`` (matrix file, PET -> CT) relate
    a PET in another frame of reference to the CT; ``suv_overrides`` are
    :func:`~rtplan.imaging.load_pet` keywords; ``exclude`` are ``--exclude`` sources;
    ``series_uid`` picks one CT series from a folder holding several. Outputs that are
    one of the inputs (or lie in an input folder) are refused, even with ``force``.
    """
    from rtplan._shared.io import atomic_write_text, check_not_input, check_writable
    from rtplan.errors import OutputError
    from rtplan.imaging.ct import load_ct_series
    from rtplan.structures.rtstruct import write_rtstruct
    from rtplan.structures.spec import load_lesions_file
    from rtplan.structures.targets import build_targets, targets_to_rois

    say = say or (lambda _m: None)
    spec = spec if spec is not None else load_lesions_file(lesions_path)
    inputs = _input_paths(ct_dir, lesions_path, spec, body=body, pet_dir=pet_dir,
                          registration=registration, pet_to_ct_matrix=pet_to_ct_matrix,
                          exclude=exclude)
    check_not_input(output, *inputs)
    check_writable(output, overwrite=force)
    if report is not None:
        check_not_input(report, *inputs)
        if Path(report).resolve() == Path(output).resolve():
            raise OutputError(
                f"--report '{report}' is the RTSTRUCT output (-o) too: give two different files"
            )
        check_writable(report, overwrite=force)
    say(f"loading CT from {ct_dir}")
    ct = load_ct_series(ct_dir, series_uid=series_uid)
    pet = tf = excl = None
    if pet_dir is None:
        given = [f for f, v in (("--registration", registration),
                                ("--pet-to-ct-matrix", pet_to_ct_matrix),
                                ("--exclude", exclude), ("SUV overrides", suv_overrides)) if v]
        if given:
            raise InputError(f"{', '.join(given)} apply to the PET: give --pet DIR too")
    else:
        from rtplan.cli._pet_geometry import build_exclusion
        from rtplan.imaging import load_matrix, load_pet, load_spatial_registration
        from rtplan.structures.targets import pet_to_ct_transform

        if registration and pet_to_ct_matrix:
            raise InputError("give either --registration or --pet-to-ct-matrix, not both")
        say(f"loading PET from {pet_dir} (SUVbw)")
        pet = load_pet(pet_dir, **(suv_overrides or {}))
        sro = load_spatial_registration(registration) if registration else None
        if sro is not None:
            tf = sro.transform(pet.frame_of_reference_uid, ct.frame_of_reference_uid)
        elif pet_to_ct_matrix:
            tf = pet_to_ct_transform(pet, ct, load_matrix(pet_to_ct_matrix))
        if exclude:
            say("exclusion regions onto the PET grid")
        excl = build_exclusion(list(exclude), pet, registration=sro, transform=tf, ct=ct)
    targets = build_targets(
        spec, ct, body=_body_arg(body, ct), inside_skin_mm=inside_skin_mm, pet=pet,
        pet_transform=tf, pet_exclusion=None if excl is None else excl.mask, progress=say,
    )
    rois = targets_to_rois(targets, progress=say)
    say(f"writing {output}")
    write_rtstruct(output, ct, rois, overwrite=force)
    rep = targets.report()
    rep["rtstruct"] = str(output)
    if pet is not None:
        rep["pet"] = {
            "series_instance_uid": pet.series_instance_uid,
            "frame_of_reference_uid": pet.frame_of_reference_uid,
            "registration": None if tf is None else tf.describe(),
            "exclusion": None if excl is None else {"sources": list(excl.parts),
                                                    "pet_voxels": excl.n_voxels},
        }
    if report is not None:
        atomic_write_text(report, json.dumps(rep, indent=2) + "\n", overwrite=force)
    return rep


def _print_structures(rep: dict) -> None:
    rows = [
        [s["name"], s["roi_type"], f"{s['volume_cc']:.2f}", s.get("margin") or "-",
         s["lesion_id"] or "-", s["source"]]
        for s in rep["structures"]
    ]
    print(format_table(["name", "type", "volume (cc)", "margin", "lesion", "made from"], rows))
    for w in rep["warnings"]:
        print(f"warning: {w}")


def _run_structures(args: argparse.Namespace) -> int:
    say = _progress(args.quiet)
    spec = _merge_spec(args)
    rep = run_structures(
        args.ct, args.lesions, args.output, spec=spec, body=args.body,
        inside_skin_mm=args.inside_skin_mm, pet_dir=args.pet, report=args.report,
        force=args.force, say=say, registration=args.registration,
        pet_to_ct_matrix=args.pet_to_ct_matrix, suv_overrides=suv_overrides(args),
        exclude=args.exclude, series_uid=args.series_uid,
    )
    if args.json:
        print_json(rep)
    else:
        _print_structures(rep)
        print(f"wrote {args.output}" + (f" and {args.report}" if args.report else ""))
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
    p.add_argument("--inside-skin-mm", type=float, default=0.0, metavar="MM",
                   help="pull targets this many mm inside the skin (default 0)")
    add_registration(p, "with --pet, when the PET and CT frames of reference differ")
    add_exclude(p)
    add_suv_overrides(p)
    p.add_argument("-o", "--output", required=True, metavar="RS.dcm", help="RTSTRUCT to write")
    p.add_argument("--report", metavar="FILE", help="also write a JSON report")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    add_force(p)
    add_json(p)
    p.set_defaults(func=_run_structures)
