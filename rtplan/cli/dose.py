"""``rtplan dose eqd2``, ``rtplan dose dvh``, ``rtplan dose sum``: dose grids in EQD2."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rtplan._shared.io import check_outputs
from rtplan._shared.table import format_table
from rtplan.cli.options import (
    add_force,
    add_json,
    add_model_options,
    alpha_beta_arg,
    help_command,
    model_from_args,
    new_command,
    print_json,
)
from rtplan.errors import InputError, InvalidParameterError, from_validation_error


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return v


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _non_negative_float(text: str) -> float:
    v = _float(text)
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"expected a dose >= 0 Gy, got {text!r}")
    return v


def _percent(text: str) -> float:
    v = _float(text)
    if not 0 <= v <= 100:
        raise argparse.ArgumentTypeError(f"expected a percentage 0-100, got {text!r}")
    return v


def _print_warnings(warnings: Any) -> None:
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)


def _add_input_options(p: argparse.ArgumentParser, *, many: bool = False) -> None:
    g = p.add_argument_group("RTDOSE input")
    g.add_argument(
        "--fractions", type=_positive_int, action="append" if many else "store",
        metavar="N",
        help="number of fractions" + (" of each course, in order" if many else "")
        + " (or --plan)",
    )
    g.add_argument(
        "--plan", action="append" if many else "store", metavar="RTPLAN",
        help="RTPLAN giving NumberOfFractionsPlanned" + (" (one per course)" if many else ""),
    )
    g.add_argument("--allow-effective", action="store_true",
                   help="accept an RTDOSE whose DoseType is already EFFECTIVE")
    g.add_argument("--convert-cgy", action="store_true",
                   help="accept DoseUnits CGY and divide by 100")


def _add_alpha_beta_options(
    p: argparse.ArgumentParser, *, required: bool, bed: bool = True
) -> None:
    g = p.add_argument_group("alpha/beta")
    g.add_argument(
        "--alpha-beta", type=alpha_beta_arg, metavar="GY|TISSUE",
        help="default alpha/beta: Gy, or a tissue preset (prostate, rectum_late, "
        "bladder_late, tumour; see 'rtplan presets')"
        + ("; required (with --model usc it defaults to the implied value)" if required
           else ""),
    )
    g.add_argument(
        "--alpha-beta-roi", action="append", default=[], metavar="NAME=GY|TISSUE",
        help="alpha/beta of one RTSTRUCT ROI, Gy or a tissue preset (repeat); needs "
        "--structures",
    )
    g.add_argument(
        "--overlap", choices=["lowest", "priority"], default="lowest",
        help="voxels in several ROIs: lowest alpha/beta wins (default) or --priority order",
    )
    g.add_argument("--priority", action="append", default=[], metavar="NAME",
                   help="ROI priority for --overlap priority, highest first (repeat)")
    if bed:
        g.add_argument("--bed", action="store_true", help="BED instead of EQD2")
    add_model_options(p)


def _read(path: str, fractions: int | None, plan: str | None, args: argparse.Namespace):
    from rtplan.dose import read_rtdose

    return read_rtdose(
        path, fractions=fractions, rtplan=plan, allow_effective=args.allow_effective,
        convert_cgy=args.convert_cgy,
    )


def _spec(args: argparse.Namespace, model: Any = None):
    from rtplan.dose import AlphaBetaSpec, parse_alpha_beta
    from rtplan.radiobiology import USC

    rois: dict[str, float] = {}
    for item in args.alpha_beta_roi:
        name, sep, value = item.rpartition("=")
        if not sep or not name.strip():
            raise InputError(f"--alpha-beta-roi expects NAME=GY or NAME=TISSUE, got {item!r}")
        try:
            rois[name.strip()] = parse_alpha_beta(alpha_beta_arg(value.strip()))
        except argparse.ArgumentTypeError as exc:
            raise InputError(f"--alpha-beta-roi {item!r}: {exc}") from None
    if rois and not args.structures:
        raise InputError("--alpha-beta-roi needs --structures RTSTRUCT")
    default = args.alpha_beta
    if default is None:
        if not isinstance(model, USC):
            raise InputError(
                "give --alpha-beta GY or a tissue preset (e.g. --alpha-beta 3, "
                "--alpha-beta prostate; see 'rtplan presets')"
            )
        default = model.alpha_beta_gy
    try:
        return AlphaBetaSpec(
            default_alpha_beta_gy=parse_alpha_beta(default),
            roi_alpha_beta_gy=rois, overlap=args.overlap, priority=tuple(args.priority),
        )
    except ValidationError as exc:
        raise from_validation_error(exc, "alpha/beta options") from None


def _masks(args: argparse.Namespace, spec: Any, dose: Any):
    if not spec.roi_alpha_beta_gy:
        return None
    from rtplan.dose import roi_masks
    from rtplan.structures.rtstruct import read_rtstruct

    ss = read_rtstruct(args.structures)
    names = [ss.roi(n).name for n in spec.roi_alpha_beta_gy]
    _check_frame(ss, dose)
    masks = {}
    for asked, name in zip(spec.roi_alpha_beta_gy, names, strict=True):
        try:
            masks[asked] = roi_masks(ss, dose.grid, [name], allow_empty=False)[name]
        except InputError as exc:
            raise InputError(
                f"--alpha-beta-roi {asked}={spec.roi_alpha_beta_gy[asked]:g}: {exc}. No "
                "voxel would get this alpha/beta: correct the ROI or the dose grid, or "
                "drop this option"
            ) from None
    return masks


def _check_frame(ss: Any, dose: Any) -> None:
    from rtplan.errors import GridMismatchError

    if dose.frame_of_reference_uid and ss.frame_of_reference_uids and (
        dose.frame_of_reference_uid not in ss.frame_of_reference_uids
    ):
        raise GridMismatchError(
            f"the RTSTRUCT '{ss.path}' is in frame of reference "
            f"{list(ss.frame_of_reference_uids)}, the dose in {dose.frame_of_reference_uid}: "
            "they belong to different scans"
        )


# ============================================================================ eqd2
def _run_eqd2(args: argparse.Namespace) -> int:
    from rtplan.dose import eqd2_descriptions, eqd2_dose, write_rtdose

    check_outputs(args.output, inputs=[args.rtdose, args.plan, args.structures],
                  overwrite=args.force)
    model = model_from_args(args)
    spec = _spec(args, model)
    dose = _read(args.rtdose, args.fractions, args.plan, args)
    if dose.fractions is None:
        raise InputError("give the number of fractions: --fractions N or --plan RTPLAN")
    masks = _masks(args, spec, dose)
    quantity = "BED" if args.bed else "EQD2"
    out = eqd2_dose(dose, spec, masks, quantity=quantity, model=model)
    _print_warnings(out.warnings)
    short, long = eqd2_descriptions(spec, dose.fractions, quantity=quantity, model=model)
    path = write_rtdose(
        args.output, out, description=short, comment=long, overwrite=args.force,
        bits_allocated=args.bits,
    )
    summary = {
        "input": str(args.rtdose), "output": str(path), "quantity": quantity,
        "fractions": dose.fractions, "alpha_beta": spec.model_dump(mode="json"),
        "model": model.name, "series_description": short,
        "max_physical_gy": dose.max_gy, "max_gy": out.max_gy,
        "max_dose_per_fraction_gy": dose.max_gy / dose.fractions,
        "warnings": list(out.warnings),
    }
    if args.json:
        print_json(summary)
    else:
        print(f"{quantity} grid written to {path}")
        print(f"  {dose.fractions} fractions; {model.describe()}; {spec.describe()}")
        print(f"  maximum: physical {dose.max_gy:.2f} Gy -> {quantity} {out.max_gy:.2f} Gy")
    return 0


# ============================================================================ dvh
def _run_dvh(args: argparse.Namespace) -> int:
    from rtplan.dose import eqd2_dose, structure_dvhs
    from rtplan.dose.dvh import check_bin_width
    from rtplan.structures.rtstruct import read_rtstruct

    if not args.eqd2:
        given = [opt for opt, on in (
            ("--alpha-beta", args.alpha_beta is not None),
            ("--alpha-beta-roi", bool(args.alpha_beta_roi)),
            ("--bed", args.bed),
            ("--priority", bool(args.priority)),
            ("--overlap", args.overlap != "lowest"),
            ("--model", args.model != "lq"),
        ) if on]
        if given:
            raise InputError(
                f"{', '.join(given)} given without --eqd2: alpha/beta options apply only "
                "to EQD2/BED DVHs; add --eqd2 (with --fractions N or --plan RTPLAN), or "
                "leave them out for physical-dose DVHs"
            )
    if (args.curve or args.differential) and not args.json:
        raise InputError("--curve and --differential add the curves to the JSON output: "
                         "add --json (or use --plot FILE for a picture)")
    if args.plot:
        _check_plot(args)
    if not args.eqd2:  # no conversion: a DVH of an EQD2 (EFFECTIVE) grid is fine
        args.allow_effective = True
    dose = _read(args.rtdose, args.fractions, args.plan, args)
    ss = read_rtstruct(args.structures)
    _check_frame(ss, dose)
    quantity = dose.dose_type.lower()
    dose_label = f"{'Physical' if quantity == 'physical' else 'Effective'} dose (Gy)"
    warnings: list[str] = []
    if args.eqd2:
        model = model_from_args(args)
        if dose.fractions is None:
            raise InputError("--eqd2 needs the number of fractions: --fractions N or --plan")
        spec = _spec(args, model)
        q = "BED" if args.bed else "EQD2"
        dose = eqd2_dose(dose, spec, _masks(args, spec, dose), quantity=q, model=model)
        warnings = list(dose.warnings)
        _print_warnings(warnings)
        quantity = f"{q} {spec.describe()}" + ("" if model.name == "lq" else
                                                f"; {model.describe()}")
        dose_label = (f"{q} (Gy): {model.describe()}, {spec.describe()}, "
                      f"{dose.fractions} fractions")
    if args.curve or args.differential:
        # refused before any DVH is built: a tiny width would allocate gigabytes
        try:
            check_bin_width(args.bin_width_gy, dose.max_gy)
        except InputError as exc:
            raise InvalidParameterError(f"--bin-width-gy: {exc}") from None
    names = args.roi or None
    dvhs = structure_dvhs(dose, ss, names, supersampling=args.supersampling)
    rows, records = [], []
    extra = len(args.d_percent) + len(args.v_gy) + len(args.geud_a)
    for name, h in dvhs.items():
        if h.dose_gy.size == 0:
            rows.append([name, "0", "-", "-", "-", "-", "-", "-"] + ["-"] * extra)
            records.append({"name": name, "volume_cc": 0.0})
            continue
        st = h.statistics()
        rec: dict[str, Any] = st.model_dump()
        rec["d_percent_gy"] = {f"{x:g}": float(h.dose_at_percent_gy(x)) for x in args.d_percent}
        rec["v_gy"] = {f"{v:g}": float(h.volume_at_dose_cc(v)) for v in args.v_gy}
        rec["v_gy_percent"] = {f"{v:g}": float(h.volume_at_dose_percent(v)) for v in args.v_gy}
        rec["geud_gy"] = {f"{a:g}": h.geud_gy(a) for a in args.geud_a}
        if args.json and args.curve:
            doses, vols = h.cumulative(args.bin_width_gy)
            rec["cumulative"] = {"dose_gy": doses.tolist(), "volume_cc": vols.tolist()}
        if args.json and args.differential:
            edges, vols = h.differential(args.bin_width_gy)
            rec["differential"] = {"bin_edges_gy": edges.tolist(),
                                   "volume_cc": vols.tolist()}
        records.append(rec)
        rows.append([
            name, f"{st.volume_cc:.2f}", f"{st.min_gy:.2f}", f"{st.mean_gy:.2f}",
            f"{st.max_gy:.2f}", f"{st.d98_gy:.2f}", f"{st.d50_gy:.2f}", f"{st.d2_gy:.2f}",
        ] + [f"{float(h.dose_at_percent_gy(x)):.2f}" for x in args.d_percent]
          + [f"{float(h.volume_at_dose_percent(v)):.1f}" for v in args.v_gy]
          + [f"{h.geud_gy(a):.2f}" for a in args.geud_a])
    if args.plot:
        from rtplan.dose import write_dvh_plot

        colors = {r.name: r.color for r in ss.rois}
        written = write_dvh_plot(
            args.plot, dvhs, dose_label=dose_label, colors=colors,
            title=f"Cumulative DVH: {Path(args.rtdose).name}", overwrite=args.force,
        )
    if args.json:
        if args.plot:
            print(f"wrote {written}", file=sys.stderr)
        print_json({"dose": str(args.rtdose), "quantity": quantity,
                    "supersampling": args.supersampling, "structures": records,
                    "warnings": warnings})
        return 0
    headers = ["ROI", "volume cm3", "min Gy", "mean Gy", "max Gy", "D98% Gy", "D50% Gy",
               "D2% Gy"] + [f"D{x:g}% Gy" for x in args.d_percent] + [
               f"V{v:g}Gy %" for v in args.v_gy] + [f"gEUD a={a:g}" for a in args.geud_a]
    print(f"DVH of {args.rtdose} ({quantity}); ICRU 83: D98% near-minimum, D2% near-maximum")
    print(format_table(headers, rows))
    if args.plot:
        print(f"wrote {written}")
    return 0


#: Formats of ``dose dvh --plot`` (those of :func:`rtplan.dose.write_dvh_plot`).
_PLOT_FORMATS = ("png", "pdf", "svg")


def _check_plot(args: argparse.Namespace) -> None:
    """``--plot``: a known format, matplotlib installed, a writable new file that is no
    input; all checked before the dose is read."""
    from rtplan._shared.optional import require_optional

    check_outputs(args.plot, inputs=[args.rtdose, args.structures, args.plan],
                  overwrite=args.force)
    fmt = Path(args.plot).suffix.lstrip(".").lower() or "png"
    if fmt not in _PLOT_FORMATS:
        raise InputError(
            f"--plot {args.plot!r}: unknown picture format {fmt!r}; use a name ending in "
            + ", ".join(f".{f}" for f in _PLOT_FORMATS)
        )
    require_optional("matplotlib", feature="--plot")


# ============================================================================ sum
def _run_sum(args: argparse.Namespace) -> int:
    from rtplan.dose import eqd2_descriptions, sum_courses_eqd2_report, write_rtdose

    reg_files = [t.partition("=")[2].strip() or None for t in args.registration or []]
    check_outputs(args.output, inputs=[*args.rtdose, *(args.plan or []), args.structures,
                                       *reg_files], overwrite=args.force)
    n = len(args.rtdose)
    fx = args.fractions or []
    plans = args.plan or []
    if fx and plans:
        raise InputError("give --fractions for every course or --plan for every course")
    if len(fx or plans) != n:
        raise InputError(
            f"{n} RTDOSE files but {len(fx or plans)} --fractions/--plan: give one per "
            "course, in the same order"
        )
    model = model_from_args(args)
    spec = _spec(args, model)
    courses = [
        _read(p, fx[i] if fx else None, plans[i] if plans else None, args)
        for i, p in enumerate(args.rtdose)
    ]
    masks = _masks(args, spec, courses[-1])
    if not 0 <= args.recovery < 1:
        raise InvalidParameterError(f"--recovery must be in [0, 1), got {args.recovery}")
    regs = _registrations(args.registration or [], courses, args.rtdose)
    report = sum_courses_eqd2_report(courses, spec, masks, recovery_fraction=args.recovery,
                                     registrations=regs, model=model)
    total = report.total
    _print_warnings(report.warnings)
    fractions = "+".join(str(c.fractions) for c in courses)
    short = eqd2_descriptions(spec, fractions, quantity="EQD2 sum", model=model)[0]
    short = short.replace(" fx, ", f" fx, rec {args.recovery:g}, ", 1)
    long = (
        f"Sum of {n} courses in EQD2 (Gy), {model.describe()} voxel-wise with each "
        "course's own fractions "
        f"({fractions}); earlier courses x (1 - recovery {args.recovery:g}); alpha/beta: "
        f"{spec.describe()}. Sources: {', '.join(Path(p).name for p in args.rtdose)}."
    )
    plans_uids = []
    for c in courses:
        if c.dataset is not None:
            plans_uids += [str(r.ReferencedSOPInstanceUID)
                           for r in c.dataset.get("ReferencedRTPlanSequence", [])]
    plans_uids = list(dict.fromkeys(plans_uids))
    path = write_rtdose(
        args.output, total, description=short, comment=long, overwrite=args.force,
        summation_type="MULTI_PLAN" if len(plans_uids) > 1 else "PLAN",
        referenced_plans=plans_uids, bits_allocated=args.bits,
    )
    if args.json:
        print_json({"output": str(path), "fractions": [c.fractions for c in courses],
                    "recovery_fraction": args.recovery, "max_gy": total.max_gy,
                    "model": model.name, "series_description": short,
                    "alpha_beta": spec.model_dump(mode="json"),
                    "registrations": [{"course": i + 1, **t.describe()}
                                      for i, t in sorted(regs.items())],
                    "coverage": [c.model_dump() for c in report.coverage],
                    "warnings": report.warnings})
    else:
        print(f"EQD2 sum of {n} courses written to {path} (maximum {total.max_gy:.2f} Gy)")
        for i, t in sorted(regs.items()):
            print(f"  course {i + 1} -> common frame: rotation {t.rotation_deg:.2f} deg, "
                  f"translation {[round(float(v), 2) for v in t.translation_mm]} mm "
                  f"({t.source})")
        print("outside each course's dose grid (counted as 0 Gy from that course):")
        print(format_table(
            ["course", "file", "common grid", "irradiated by last", *_mask_names(masks)],
            [[c.course, Path(c.source).name if c.source else "-", _cov(c.grid),
              "-" if c.course == n else _cov(c.last_course_dose),
              *[_cov(c.rois[m]) for m in _mask_names(masks)]]
             for c in report.coverage],
        ))
    return 0


def _mask_names(masks: dict[str, Any] | None) -> list[str]:
    return list(masks or {})


def _cov(u: Any) -> str:
    return f"{u.percent:.3g} % ({u.volume_cc:.4g} cm3)"


_COURSE_LABELS = ("course",)
_COMMON_LABELS = ("common",)


def _registrations(texts: list[str], courses: list[Any], paths: list[str]) -> dict[int, Any]:
    """``--registration N=FILE`` values -> {0-based index: RigidTransform course -> common}."""
    out: dict[int, Any] = {}
    n = len(courses)
    common = courses[-1].frame_of_reference_uid or ""
    for text in texts:
        num, sep, file = (v.strip() for v in text.partition("="))
        if not sep or not file or not num.isdigit():
            raise InputError(
                f"--registration expects N=FILE (N: 1-based course position), got {text!r}"
            )
        k = int(num)
        if not 1 <= k < n:
            last = f"course {n} is the last course, whose grid and frame are the common ones"
            raise InputError(
                f"--registration {text!r}: " + (last if k == n else f"there is no course {k}")
                + f"; give N = 1..{n - 1} for the earlier courses ({n} RTDOSE files given)"
            )
        if k - 1 in out:
            raise InputError(f"--registration given twice for course {k}")
        course = courses[k - 1].frame_of_reference_uid or ""
        out[k - 1] = _course_registration(Path(file), k, course, common, paths)
        if course and course == common and not out[k - 1].is_identity:
            print(f"note: course {k} is in the common frame of reference ({common}); its "
                  "--registration is applied anyway", file=sys.stderr)
    return out


def _is_dicom(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(132)
    return head[128:132] == b"DICM" or path.suffix.lower() in (".dcm", ".dicom")


def _course_registration(path: Path, k: int, course: str, common: str,
                         paths: list[str]) -> Any:
    from rtplan._shared.jsonio import check_input_file, read_text
    from rtplan.imaging.registration import (
        RigidTransform,
        load_matrix,
        read_spatial_registration,
    )

    check_input_file(path, f"--registration {k}")  # missing, a folder, a FIFO, /dev/null
    if _is_dicom(path):
        if not course or not common:
            raise InputError(
                f"--registration {k}={path}: a Spatial Registration needs the "
                f"FrameOfReferenceUID of course {k} ('{paths[k - 1]}') and of the last "
                f"course ('{paths[-1]}'); one is missing: give a matrix file instead"
            )
        return read_spatial_registration(path, course, common)
    tf = load_matrix(path)
    text = read_text(path, f"--registration {k}", json_text=True)
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        def roles(label: str) -> set[str]:
            r = set()
            if label == course or label.lower() in _COURSE_LABELS:
                r.add("course")
            if label == common or label.lower() in _COMMON_LABELS:
                r.add("common")
            return r

        src, dst = roles(tf.moving_frame_uid), roles(tf.fixed_frame_uid)
        stated = f"{tf.moving_frame_uid} -> {tf.fixed_frame_uid}"
        if "course" in src and "common" in dst:
            desc = f"{path.name}: {stated}"
        elif "common" in src and "course" in dst:
            tf, desc = tf.inverse(), f"{path.name}: {stated}, inverted"
        else:
            raise InputError(
                f"--registration {k}={path}: the matrix maps from_frame "
                f"{tf.moving_frame_uid!r} to to_frame {tf.fixed_frame_uid!r}; for dose sums "
                f"from_frame/to_frame must be 'course' (course {k}'s frame, "
                f"{course or 'no UID'}) and 'common' (the last course's frame, "
                f"{common or 'no UID'}), or those FrameOfReferenceUIDs"
            )
    else:
        desc = f"{path.name}: 16 numbers, taken as course -> common"
    return RigidTransform(tf.matrix, course, common, f"matrix file {desc}")


def _add_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", required=True, metavar="OUT.dcm",
                   help="RTDOSE file to write (refused if it exists, unless --force)")
    p.add_argument("--bits", type=int, choices=[16, 32], default=16,
                   help="pixel bits of the written RTDOSE (default 16)")
    add_force(p)
    add_json(p)


def register(sub: Any) -> None:
    """Add ``rtplan dose`` and its sub-commands."""
    top = new_command(
        sub, "dose", help="RTDOSE grids: EQD2/BED maps, DVHs, course sums",
        description="Dose grids (RTDOSE, Gy) converted voxel by voxel to EQD2 or BED, "
        "DVHs per RTSTRUCT ROI, and EQD2 sums of courses.",
        example="rtplan dose eqd2 RD.dcm --plan RP.dcm --alpha-beta 3 -o RD_eqd2.dcm",
    )
    top.set_defaults(func=help_command(top))
    subs = top.add_subparsers(dest="dose_command", metavar="SUBCOMMAND")

    p = new_command(
        subs, "eqd2", help="write the EQD2 (or BED) grid of an RTDOSE",
        description="Each voxel's dose per fraction is its own dose divided by the number "
        "of fractions. The result is a new RTDOSE (DoseType EFFECTIVE, new UIDs); the "
        "input is not changed (an output path equal to an input is refused). Warnings "
        "(stderr, and 'warnings' in --json) flag LQ above 10 and 18 Gy per fraction, "
        "with the largest dose per fraction and the volume above (cm3); --model lql or "
        "usc applies LQ-L or the universal survival curve there instead. "
        "SeriesDescription states quantity, fractions, model and alpha/beta.",
        example="rtplan dose eqd2 RD.dcm --fractions 5 --alpha-beta 3 -o RD_eqd2.dcm\n"
        "rtplan dose eqd2 RD.dcm --fractions 1 --alpha-beta prostate --model lql "
        "--transition-dose-gy 6 -o RD_eqd2.dcm\n"
        "rtplan dose eqd2 RD.dcm --plan RP.dcm --alpha-beta 3 --structures RS.dcm "
        "--alpha-beta-roi PTV=prostate -o RD_eqd2.dcm",
    )
    p.add_argument("rtdose", metavar="RTDOSE")
    p.add_argument("--structures", metavar="RTSTRUCT", help="for --alpha-beta-roi")
    _add_input_options(p)
    _add_alpha_beta_options(p, required=True)
    _add_output(p)
    p.set_defaults(func=_run_eqd2)

    p = new_command(
        subs, "dvh", help="DVHs of RTSTRUCT ROIs (physical or EQD2)",
        description="DVH statistics per ROI: volume, min, mean, max, D98%, D50%, D2% "
        "(ICRU 83), D at given percentages (--d-percent), V at given doses and gEUD; with "
        "--json, the cumulative (--curve) and differential (--differential) curves. ROIs "
        "are sampled from their contours, --supersampling points per pixel along rows and "
        "columns, with the dose interpolated trilinearly. EQD2/BED DVHs (--eqd2) need "
        "--alpha-beta and --fractions N or --plan RTPLAN.",
        example="rtplan dose dvh RD.dcm --structures RS.dcm --d-percent 95\n"
        "rtplan dose dvh RD.dcm --structures RS.dcm --eqd2 --plan RP.dcm --alpha-beta 3 "
        "--v-gy 20 --json\n"
        "rtplan dose dvh RD.dcm --structures RS.dcm --eqd2 --fractions 5 --alpha-beta 3 "
        "--json --differential",
    )
    p.add_argument("rtdose", metavar="RTDOSE")
    p.add_argument("--structures", required=True, metavar="RTSTRUCT")
    p.add_argument("--roi", action="append", metavar="NAME", help="ROI (repeat); default all")
    p.add_argument("--eqd2", action="store_true", help="DVHs of the EQD2 (or --bed) grid")
    _add_input_options(p)
    _add_alpha_beta_options(p, required=False)
    p.add_argument("--supersampling", type=_positive_int, default=3, metavar="S",
                   help="in-plane samples per pixel along each axis (default 3)")
    p.add_argument("--d-percent", type=_percent, action="append", default=[], metavar="X",
                   help="report D_X%%: dose (Gy) received by at least X %% of the volume "
                   "(repeat; D2/D50/D98 are always shown)")
    p.add_argument("--v-gy", type=_non_negative_float, action="append", default=[],
                   metavar="GY",
                   help="report V at this dose (Gy, >= 0), percent of volume (repeat)")
    p.add_argument("--geud-a", type=_float, action="append", default=[], metavar="A",
                   help="report gEUD with this volume parameter a (repeat)")
    p.add_argument("--curve", action="store_true",
                   help="with --json: the cumulative DVH curve (cm3 receiving >= each dose)")
    p.add_argument("--differential", action="store_true",
                   help="with --json: the differential DVH (cm3 per dose bin, with bin "
                   "edges in Gy)")
    p.add_argument("--bin-width-gy", type=_float, default=0.01, metavar="GY",
                   help="dose step of --curve and --differential (default 0.01 Gy)")
    p.add_argument("--plot", metavar="FILE", help="save the cumulative DVHs (png, pdf, svg)")
    add_force(p)
    add_json(p)
    p.set_defaults(func=_run_dvh)

    p = new_command(
        subs, "sum", help="sum courses in EQD2 (re-irradiation)",
        description="EQD2 of each course with its own fractions, resampled onto the last "
        "course's grid; total = last + (1 - recovery) x earlier. A course planned on "
        "another scan (another FrameOfReferenceUID) needs --registration N=FILE: the "
        "rigid transform from course N's frame to the last course's, p_common = M @ "
        "p_course (the moving -> fixed direction used everywhere in rtplan). Where a "
        "course's grid does not reach, its dose counts as 0 Gy: the output (and --json "
        "'coverage') gives, per course, the uncovered part of the common grid, of the "
        "region the last course irradiates and of each --alpha-beta-roi ROI (percent, "
        "cm3), with a warning when the last course's dose is not covered.",
        example="rtplan dose sum RD_2019.dcm RD_2024.dcm --fractions 39 --fractions 5 "
        "--alpha-beta 3 --recovery 0.25 -o RD_sum.dcm\n"
        "rtplan dose sum RD_2019.dcm RD_2024.dcm --fractions 39 --fractions 5 "
        "--alpha-beta 3 --registration 1=REG_2019_to_2024.dcm -o RD_sum.dcm\n"
        "rtplan dose sum RD_2019.dcm RD_2024.dcm --fractions 39 --fractions 5 "
        "--alpha-beta 3 --registration 1=course1_to_common.json -o RD_sum.dcm",
    )
    p.add_argument("rtdose", nargs="+", metavar="RTDOSE", help="courses, earliest first")
    p.add_argument("--structures", metavar="RTSTRUCT", help="for --alpha-beta-roi")
    p.add_argument("--recovery", type=_float, default=0.0, metavar="R",
                   help="fraction of the earlier courses' EQD2 recovered, 0 <= R < 1")
    p.add_argument(
        "--registration", action="append", default=[], metavar="N=FILE",
        help="rigid registration of course N (1-based, in the order given) INTO the common "
        "frame (the last course's), p_common = M @ [p_course, 1] (LPS mm); repeat per "
        "course. FILE: a DICOM Spatial Registration (REG) relating course N's and the last "
        "course's frames of reference (read per PS3.3 C.20.2 in the course -> last "
        "direction, whichever frame the REG is in), or a matrix file: 16 numbers row by "
        "row, always taken as course N -> common, or JSON {\"matrix\": [[...], ...], "
        "\"from_frame\": \"course\", \"to_frame\": \"common\"} where from_frame/to_frame "
        "are 'course' (course N's frame), 'common' (the last course's) or those "
        "FrameOfReferenceUIDs; a JSON stated common -> course is inverted, other labels "
        "(e.g. PET/CT) are refused. Example: --registration 1=REG.dcm",
    )
    _add_input_options(p, many=True)
    _add_alpha_beta_options(p, required=True, bed=False)
    _add_output(p)
    p.set_defaults(func=_run_sum)
