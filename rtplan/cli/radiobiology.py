"""``rtplan eqd2``, ``rtplan equivalent``, ``rtplan compare``, ``rtplan presets``."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rtplan._shared.table import format_table
from rtplan.cli.options import add_json, new_command, print_json
from rtplan.cli.options import add_model_options as _add_model_options
from rtplan.cli.options import alpha_beta_arg as _alpha_beta_arg
from rtplan.cli.options import float_arg as _positive_float
from rtplan.cli.options import model_from_args as _model
from rtplan.errors import InputError, InvalidParameterError, from_validation_error

DEFAULT_COMPARE_AB = (1.5, 3.0, 10.0)

# Let "-27/3" reach the schedule parser (which explains that doses must be positive)
# instead of being mistaken for an unknown option.
_NEGATIVE_LIKE = re.compile(r"^-\d|^-\.\d")


def _f(x: float, nd: int = 2) -> str:
    return f"{x:.{nd}f}"


def _alpha_betas(args: argparse.Namespace, model: Any, default: tuple[float, ...] | None):
    from rtplan.radiobiology import USC

    values = args.alpha_beta
    if not values:
        if isinstance(model, USC):
            return [None]
        if default is None:
            raise InputError(
                "give --alpha-beta X (Gy), e.g. --alpha-beta 1.5 for prostate cancer "
                "(see 'rtplan presets' for tissue values)"
            )
        return list(default)
    for v in values:
        if not v > 0:
            raise InvalidParameterError(
                f"alpha/beta must be a positive number of Gy, got {v:g}"
            )
    return values


# -- eqd2 ---------------------------------------------------------------------------
def _run_eqd2(args: argparse.Namespace) -> int:
    from rtplan.radiobiology.api import eqd2_report, to_jsonable

    model = _model(args)
    results = eqd2_report(args.schedules, _alpha_betas(args, model, None), model=model)
    if args.json:
        print_json(to_jsonable(results))
        return 0
    rows = [
        [
            r.schedule,
            f"{r.total_dose_gy:g}",
            r.fractions,
            f"{r.dose_per_fraction_gy:.4g}",
            f"{r.alpha_beta_gy:g}",
            _f(r.bed_gy),
            _f(r.eqd2_gy),
            r.fraction_category,
        ]
        for r in results
    ]
    print(f"model: {model.describe()}")
    print(
        format_table(
            ["schedule", "dose (Gy)", "fx", "Gy/fx", "a/b (Gy)", "BED (Gy)", "EQD2 (Gy)",
             "category"],
            rows,
        )
    )
    for r in results:
        for w in r.warnings:
            print(f"warning ({r.schedule}): {w}")
    return 0


# -- equivalent ---------------------------------------------------------------------
def _run_equivalent(args: argparse.Namespace) -> int:
    from rtplan.radiobiology.api import equivalent_report, to_jsonable

    model = _model(args)
    abs_ = _alpha_betas(args, model, None)
    if len(abs_) != 1:
        raise InputError("'rtplan equivalent' takes exactly one --alpha-beta")
    if (args.schedule is None) == (args.target_eqd2 is None and args.target_bed is None):
        raise InputError(
            "give either a reference SCHEDULE or --target-eqd2 G / --target-bed B "
            "(e.g. 'rtplan equivalent 37.5/5 --fractions 3 --alpha-beta 1.5')"
        )
    if args.target_eqd2 is not None and args.target_bed is not None:
        raise InputError("give only one of --target-eqd2 and --target-bed")
    if (args.fractions is None) == (args.dose_per_fraction is None):
        raise InputError(
            "give exactly one of --fractions N (solve for the dose per fraction) or "
            "--dose-per-fraction D (solve for the number of fractions)"
        )
    if args.fractions is not None and args.fractions < 1:
        raise InvalidParameterError(f"--fractions must be >= 1, got {args.fractions}")
    report = equivalent_report(
        abs_[0],
        reference=args.schedule,
        target_eqd2_gy=None if args.schedule is not None else args.target_eqd2,
        target_bed_gy=None if args.schedule is not None else args.target_bed,
        fractions=args.fractions,
        dose_per_fraction_gy=args.dose_per_fraction,
        model=model,
    )
    out: dict[str, Any] = to_jsonable(report)  # type: ignore[assignment]
    ab = report.alpha_beta_gy
    reference = report.reference
    warnings = report.warnings
    if args.json:
        print_json(out)
        return 0
    print(f"model: {model.describe()}, alpha/beta {ab:g} Gy"
          + (" (implied by the USC parameters)" if model.name == "usc" else ""))
    if reference is not None:
        print(
            f"reference {reference.schedule}: BED {_f(reference.bed_gy)} Gy, "
            f"EQD2 {_f(reference.eqd2_gy)} Gy"
        )
    else:
        print(f"target: BED {_f(out['target_bed_gy'])} Gy, "
              f"EQD2 {_f(out['target_eqd2_gy'])} Gy")
    if args.fractions is not None:
        print(
            f"equivalent: {out['fractions']} x {out['dose_per_fraction_gy']:.4f} Gy = "
            f"{out['total_dose_gy']:.3f} Gy (EQD2 {_f(out['eqd2_gy'])} Gy)"
        )
    else:
        print(
            f"fractions of {out['dose_per_fraction_gy']:g} Gy needed: "
            f"{out['fractions_exact']:.3f} (exact); smallest whole number reaching the "
            f"target: {out['fractions']} x {out['dose_per_fraction_gy']:g} Gy = "
            f"{out['total_dose_gy']:g} Gy (EQD2 {_f(out['eqd2_gy'])} Gy)"
        )
        print(
            format_table(
                ["fx", "dose (Gy)", "Gy/fx", "BED (Gy)", "EQD2 (Gy)"],
                [
                    [o["fractions"], f"{o['total_dose_gy']:g}", f"{o['dose_per_fraction_gy']:g}",
                     _f(o["bed_gy"]), _f(o["eqd2_gy"])]
                    for o in out["options"]
                ],
            )
        )
    for w in warnings:
        print(f"warning (solved schedule): {w}")
    if reference is not None:
        for w in reference.warnings:
            print(f"warning (reference): {w}")
    return 0


# -- compare ------------------------------------------------------------------------
def _bool_at(data: Any, where: str) -> str | None:
    """Where the first true/false of a plan document is (a plan has no yes/no field)."""
    if isinstance(data, bool):
        return where
    items = (data.items() if isinstance(data, dict)
             else enumerate(data) if isinstance(data, list) else ())
    for key, value in items:
        found = _bool_at(value, f"{where}[{key}]" if isinstance(key, int)
                         else f"{where}.{key}" if where else str(key))
        if found is not None:
            return found
    return None


def _load_plan(text: str) -> Any:
    from rtplan.radiobiology import PRESETS, SIBPlan, parse_schedule

    key = text.strip().lower()
    if key in PRESETS:
        return PRESETS[key].plan
    path = Path(text)
    if path.suffix.lower() == ".json":
        from rtplan._shared.jsonio import load_json

        data = load_json(path, "plan file")
        where = _bool_at(data, "")
        if where is not None:
            raise InputError(
                f"plan file '{path}': {where or 'the document'} is true/false, which is not "
                "a number (it would be read as 1 or 0): give the number"
            )
        try:
            return SIBPlan.model_validate(data)
        except ValidationError as exc:
            raise from_validation_error(exc, f"plan file '{path}'") from None
    try:
        return SIBPlan.single(parse_schedule(text))
    except ValidationError as exc:  # e.g. 0/1: a plan level needs a positive dose
        raise from_validation_error(exc, f"plan {text!r}") from None
    except InputError as exc:
        raise InputError(
            f"{text!r} is neither a preset ({', '.join(PRESETS)}), a plan JSON file nor a "
            f"schedule: {exc}"
        ) from None


def _run_compare(args: argparse.Namespace) -> int:
    from rtplan.radiobiology.api import compare_report, to_jsonable

    model = _model(args)
    abs_ = _alpha_betas(args, model, DEFAULT_COMPARE_AB)
    plans = [_load_plan(p) for p in args.plans] if args.plans else None
    report = compare_report(plans, abs_, model=model)
    if args.json:
        print_json(to_jsonable(report))
        return 0
    comps = report.plans
    abs_used = report.alpha_beta_gy
    ranking = {r.alpha_beta_gy: r.plans for r in report.lesion_ranking}
    headers = ["plan", "fx", "category", "level", "dose (Gy)", "Gy/fx"] + [
        f"EQD2 a/b={ab:g}" for ab in abs_used
    ]
    rows = []
    warnings = []
    for c in comps:
        for i, lv in enumerate(c.levels):
            rows.append(
                [
                    c.plan if i == 0 else "",
                    c.fractions if i == 0 else "",
                    c.fraction_category if i == 0 else "",
                    lv.level,
                    f"{lv.total_dose_gy:g}",
                    f"{lv.dose_per_fraction_gy:.3f}",
                    *[_f(r.eqd2_gy) for r in lv.results],
                ]
            )
            warnings += [f"{c.plan} {lv.level}: {w}" for w in lv.results[0].warnings]
    print(f"EQD2 in Gy; model {model.describe()}; each SIB level from its own dose per fraction")
    print(format_table(headers, rows))
    print()
    print("lesion EQD2 ranking (highest first):")
    for ab in abs_used:
        print(f"  a/b {ab:g} Gy: " + " > ".join(ranking[ab]))
    for w in warnings:
        print(f"warning: {w}")
    return 0


# -- presets ------------------------------------------------------------------------
def _run_presets(args: argparse.Namespace) -> int:
    from rtplan.radiobiology import PRESETS, TISSUES
    from rtplan.radiobiology.api import presets_listing, to_jsonable

    if args.json:
        print_json(to_jsonable(presets_listing()))
        return 0
    print("plan presets (use the key with 'rtplan compare'):")
    print(
        format_table(
            ["key", "fx", "levels (Gy)", "description"],
            [
                [
                    p.key,
                    p.plan.fractions,
                    ", ".join(f"{lv.name} {lv.total_dose_gy:g}" for lv in p.plan.levels),
                    p.plan.description,
                ]
                for p in PRESETS.values()
            ],
        )
    )
    print()
    print("alpha/beta presets (Gy):")
    print(
        format_table(
            ["key", "tissue", "a/b (Gy)", "range (Gy)"],
            [
                [t.key, t.label, f"{t.alpha_beta_gy:g}", f"{t.range_gy[0]:g}-{t.range_gy[1]:g}"]
                for t in TISSUES.values()
            ],
        )
    )
    print("\nsources: 'rtplan presets --json' lists the citation of every value.")
    return 0


def register(sub: Any) -> None:
    """Add the radiobiology commands."""
    p = new_command(
        sub,
        "eqd2",
        help="BED and EQD2 of schedules",
        description=(
            "BED and EQD2 (Gy) of one or more schedules at one or more alpha/beta values "
            "(Gy). A schedule is TOTAL/N (37.5/5, 37.5Gy/5fx) or NxDOSE (5x7.5), doses in "
            "Gy. --json prints a list of objects with schedule, total_dose_gy, fractions, "
            "dose_per_fraction_gy, alpha_beta_gy, model, bed_gy, eqd2_gy, "
            "fraction_category and warnings."
        ),
        example="rtplan eqd2 27/3 37.5/5 51/34 --alpha-beta 1.5 --alpha-beta 10\n"
        "rtplan eqd2 5x7.5 --alpha-beta 3 --model lql --transition-dose-gy 6 --json",
    )
    p._negative_number_matcher = _NEGATIVE_LIKE
    p.add_argument("schedules", nargs="+", metavar="SCHEDULE", help="e.g. 37.5/5 or 5x7.5")
    p.add_argument(
        "--alpha-beta", type=_alpha_beta_arg, action="append", metavar="GY",
        help="alpha/beta in Gy (repeat for several); prostate 1.5, rectum late 3, tumour 10",
    )
    _add_model_options(p)
    add_json(p)
    p.set_defaults(func=_run_eqd2)

    p = new_command(
        sub,
        "equivalent",
        help="equivalent schedule in N fractions, or fractions needed at a dose",
        description=(
            "Find the schedule equivalent (same BED, hence same EQD2) to a reference "
            "SCHEDULE or to a target EQD2/BED (Gy): with --fractions N, the dose per "
            "fraction (Gy); with --dose-per-fraction D (Gy), the number of fractions: "
            "'fractions' is the smallest whole number that reaches the target, "
            "'fractions_exact' the real-valued solution, and 'options' the whole numbers "
            "around it with their EQD2. --json also gives target_eqd2_gy, target_bed_gy "
            "and warnings (LQ above 10 / 18 Gy per fraction in the solved schedule). "
            "With --model usc the alpha/beta implied by its parameters is used."
        ),
        example="rtplan equivalent 37.5/5 --fractions 3 --alpha-beta 1.5\n"
        "rtplan equivalent --target-eqd2 78 --fractions 20 --alpha-beta 1.5\n"
        "rtplan equivalent --target-eqd2 78 --dose-per-fraction 3 --alpha-beta 1.5 --json",
    )
    p._negative_number_matcher = _NEGATIVE_LIKE
    p.add_argument("schedule", nargs="?", metavar="SCHEDULE", help="reference schedule")
    p.add_argument("--target-eqd2", type=_positive_float, metavar="GY",
                   help="target EQD2 (Gy) instead of a reference schedule")
    p.add_argument("--target-bed", type=_positive_float, metavar="GY",
                   help="target BED (Gy) instead of a reference schedule")
    p.add_argument("--fractions", type=int, metavar="N", help="number of fractions")
    p.add_argument("--dose-per-fraction", type=_positive_float, metavar="GY",
                   help="dose per fraction (Gy); solve for the number of fractions")
    p.add_argument("--alpha-beta", type=_alpha_beta_arg, action="append", metavar="GY",
                   help="alpha/beta (Gy)")
    _add_model_options(p)
    add_json(p)
    p.set_defaults(func=_run_equivalent)

    p = new_command(
        sub,
        "compare",
        help="SBRT vs ENI+SIB: EQD2 side by side (default: the paper's four presets)",
        description=(
            "EQD2 (Gy) of every dose level of each plan (lesion and, where present, "
            "elective nodes) at several alpha/beta values (default 1.5, 3 and 10 Gy: "
            "prostate cancer, late rectum, tumour), with each plan's fraction category. "
            "A PLAN is a preset key (see 'rtplan presets'), a schedule such as 37.5/5, "
            "or a JSON file of an SIB plan (schema: schemas/radiobiology/sib_plan.json)."
        ),
        example="rtplan compare\nrtplan compare sbrt-37.5-5 eni-51-34-sib-61.2 "
        "--alpha-beta 1.5 --alpha-beta 10\nrtplan compare 30/5 my_plan.json --json",
    )
    p.add_argument("plans", nargs="*", metavar="PRESET|PLAN")
    p.add_argument("--alpha-beta", type=_alpha_beta_arg, action="append", metavar="GY",
                   help="alpha/beta in Gy (repeat; default 1.5, 3, 10)")
    _add_model_options(p)
    add_json(p)
    p.set_defaults(func=_run_compare)

    p = new_command(
        sub,
        "presets",
        help="list plan presets and alpha/beta presets with their sources",
        description="List the paper's plan presets and the tissue alpha/beta presets (Gy).",
        example="rtplan presets\nrtplan presets --json",
    )
    add_json(p)
    p.set_defaults(func=_run_presets)
