"""``rtplan demo``: the whole pipeline on a synthetic patient."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rtplan._shared.table import format_table
from rtplan.cli.options import add_force, add_json, new_command, print_json
from rtplan.cli.structures import _print_structures, _progress, run_structures
from rtplan.errors import InputError


def _run_demo(args: argparse.Namespace) -> int:
    from rtplan._shared.io import atomic_write_text
    from rtplan.cli.radiobiology import DEFAULT_COMPARE_AB
    from rtplan.demo import write_demo_inputs
    from rtplan.radiobiology import PRESETS, compare_plans, ranking_by_alpha_beta

    say = _progress(args.quiet)
    out = Path(args.output)
    if out.exists() and any(out.iterdir()) and not args.force:
        raise InputError(
            f"demo folder '{out}' is not empty: choose another folder or pass --force"
        )
    say("writing the synthetic pelvis CT, ENI atlas and lesions file")
    paths = write_demo_inputs(out, overwrite=args.force)
    rep = run_structures(
        paths["ct"], paths["lesions"], out / "RS_rtplan.dcm", report=out / "report.json",
        force=args.force, say=say,
    )
    comps = compare_plans([p.plan for p in PRESETS.values()], list(DEFAULT_COMPARE_AB))
    ranking = ranking_by_alpha_beta(comps, list(DEFAULT_COMPARE_AB))
    atomic_write_text(
        out / "schedules.json",
        json.dumps({"plans": [c.model_dump() for c in comps],
                    "lesion_ranking": {str(k): v for k, v in ranking.items()}}, indent=2)
        + "\n",
        overwrite=args.force,
    )
    if args.json:
        print_json({"structures": rep, "schedules": [c.model_dump() for c in comps]})
        return 0
    print(f"demo patient written to {out}/ (ct/, eni_atlas.dcm, lesions.json)\n")
    _print_structures(rep)
    print("\nschedules (EQD2 in Gy to the lesion / elective nodes):")
    rows = []
    for c in comps:
        for lv in c.levels:
            rows.append([c.plan, c.fraction_category, lv.level,
                         *[f"{r.eqd2_gy:.2f}" for r in lv.results]])
    print(format_table(["plan", "category", "level",
                        *[f"a/b={ab:g}" for ab in DEFAULT_COMPARE_AB]], rows))
    print(f"\nwrote {out / 'RS_rtplan.dcm'}, {out / 'report.json'}, {out / 'schedules.json'}")
    return 0


def register(sub: Any) -> None:
    """Add ``demo``."""
    p = new_command(
        sub,
        "demo",
        help="synthetic pelvis patient: whole structure pipeline with SIB + schedule comparison",
        description=(
            "Build a synthetic pelvis-like patient (CT series with body, bones, rectal gas, "
            "a couch; four PSMA-positive lesions at different sites; an elective nodal "
            "CTV atlas), run the structure pipeline with ENI and SIB (margins 3/3 mm, ENI "
            "5 mm) and the schedule comparison (EQD2 in Gy), and write the RTSTRUCT, a "
            "JSON report and the comparison into DIR."
        ),
        example="rtplan demo -o demo-out",
    )
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    add_force(p)
    add_json(p)
    p.set_defaults(func=_run_demo)
