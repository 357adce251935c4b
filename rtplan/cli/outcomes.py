"""``rtplan outcomes``: survival, PSA, toxicity and SUVmax report of a cohort."""

from __future__ import annotations

import argparse

from rtplan.cli.options import add_force, add_json, new_command, print_json

__all__ = ["register", "run"]


def register(subparsers) -> None:
    """Add the ``outcomes`` command."""
    from rtplan.outcomes._report import BPFS_RULES, GROUPINGS

    p = new_command(
        subparsers,
        "outcomes",
        help="outcome report of a cohort (Kaplan-Meier, log-rank, PSA, toxicity)",
        description=(
            "Report OS, bPFS and ADT-free survival per group (median and 24/36-month "
            "rates with 95 % CI, log-rank, trend and pairwise tests), median follow-up, "
            "PSA response, toxicity and SUVmax. Times in months (days / 30.4375). "
            "Statistics agree with R's survival package."
        ),
        example=(
            "rtplan outcomes cohort.csv --psa psa.csv --toxicity tox.csv --lesions "
            "lesions.csv\nrtplan outcomes cohort.csv --by adt_concomitant --json\n"
            "rtplan outcomes cohort.csv --markdown report.md --plots figures/\n"
            "rtplan outcomes cohort.csv --cox --json"
        ),
    )
    p.add_argument("cohort", help="patients file (.csv or .json), one row per patient")
    p.add_argument("--psa", metavar="FILE", help="PSA values (patient_id, date|days, psa_ng_ml)")
    p.add_argument("--toxicity", metavar="FILE",
                   help="CTCAE grades (patient_id, timepoint, domain, grade; empty = not assessed)")
    p.add_argument("--lesions", metavar="FILE",
                   help="lesions (patient_id, site, suvmax_pre, suvmax_post)")
    p.add_argument("--by", choices=sorted(GROUPINGS), default="fraction_category",
                   help="grouping variable (default: fraction_category)")
    p.add_argument("--bpfs-rule", choices=list(BPFS_RULES), default="paper",
                   help="biochemical failure rule for bPFS from PSA series (default: paper = "
                        "PSA over nadir + 2 ng/ml (strict) after definitive RT, two "
                        "consecutive rises after prostatectomy; phoenix = >= nadir + 2)")
    p.add_argument("--bpfs-censor-death", action="store_true",
                   help="death is not a bPFS event: censor at the last PSA after RT (default: "
                        "death from any cause is an event, as in progression-free survival)")
    p.add_argument("--psa-band", type=float, default=0.0, metavar="PERCENT",
                   help="PSA changes within +-PERCENT count as unchanged in the PSA table "
                        "and the waterfall colours (default 0)")
    p.add_argument("--cox", action="store_true",
                   help="add Cox hazard ratios of each group vs the first group (95 %% CI, "
                        "p; Efron ties) per endpoint (needs rtplan[stats]: statsmodels)")
    p.add_argument("--markdown", metavar="FILE", help="write the report as Markdown")
    p.add_argument("--plots", metavar="DIR",
                   help="write PNG figures (needs rtplan[plot]: matplotlib)")
    add_json(p)
    add_force(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load, validate, report, format."""
    from rtplan._shared.io import atomic_write_text, check_outputs
    from rtplan._shared.optional import require_optional
    from rtplan._shared.table import format_table
    from rtplan.outcomes import load_cohort, load_lesions, load_psa, load_toxicity
    from rtplan.outcomes._psa import check_band_percent
    from rtplan.outcomes._report import outcomes_report, report_markdown, report_tables

    # every output checked (not an input, writable, not existing without --force) and
    # every optional package present before any computation: all or nothing
    check_outputs(args.markdown, inputs=[args.cohort, args.psa, args.toxicity, args.lesions],
                  overwrite=args.force, folders=[args.plots])
    check_band_percent(args.psa_band)
    if args.cox:
        require_optional("statsmodels", feature="--cox")
    if args.plots:
        require_optional("matplotlib", feature="--plots")
    cohort = load_cohort(args.cohort)
    extra: dict[str, tuple[object, ...]] = {}
    if args.psa:
        extra["psa"] = load_psa(args.psa, cohort)
    if args.toxicity:
        extra["toxicity"] = load_toxicity(args.toxicity, cohort)
    if args.lesions:
        extra["lesions"] = load_lesions(args.lesions, cohort)
    if extra:
        cohort = cohort.model_copy(update=extra)
    rep = outcomes_report(cohort, args.by, bpfs_rule=args.bpfs_rule, band_percent=args.psa_band,
                          cox=args.cox, bpfs_death_is_event=not args.bpfs_censor_death)
    written = []
    if args.plots:  # plots first: the Markdown is not left behind if they fail
        from rtplan.outcomes._plots import write_plots

        written = write_plots(cohort, args.plots, args.by, bpfs_rule=args.bpfs_rule,
                              band_percent=args.psa_band,
                              bpfs_death_is_event=not args.bpfs_censor_death,
                              overwrite=args.force)
    if args.markdown:
        atomic_write_text(args.markdown, report_markdown(rep), overwrite=args.force)
    if args.json:
        print_json(rep.model_dump(mode="json"))
        return 0
    for title, headers, rows in report_tables(rep):
        print(title)
        print(format_table(headers, rows))
        print()
    for w in rep.warnings:
        print(f"warning: {w}")
    if args.markdown:
        print(f"wrote {args.markdown}")
    for path in written:
        print(f"wrote {path}")
    return 0
