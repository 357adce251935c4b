"""``rtplan cohort index|dvh|export``: DVH metrics of many patients in a database."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Literal

from rtplan._shared.table import format_table
from rtplan.cli.options import add_force, add_json, help_command, new_command, print_json
from rtplan.errors import InputError


def _run_index(args: argparse.Namespace) -> int:
    from rtplan._shared.io import check_not_input
    from rtplan.cohort import connect, index_tree, store_index

    if "://" not in str(args.db):  # a database file may not lie in the DICOM tree it reads
        check_not_input(args.db, args.root)
    with connect(args.db, create=True) as con:  # a bad --db fails before the walk
        index = index_tree(args.root)
        store_index(con, index)
    if args.json:
        print_json(index.model_dump(mode="json"))
        return 0
    rows = [[p.patient_id, p.status, str(len(p.plans)),
             ", ".join(f"{pl.fractions or '?'} fx {pl.status}" for pl in p.plans) or "-",
             "; ".join(p.issues + [i for pl in p.plans for i in pl.issues])[:110] or "-"]
            for p in index.patients]
    print(f"{index.n_files} files: {index.n_dicom} DICOM, {index.n_ignored} not DICOM, "
          f"{len(index.bad_files)} unreadable; {len(index.patients)} patients -> {args.db}")
    print(format_table(["patient", "status", "plans", "fractions", "issues"], rows))
    for b in index.bad_files:
        print(f"unreadable: {b.path}: {b.reason}", file=sys.stderr)
    return 0


def _parse_alpha_beta(items: list[str]) -> dict[str, float]:
    from rtplan.dose import parse_alpha_beta

    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.rpartition("=")
        if not sep or not name.strip():
            raise InputError(f"--alpha-beta expects ROI=GY (ROI a name or glob such as "
                             f"PTV*), got {item!r}")
        out[name.strip()] = parse_alpha_beta(value.strip())
    return out


def _run_dvh(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from rtplan.cohort import DVHParameters, run_dvh
    from rtplan.dose import parse_alpha_beta
    from rtplan.errors import from_validation_error

    metrics = tuple(m.strip() for text in args.metrics for m in text.split(",") if m.strip())
    try:
        params = DVHParameters(
            **({"metrics": metrics} if metrics else {}),
            alpha_beta_gy=_parse_alpha_beta(args.alpha_beta),
            default_alpha_beta_gy=parse_alpha_beta(args.default_alpha_beta),
            supersampling=args.supersampling,
        )
    except ValidationError as exc:
        raise from_validation_error(exc, "cohort dvh options") from None
    if args.dask_scheduler and args.dask:
        raise InputError("give --dask local or --dask-scheduler ADDRESS, not both")
    executor: Literal["serial", "process", "dask"] = (
        "dask" if (args.dask or args.dask_scheduler)
        else "serial" if args.workers == 1 else "process"
    )
    summary = run_dvh(
        args.db, params, executor=executor, workers=args.workers,
        dask_scheduler=args.dask_scheduler or "local", recompute=args.recompute,
        progress=not args.json,
    )
    if args.json:
        print_json(summary.model_dump(mode="json"))
    else:
        print(f"{summary.computed} patients computed, {summary.skipped_unchanged} unchanged "
              f"(stored results kept), {len(summary.not_computable)} without a computable "
              f"plan, {len(summary.failed)} failed ({summary.executor}, "
              f"{summary.workers} workers, {summary.seconds:.1f} s)")
        if summary.not_computable:
            print("no computable plan (see 'rtplan cohort index'): "
                  + ", ".join(summary.not_computable))
        for f in summary.failed:
            print(f"failed [{f.error_kind}] {f.patient_id}: {f.error}")
        if summary.interrupted:
            print("interrupted: the results stored so far are kept; run again to finish",
                  file=sys.stderr)
    if summary.interrupted:
        return 130
    return summary.exit_code


def _run_export(args: argparse.Namespace) -> int:
    from rtplan._shared.io import check_not_input
    from rtplan.cohort import export_metrics

    check_not_input(args.output, args.db)
    n = export_metrics(args.db, args.output, overwrite=args.force)
    print(f"{n} rows written to {args.output}")
    return 0


def register(sub: Any) -> None:
    """Add ``rtplan cohort`` and its sub-commands."""
    top = new_command(
        sub, "cohort", help="DVH metrics (physical, EQD2) of many patients in a database",
        description="Index a DICOM tree of many patients (headers only, linked by UID), "
        "compute every plan's physical and EQD2 DVH metrics per ROI (resumable, on a "
        "process pool or a Dask cluster) into a SQLite (or PostgreSQL) database, export a "
        "tidy table.",
        example="rtplan cohort index /data/dicom --db cohort.sqlite\n"
        "rtplan cohort dvh --db cohort.sqlite --metrics D2cc,D50%,V30Gy,Dmean --workers 2\n"
        "rtplan cohort export --db cohort.sqlite -o metrics.csv",
    )
    top.set_defaults(func=help_command(top))
    subs = top.add_subparsers(dest="cohort_command", metavar="SUBCOMMAND")

    p = new_command(
        subs, "index", help="index a DICOM tree into the cohort database",
        description="Walk DICOM_ROOT (any layout), read headers only, link RTDOSE -> "
        "RTPLAN -> RTSTRUCT -> CT by UID per PatientID, and record per patient what is "
        "complete, missing or ambiguous; unreadable files are listed with the reason. "
        "Re-indexing replaces the index and keeps the stored results of patients still "
        "present.",
        example="rtplan cohort index /data/dicom --db cohort.sqlite",
    )
    p.add_argument("root", metavar="DICOM_ROOT")
    p.add_argument("--db", required=True, metavar="FILE|URL",
                   help="SQLite file (created) or postgresql://user@host/dbname (an existing "
                   "database; needs rtplan[cohort-db])")
    add_json(p)
    p.set_defaults(func=_run_index)

    p = new_command(
        subs, "dvh", help="compute and store DVH metrics of every indexed patient",
        description="Per patient, plan and ROI: physical and EQD2 DVH metrics (fractions "
        "from the RTPLAN; alpha/beta per ROI from --alpha-beta overrides, else TG-263-like "
        "name rules: targets/prostate 1.5 Gy, rectum/bladder/other organs 3 Gy, else "
        "--default-alpha-beta), with the plan's fraction-count category and dose-per-"
        "fraction class. A patient whose input files and options are unchanged is not "
        "recomputed; each patient is stored as it finishes, so an interrupted run "
        "resumes. Exit 0 when every patient succeeded or failed on its own inputs "
        "(listed); 1 when a worker died or an internal error struck; 130 on Ctrl-C.",
        example="rtplan cohort dvh --db cohort.sqlite\n"
        "rtplan cohort dvh --db cohort.sqlite --metrics D2cc,D50%,V30Gy --alpha-beta "
        "Rectum=3 --alpha-beta 'PTV*=prostate' --workers 2\n"
        "rtplan cohort dvh --db cohort.sqlite --dask-scheduler tcp://10.0.0.5:8786",
    )
    p.add_argument("--db", required=True, metavar="FILE|URL",
                   help="cohort database: SQLite file or postgresql:// URL")
    p.add_argument("--metrics", action="append", default=[], metavar="LIST",
                   help="comma-separated metrics: Dmean, Dmax, Dmin, D<x>%%, D<x>cc, "
                   "V<x>Gy (cm3), V<x>Gy%% (default Dmean,Dmax,D2cc,D2%%,D50%%,D98%%)")
    p.add_argument("--alpha-beta", action="append", default=[], metavar="ROI=GY",
                   help="alpha/beta of ROIs matching a name or glob (case-insensitive); "
                   "GY a number or a tissue preset (repeat)")
    p.add_argument("--default-alpha-beta", default="3", metavar="GY",
                   help="alpha/beta of ROIs no rule matches (default 3 Gy)")
    p.add_argument("--supersampling", type=int, default=3, metavar="S",
                   help="in-plane DVH samples per dose pixel along each axis (default 3)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes (default: CPU count, at most 8; 1 = serial)")
    p.add_argument("--dask", choices=["local"], default=None,
                   help="run on a Dask LocalCluster of --workers processes")
    p.add_argument("--dask-scheduler", default=None, metavar="ADDRESS",
                   help="run on an existing Dask distributed scheduler (needs "
                   "'rtplan[cohort]'); workers must reach the DICOM files by the same paths")
    p.add_argument("--recompute", action="store_true",
                   help="recompute every patient, even when unchanged")
    add_json(p)
    p.set_defaults(func=_run_dvh)

    p = new_command(
        subs, "export", help="write the stored metrics as a tidy CSV or Parquet table",
        description="One row per patient, plan, ROI, metric and quantity (physical or "
        "EQD2), with the unit, alpha/beta and its source, fractions, fraction category "
        "and dose-per-fraction class.",
        example="rtplan cohort export --db cohort.sqlite -o metrics.csv",
    )
    p.add_argument("--db", required=True, metavar="FILE|URL",
                   help="cohort database: SQLite file or postgresql:// URL")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help=".csv or .parquet (Parquet needs pyarrow)")
    add_force(p)
    p.set_defaults(func=_run_export)
