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
    g = p.add_argument_group(
        "dose metrics (from 'rtplan cohort export'; joined by patient_id = DICOM PatientID)")
    g.add_argument("--dose-metrics", metavar="FILE",
                   help="metrics table of 'rtplan cohort export' (.csv or .parquet)")
    g.add_argument("--dose", metavar="ROI:METRIC[:QUANTITY]",
                   help="the metric to join, e.g. Rectum:D2cc:EQD2 (QUANTITY EQD2 by default, "
                        "or physical)")
    g.add_argument("--dose-plan", metavar="LABEL",
                   help="RTPlanLabel to use for patients with several plans")
    g.add_argument("--dose-cut", type=float, metavar="VALUE",
                   help="group the report by the metric below / at or above VALUE within each "
                        "fraction category (instead of --by)")
    g.add_argument("--toxicity-grade", type=int, default=2, metavar="G",
                   help="logistic dose-response of toxicity grade >= G (default 2; needs "
                        "--toxicity)")
    g.add_argument("--toxicity-domain", metavar="DOMAIN",
                   help="dose-response of this toxicity domain only (GU, GI, ...)")
    g.add_argument("--dose-plot", metavar="FILE",
                   help="save the dose-response plot (png, pdf, svg; needs rtplan[plot])")
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
    check_outputs(args.markdown, args.dose_plot,
                  inputs=[args.cohort, args.psa, args.toxicity, args.lesions,
                          args.dose_metrics],
                  overwrite=args.force, folders=[args.plots])
    check_band_percent(args.psa_band)
    if args.cox:
        require_optional("statsmodels", feature="--cox")
    if args.plots or args.dose_plot:
        require_optional("matplotlib", feature="--plots / --dose-plot")
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
    dose = _dose(args, cohort)
    grouping: dict = {}
    by = args.by
    if dose is not None and args.dose_cut is not None:
        from rtplan.outcomes import dose_groups

        labels, _order = dose_groups(dose[1], args.dose_cut)
        by = f"{dose[0].label} cut {args.dose_cut:g} by fraction category"
        grouping = {"group_labels": labels}
    rep = outcomes_report(cohort, by, bpfs_rule=args.bpfs_rule, band_percent=args.psa_band,
                          cox=args.cox, bpfs_death_is_event=not args.bpfs_censor_death,
                          **grouping)
    response = None
    if dose is not None and cohort.toxicity:
        from rtplan.outcomes import dose_response

        response = dose_response(cohort, dose[1], grade=args.toxicity_grade,
                                 domain=args.toxicity_domain, metric=dose[0].label)
        if args.dose_plot:
            from rtplan.outcomes import plot_dose_response

            plot_dose_response(response, args.dose_plot, overwrite=args.force)
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
        out = rep.model_dump(mode="json")
        if response is not None:
            out["dose_response"] = response.model_dump(mode="json")
        print_json(out)
        return 0
    for title, headers, rows in report_tables(rep):
        print(title)
        print(format_table(headers, rows))
        print()
    if response is not None:
        _print_response(response)
    for w in rep.warnings + (response.warnings if response is not None else []):
        print(f"warning: {w}")
    if args.markdown:
        print(f"wrote {args.markdown}")
    for path in written:
        print(f"wrote {path}")
    return 0


def _dose(args: argparse.Namespace, cohort):
    """(selector, values by patient) of --dose, or None; checks the option combinations."""
    from rtplan.errors import InputError

    if args.dose is None:
        for opt, val in (("--dose-metrics", args.dose_metrics), ("--dose-cut", args.dose_cut),
                         ("--dose-plot", args.dose_plot), ("--dose-plan", args.dose_plan)):
            if val is not None:
                raise InputError(f"{opt} needs --dose ROI:METRIC[:QUANTITY]")
        return None
    if args.dose_metrics is None:
        raise InputError("--dose needs --dose-metrics FILE (written by 'rtplan cohort export')")
    if args.dose_cut is not None and args.plots:
        raise InputError("--plots draws the groups of --by, not of --dose-cut: leave one out")
    if args.dose_plot and not args.toxicity:
        raise InputError("--dose-plot draws the toxicity dose-response: add --toxicity FILE")
    from rtplan.outcomes import DoseSelector, dose_values, load_dose_metrics

    selector = DoseSelector.parse(args.dose, args.dose_plan)
    known = {p.patient_id for p in cohort.patients}
    metrics = [m for m in load_dose_metrics(args.dose_metrics) if m.patient_id in known]
    if not metrics:
        raise InputError(f"no patient_id of the cohort file is in '{args.dose_metrics}': "
                         "the dose metrics are keyed by the DICOM PatientID")
    return selector, dose_values(metrics, selector)


def _print_response(r) -> None:
    from rtplan._shared.table import format_table

    def num(x, fmt=".3g"):
        return "-" if x is None else format(x, fmt)

    print(f"Dose-response: toxicity grade >= {r.grade}"
          f"{' (' + r.domain + ')' if r.domain else ''} vs {r.metric} ({r.unit}), logistic "
          f"regression, n = {r.n}, {r.events} events")
    ci = "-" if r.odds_ratio_ci95 is None else (
        f"{r.odds_ratio_ci95[0]:.3g}-{r.odds_ratio_ci95[1]:.3g}")
    print(format_table(
        ["slope /" + r.unit, "SE", "OR /" + r.unit, "95% CI", "p (Wald)", "p (LR)",
         f"{r.metric} at 50%"],
        [[num(r.slope_per_unit, ".4g"), num(r.slope_se, ".3g"),
          num(r.odds_ratio_per_unit, ".4g"), ci, num(r.p_wald), num(r.p_likelihood_ratio),
          num(r.dose_50, ".4g")]],
    ))
    print()
