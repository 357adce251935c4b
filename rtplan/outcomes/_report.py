"""The outcomes report: per-group survival, tests, PSA response, toxicity, SUVmax.

:func:`outcomes_report` turns a validated :class:`~rtplan.outcomes.Cohort` into an
:class:`OutcomesReport` (a pydantic model: its JSON form is the ``rtplan outcomes
--json`` output); :func:`report_markdown` renders it as Markdown.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, model_serializer

from rtplan.errors import ComputationError, InputError, InvalidParameterError, RecordError
from rtplan.outcomes._classification import damico_risk
from rtplan.outcomes._cohort import (
    DAYS_PER_MONTH,
    ENDPOINTS,
    Cohort,
    PatientRecord,
    _death_day,
)
from rtplan.outcomes._cox import cox_ph
from rtplan.outcomes._km import kaplan_meier, median_follow_up
from rtplan.outcomes._logrank import logrank, logrank_trend, pairwise_logrank
from rtplan.outcomes._psa import FailureRule, bpfs_from_psa, psa_response_summary
from rtplan.outcomes._stattests import wilcoxon_paired
from rtplan.outcomes._toxicity import toxicity_table
from rtplan.outcomes.categories import FRACTION_CATEGORIES, fraction_category

__all__ = [
    "BPFS_RULES",
    "GROUPINGS",
    "OutcomesReport",
    "outcomes_report",
    "report_markdown",
]

#: The 3-month PSA (when ``psa_3m_ng_ml`` is empty) is the value closest to day
#: 3 x 30.4375 within +-30 days.
PSA_3M_WINDOW_DAYS: float = 30.0
#: Landmark times (months) reported as ``rate_<m>m``.
LANDMARKS_MONTHS: tuple[int, ...] = (24, 36)
#: bPFS rules: "paper" = strict Phoenix (> nadir + 2 ng/ml) after definitive RT, two
#: consecutive rises after prostatectomy; or one :class:`FailureRule` for everyone.
BPFS_RULES: tuple[str, ...] = ("paper", *(r.value for r in FailureRule))

Opt = float | None


def _yes_no(v: bool | None) -> str | None:
    return None if v is None else ("yes" if v else "no")


def _enum(v: Any) -> str | None:
    return None if v is None else str(v.value if hasattr(v, "value") else v)


#: Grouping variables for ``--by``: name -> (value of a patient, ordered levels or None).
GROUPINGS: dict[str, tuple[Callable[[PatientRecord], str | None], tuple[str, ...] | None]] = {
    "fraction_category": (lambda p: fraction_category(p.fractions), FRACTION_CATEGORIES),
    "adt_concomitant": (lambda p: _yes_no(p.adt_concomitant), None),
    "eni": (lambda p: _yes_no(p.eni), None),
    "initial_treatment": (lambda p: _enum(p.initial_treatment), None),
    "relapse": (lambda p: _enum(p.relapse), ("first", "second")),
    "damico_risk": (
        lambda p: damico_risk(p.ipsa_ng_ml, p.gleason, p.t_stage),
        ("low", "intermediate", "high"),
    ),
}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EndpointSummary(_Model):
    """Kaplan-Meier summary of one endpoint in one group (months; rates 0-1)."""

    n: int
    events: int
    median_months: Opt
    median_ci: tuple[Opt, Opt]
    rate_24m: Opt
    rate_24m_ci: tuple[Opt, Opt]
    rate_24m_beyond_follow_up: bool
    rate_36m: Opt
    rate_36m_ci: tuple[Opt, Opt]
    rate_36m_beyond_follow_up: bool


class GroupSummary(_Model):
    """One group: size, share of the cohort (%), and per-endpoint summaries."""

    group: str
    n: int
    percent: float
    endpoints: dict[str, EndpointSummary]


class TestStatistic(_Model):
    """A chi-square test: statistic, degrees of freedom, p-value."""

    __test__ = False

    statistic: Opt
    df: int
    p_value: Opt


class PairwiseTest(_Model):
    """Log-rank test of one pair of groups, unadjusted and Holm-adjusted."""

    group_a: str
    group_b: str
    statistic: Opt
    p_value: Opt
    p_holm: Opt


class CoxHazardRatio(_Model):
    """Cox hazard ratio of one group vs the reference group, Wald 95 % CI and p."""

    group: str
    hazard_ratio: Opt
    ci: tuple[Opt, Opt]
    p_value: Opt


class EndpointCox(_Model):
    """Cox model of one endpoint with one indicator per non-reference group.

    ``hazard_ratios`` is empty and ``note`` says why when the model is not estimable
    (e.g. a group without events: infinite hazard ratio).
    """

    reference: str
    ties: str
    n: int
    events: int
    hazard_ratios: list[CoxHazardRatio]
    likelihood_ratio: TestStatistic | None
    note: str | None = None


class EndpointTests(_Model):
    """Group comparisons of one endpoint; ``cox`` only when requested (``--cox``)."""

    logrank: TestStatistic | None
    trend: TestStatistic | None
    pairwise: list[PairwiseTest]
    cox: EndpointCox | None = None

    @model_serializer(mode="wrap")
    def _omit_cox_unless_requested(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        if self.cox is None:
            data.pop("cox", None)
        return data


class FollowUp(_Model):
    """Median follow-up (reverse Kaplan-Meier on OS), months."""

    median_months: Opt
    ci: tuple[Opt, Opt]
    method: str = "reverse Kaplan-Meier"


class PsaResponseTable(_Model):
    """PSA response at 3 months (pre-RT vs 3-month PSA)."""

    n: int
    n_missing: int
    n_decrease: int
    n_unchanged: int
    n_rise: int
    n_decline_50: int
    median_percent_change: Opt
    median_reduction_percent: Opt
    band_percent: float
    wilcoxon_p: Opt
    wilcoxon_method: str


class ToxicityRow(_Model):
    """CTCAE grade counts of one domain at one timepoint ("not assessed" apart)."""

    domain: str
    timepoint: str
    counts: tuple[int, int, int, int, int, int]
    percent: tuple[Opt, Opt, Opt, Opt, Opt, Opt]
    n_assessed: int
    n_not_assessed: int


class LesionSummary(_Model):
    """Lesion-based SUVmax before and after RT."""

    n_lesions: int
    median_pre: Opt
    median_post: Opt
    mean_reduction_percent: Opt
    wilcoxon_p: Opt
    wilcoxon_method: str


class OutcomesReport(_Model):
    """The outcomes report (``rtplan outcomes --json``)."""

    n_patients: int
    by: str
    groups: list[GroupSummary]
    tests: dict[str, EndpointTests]
    median_follow_up: FollowUp | None
    psa_response: PsaResponseTable | None
    toxicity: list[ToxicityRow]
    lesions: LesionSummary | None
    bpfs_rule: str
    bpfs_death_is_event: bool = True
    warnings: list[str]


def _f(x: float) -> Opt:
    return None if x is None or not math.isfinite(x) else float(x)


#: The paper's rule by initial treatment: strict Phoenix after definitive RT (the
#: paper: "a raise of the serum PSA over 2 ng/ml above PSA nadir"), two consecutive
#: rises after prostatectomy.
PAPER_RULES: dict[str, str] = {"radiotherapy": "phoenix_strict", "surgery": "two_rises"}


def _psa_series(cohort: Cohort) -> dict[str, list[tuple[float, float]]]:
    """(day after RT start, PSA ng/ml) per patient; dated values placed by rt_start_date."""
    starts = {p.patient_id: p.rt_start_date for p in cohort.patients}
    series: dict[str, list[tuple[float, float]]] = {}
    for r in cohort.psa:
        if r.days is not None:
            day = float(r.days)
        else:
            start = starts.get(r.patient_id)
            if start is None or r.date is None:
                raise RecordError(
                    f"PSA value of patient {r.patient_id!r} on {r.date} cannot be placed: "
                    "the patient has no rt_start_date (or is not in the cohort); give "
                    "'days' after RT start instead"
                )
            day = float((r.date - start).days)
        series.setdefault(r.patient_id, []).append((day, r.psa_ng_ml))
    return series


def _bpfs_times(
    cohort: Cohort, rule: str, warnings: list[str], death_is_event: bool = True
) -> dict[str, tuple[float, int]]:
    """bPFS (months, event) per patient: given times, else derived from the PSA series.

    Patients without a PSA value after RT start are left out (and named in a warning).
    """
    series = _psa_series(cohort)
    out: dict[str, tuple[float, int]] = {}
    no_rule, no_post = [], []
    for p in cohort.patients:
        given = p.endpoint("bpfs")
        if given is not None:
            out[p.patient_id] = given
            continue
        if p.patient_id not in series:
            continue
        d, v = zip(*series[p.patient_id], strict=True)
        if max(d) <= 0:
            no_post.append(p.patient_id)
            continue
        use = rule
        if rule == "paper":
            it = _enum(p.initial_treatment)
            if it not in PAPER_RULES:
                no_rule.append(p.patient_id)
                continue
            use = PAPER_RULES[it]
        death = _death_day(p)
        death_day = None
        if death is not None:
            # death from rounded os_months: a PSA within the one-day tolerance moves it
            death_day = max(death[0], max(d)) if max(d) <= death[0] + death[1] else death[0]
        try:
            out[p.patient_id] = bpfs_from_psa(d, v, use, death_day=death_day,
                                              death_is_event=death_is_event)
        except InvalidParameterError as exc:
            raise RecordError(f"bPFS of patient {p.patient_id!r}: {exc}") from None
    if no_post:
        warnings.append(
            f"bPFS: {len(no_post)} patient(s) have no PSA value after RT start and are left "
            f"out of bPFS (not counted in n): {', '.join(no_post)}"
        )
    if no_rule:
        warnings.append(
            f"bPFS: no failure rule for {len(no_rule)} patient(s) without initial_treatment "
            f"surgery/radiotherapy under the 'paper' rule ({', '.join(no_rule[:10])}); "
            "choose a rule with --bpfs-rule"
        )
    return out


def _endpoint_summary(t: np.ndarray, e: np.ndarray) -> EndpointSummary:
    km = kaplan_meier(t, e)
    lo, hi = km.median_ci
    rates: dict[str, Any] = {}
    for m in LANDMARKS_MONTHS:
        lm = km.landmark(m)
        rates[f"rate_{m}m"] = _f(lm.rate)
        rates[f"rate_{m}m_ci"] = (_f(lm.lower), _f(lm.upper))
        rates[f"rate_{m}m_beyond_follow_up"] = lm.beyond_follow_up
    return EndpointSummary(
        n=int(t.size), events=int(e.sum()), median_months=_f(km.median),
        median_ci=(_f(lo), _f(hi)), **rates,
    )


def _psa_pre_post(cohort: Cohort) -> tuple[list[float], list[float], int]:
    series = _psa_series(cohort)
    pre, post, missing = [], [], 0
    for p in cohort.patients:
        a, b = p.psa_pre_ng_ml, p.psa_3m_ng_ml
        s = sorted(series.get(p.patient_id, []))
        if a is None:
            before = [v for d, v in s if d <= 0]
            a = before[-1] if before else None
        if b is None:
            near = [(abs(d - 3 * DAYS_PER_MONTH), v) for d, v in s
                    if abs(d - 3 * DAYS_PER_MONTH) <= PSA_3M_WINDOW_DAYS]
            b = min(near)[1] if near else None
        if a is None or b is None:
            missing += 1
            continue
        pre.append(a)
        post.append(b)
    return pre, post, missing


def _endpoint_cox(
    ep: str, t: np.ndarray, e: np.ndarray, g: np.ndarray, levels: list[str],
    warnings: list[str],
) -> EndpointCox:
    """Cox model of one endpoint: each group vs the first (reference) group."""
    ref = levels[0]
    n, events = int(t.size), int(e.sum())
    try:
        r = cox_ph(t, e, {lv: (g == lv).astype(float) for lv in levels[1:]}, ties="efron")
    except ComputationError as exc:
        warnings.append(f"{ep}: Cox model not estimable: {exc}")
        return EndpointCox(reference=ref, ties="efron", n=n, events=events, hazard_ratios=[],
                           likelihood_ratio=None, note=str(exc))
    return EndpointCox(
        reference=ref, ties="efron", n=n, events=events,
        hazard_ratios=[
            CoxHazardRatio(group=lv, hazard_ratio=_f(r.hazard_ratio[i]),
                           ci=(_f(r.hr_lower[i]), _f(r.hr_upper[i])), p_value=_f(r.p_value[i]))
            for i, lv in enumerate(r.names)
        ],
        likelihood_ratio=TestStatistic(statistic=_f(r.lr_test.statistic), df=r.lr_test.df,
                                       p_value=_f(r.lr_test.p_value)),
    )


def outcomes_report(
    cohort: Cohort,
    by: str = "fraction_category",
    *,
    bpfs_rule: str = "paper",
    band_percent: float = 0.0,
    cox: bool = False,
    bpfs_death_is_event: bool = True,
    group_labels: Mapping[str, str | None] | None = None,
    group_order: Sequence[str] | None = None,
) -> OutcomesReport:
    """Build the outcomes report of a cohort, grouped by ``by``.

    Parameters
    ----------
    cohort : Cohort
        Validated patients, with optional PSA, toxicity and lesion tables.
    by : str
        Grouping variable, one of :data:`GROUPINGS` (default: fraction category).
    bpfs_rule : str
        Failure rule for bPFS from PSA series when ``bpfs_months`` is not given:
        ``paper`` (by ``initial_treatment``: after definitive RT a rise strictly over
        nadir + 2 ng/ml, the paper's wording; after prostatectomy two consecutive rises)
        or a :class:`~rtplan.outcomes.FailureRule` name for everyone. bPFS event =
        the first of failure and death (see ``bpfs_death_is_event``), else censored at
        the last PSA after RT start; patients without a PSA value after RT start are
        left out of bPFS with a warning naming them.
    band_percent : float
        PSA changes within +-band_percent % count as unchanged (table and waterfall).
    cox : bool
        Also fit, per endpoint, a Cox model (Efron ties) with the hazard ratio of each
        group vs the first group (needs the ``stats`` extra: statsmodels).
    bpfs_death_is_event : bool
        True (default): death from any cause is a bPFS event (progression-free
        survival); False: death is not an event (censored at the last PSA after RT).
    group_labels, group_order : mapping and sequence, optional
        Groups given per patient id instead of a :data:`GROUPINGS` variable (e.g. a dose
        metric above/below a cut, :func:`rtplan.outcomes.dose_groups`); ``by`` then only
        names the grouping. ``group_order``: ordered levels (a trend test over them
        when more than two), else the levels are sorted and not ordered.

    Returns
    -------
    OutcomesReport
        Per group: n (%), median (95 % CI) and 24/36-month rates (95 % CI, log
        transform) of OS, bPFS and ADT-free survival; per endpoint the k-group
        log-rank, the trend test (ordered groupings) and pairwise log-rank tests
        (Holm); with ``cox``, Cox hazard ratios vs the first group (95 % CI, p) and
        the likelihood-ratio test; median follow-up (reverse KM); PSA response;
        toxicity; SUVmax.

    Examples
    --------
    >>> from rtplan.outcomes import Cohort, PatientRecord
    >>> pts = [PatientRecord(patient_id=f"P{i}", fractions=f, total_dose_gy=30,
    ...                      os_months=m, os_event=ev)
    ...        for i, (f, m, ev) in enumerate([(3, 10, 1), (5, 30, 0), (20, 15, 1),
    ...                                        (15, 40, 0), (34, 50, 0), (30, 20, 1)])]
    >>> rep = outcomes_report(Cohort(patients=pts))
    >>> [(g.group, g.n) for g in rep.groups]
    [('<10', 2), ('10-24', 2), ('>24', 2)]
    """
    if by not in GROUPINGS and group_labels is None:
        raise InputError(f"unknown grouping {by!r}: choose one of {sorted(GROUPINGS)}")
    if bpfs_rule not in BPFS_RULES:
        raise InputError(f"unknown bPFS rule {bpfs_rule!r}: choose one of {list(BPFS_RULES)}")
    warnings: list[str] = []
    if group_labels is not None:
        labels = {p.patient_id: group_labels.get(p.patient_id) for p in cohort.patients}
        order = tuple(group_order) if group_order else None
    else:
        getter, order = GROUPINGS[by]
        labels = {p.patient_id: getter(p) for p in cohort.patients}
    unlabeled = [pid for pid, g in labels.items() if g is None]
    if unlabeled:
        warnings.append(
            f"{len(unlabeled)} patient(s) without a value for '{by}' are left out of the "
            f"group comparisons: {', '.join(unlabeled[:10])}"
        )
    present = {g for g in labels.values() if g is not None}
    levels = [g for g in order if g in present] if order else sorted(present)
    n_total = len(cohort.patients)

    times: dict[str, dict[str, tuple[float, int]]] = {}
    for ep in ENDPOINTS:
        if ep == "bpfs":
            times[ep] = _bpfs_times(cohort, bpfs_rule, warnings, bpfs_death_is_event)
        else:
            times[ep] = {
                p.patient_id: v for p in cohort.patients if (v := p.endpoint(ep)) is not None
            }
        lacking = [p.patient_id for p in cohort.patients if p.patient_id not in times[ep]]
        if lacking and len(lacking) < n_total:
            warnings.append(
                f"{ep}: no data for {len(lacking)} patient(s), left out of this endpoint: "
                f"{', '.join(lacking[:10])}"
            )
        elif lacking:
            warnings.append(f"{ep}: no patient has data for this endpoint")

    groups = []
    tests: dict[str, EndpointTests] = {}
    for lv in levels:
        ids = [pid for pid, g in labels.items() if g == lv]
        eps = {}
        for ep in ENDPOINTS:
            vals = [times[ep][pid] for pid in ids if pid in times[ep]]
            if vals:
                t = np.array([v[0] for v in vals])
                e = np.array([v[1] for v in vals])
                eps[ep] = _endpoint_summary(t, e)
                for m in LANDMARKS_MONTHS:
                    if getattr(eps[ep], f"rate_{m}m_beyond_follow_up"):
                        warnings.append(
                            f"{ep}, group {lv}: {m}-month rate not estimable (beyond the "
                            f"last follow-up at {t.max():.1f} months); reported as null"
                        )
        groups.append(GroupSummary(group=lv, n=len(ids), percent=100.0 * len(ids) / n_total,
                                   endpoints=eps))
    for ep in ENDPOINTS:
        rows = [(times[ep][pid], labels[pid]) for pid in times[ep] if labels.get(pid)]
        glabels = {g for _, g in rows}
        if len(glabels) < 2:
            if rows:
                warnings.append(f"{ep}: fewer than 2 groups with data; no group comparison")
            continue
        t = np.array([r[0][0] for r in rows])
        e = np.array([r[0][1] for r in rows])
        g = np.array([r[1] for r in rows], dtype=object)
        lv_here = [lv for lv in levels if lv in glabels]
        lr = logrank(t, e, g, levels=lv_here)
        trend = None
        if order is not None and len(lv_here) > 2:
            scores = {lv: float(order.index(lv)) for lv in lv_here}
            tr = logrank_trend(t, e, g, scores=scores, levels=lv_here)
            trend = TestStatistic(statistic=_f(tr.statistic), df=tr.df, p_value=_f(tr.p_value))
        pw = [
            PairwiseTest(group_a=str(r.group_a), group_b=str(r.group_b),
                         statistic=_f(r.statistic), p_value=_f(r.p_value), p_holm=_f(r.p_holm))
            for r in pairwise_logrank(t, e, g, levels=lv_here)
        ] if len(lv_here) > 2 else []
        tests[ep] = EndpointTests(
            logrank=TestStatistic(statistic=_f(lr.statistic), df=lr.df, p_value=_f(lr.p_value)),
            trend=trend,
            pairwise=pw,
            cox=_endpoint_cox(ep, t, e, g, lv_here, warnings) if cox else None,
        )

    fu = None
    if times["os"]:
        vals = list(times["os"].values())
        med, lo, hi = median_follow_up([v[0] for v in vals], [v[1] for v in vals])
        fu = FollowUp(median_months=_f(med), ci=(_f(lo), _f(hi)))

    psa = None
    pre, post, missing = _psa_pre_post(cohort)
    if pre:
        s = psa_response_summary(pre, post, band_percent)
        psa = PsaResponseTable(
            n=s.n, n_missing=missing, n_decrease=s.n_decrease, n_unchanged=s.n_unchanged,
            n_rise=s.n_rise, n_decline_50=s.n_decline_50,
            median_percent_change=_f(s.median_percent_change),
            median_reduction_percent=_f(s.median_reduction_percent),
            band_percent=float(band_percent), wilcoxon_p=_f(s.wilcoxon_p),
            wilcoxon_method=s.wilcoxon_method,
        )

    tox = [
        ToxicityRow.model_validate({
            "domain": c.domain, "timepoint": c.timepoint, "counts": c.counts,
            "percent": tuple(_f(x) for x in c.percent), "n_assessed": c.n_assessed,
            "n_not_assessed": c.n_not_assessed})
        for c in toxicity_table(
            (r.patient_id, r.timepoint, r.domain, r.grade) for r in cohort.toxicity
        )
    ]

    les = None
    pairs = [(r.suvmax_pre, r.suvmax_post) for r in cohort.lesions
             if r.suvmax_pre is not None and r.suvmax_post is not None]
    if pairs:
        a = np.array([x for x, _ in pairs])
        b = np.array([y for _, y in pairs])
        try:
            w = wilcoxon_paired(a, b)
            wp, wm = _f(w.p_value), w.method
        except InputError:
            wp, wm = None, "not computable (no non-zero differences)"
        les = LesionSummary(
            n_lesions=len(pairs), median_pre=_f(float(np.median(a))),
            median_post=_f(float(np.median(b))),
            mean_reduction_percent=_f(100.0 * (a.mean() - b.mean()) / a.mean())
            if a.mean() > 0 else None,
            wilcoxon_p=wp, wilcoxon_method=wm,
        )

    return OutcomesReport(
        n_patients=n_total, by=by, groups=groups, tests=tests, median_follow_up=fu,
        psa_response=psa, toxicity=tox, lesions=les, bpfs_rule=bpfs_rule,
        bpfs_death_is_event=bpfs_death_is_event, warnings=warnings,
    )


# ---------------------------------------------------------------------- rendering

_EP_NAMES = {"os": "Overall survival", "bpfs": "Biochemical PFS", "adt_free": "ADT-free survival"}


def _num(x: Opt, nd: int = 1) -> str:
    return "NR" if x is None else f"{x:.{nd}f}"


def _ci(ci: tuple[Opt, Opt], nd: int = 1) -> str:
    return f"({_num(ci[0], nd)}-{_num(ci[1], nd)})"


def _pct(x: Opt) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


def _p(p: Opt) -> str:
    if p is None:
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def report_tables(rep: OutcomesReport) -> list[tuple[str, list[str], list[list[str]]]]:
    """The report as (title, headers, rows) tables (shared by text and Markdown)."""
    tables = []
    tables.append((
        f"Groups by {rep.by} (n = {rep.n_patients})",
        ["group", "n", "%"],
        [[g.group, str(g.n), f"{g.percent:.1f}"] for g in rep.groups],
    ))
    for ep in ENDPOINTS:
        rows = []
        for g in rep.groups:
            s = g.endpoints.get(ep)
            if s is None:
                continue
            rows.append([
                g.group, str(s.n), str(s.events),
                f"{_num(s.median_months)} {_ci(s.median_ci)}",
                f"{_pct(s.rate_24m)} ({_pct(s.rate_24m_ci[0])}-{_pct(s.rate_24m_ci[1])})",
                f"{_pct(s.rate_36m)} ({_pct(s.rate_36m_ci[0])}-{_pct(s.rate_36m_ci[1])})",
            ])
        if rows:
            tables.append((
                f"{_EP_NAMES[ep]} (months; rates in %, 95 % CI)",
                ["group", "n", "events", "median (95% CI)", "24-month", "36-month"], rows,
            ))
        t = rep.tests.get(ep)
        if t is not None:
            trows = []
            if t.logrank:
                trows.append(["log-rank", _num(t.logrank.statistic, 3), str(t.logrank.df),
                              _p(t.logrank.p_value), ""])
            if t.trend:
                trows.append(["trend", _num(t.trend.statistic, 3), "1", _p(t.trend.p_value), ""])
            for pw in t.pairwise:
                trows.append([f"{pw.group_a} vs {pw.group_b}", _num(pw.statistic, 3), "1",
                              _p(pw.p_value), _p(pw.p_holm)])
            tables.append((f"{_EP_NAMES[ep]}: tests", ["test", "chi2", "df", "p", "p (Holm)"],
                           trows))
        if t is not None and t.cox is not None:
            c = t.cox
            crows = [[c.reference, "1 (reference)", ""]]
            crows += [[h.group, f"{_num(h.hazard_ratio, 2)} {_ci(h.ci, 2)}", _p(h.p_value)]
                      for h in c.hazard_ratios]
            if c.likelihood_ratio is not None:
                lrt = c.likelihood_ratio
                crows.append([f"likelihood ratio (df {lrt.df})",
                              f"chi2 {_num(lrt.statistic, 3)}", _p(lrt.p_value)])
            else:
                crows.append(["", "not estimable (see warnings)", ""])
            tables.append((
                f"{_EP_NAMES[ep]}: Cox hazard ratios vs {c.reference} (95% CI; n = {c.n}, "
                f"{c.events} events)", ["group", "HR (95% CI)", "p"], crows,
            ))
    if rep.median_follow_up:
        f = rep.median_follow_up
        tables.append(("Median follow-up (reverse Kaplan-Meier, months)",
                       ["median", "95% CI"], [[_num(f.median_months), _ci(f.ci)]]))
    if rep.psa_response:
        r = rep.psa_response
        n = max(r.n, 1)
        tables.append((
            "PSA response at 3 months",
            ["n", "decrease", "unchanged", "rise", ">=50% decline", "median reduction %",
             "Wilcoxon p"],
            [[str(r.n), f"{r.n_decrease} ({100 * r.n_decrease / n:.1f}%)",
              f"{r.n_unchanged} ({100 * r.n_unchanged / n:.1f}%)",
              f"{r.n_rise} ({100 * r.n_rise / n:.1f}%)",
              f"{r.n_decline_50} ({100 * r.n_decline_50 / n:.1f}%)",
              _num(r.median_reduction_percent), _p(r.wilcoxon_p)]],
        ))
    if rep.toxicity:
        tables.append((
            "Toxicity (CTCAE v5): patients per worst grade; % of assessed",
            ["domain", "timepoint", "G0", "G1", "G2", "G3", "G4", "G5", "assessed",
             "not assessed"],
            [[r.domain, r.timepoint,
              *(f"{c} ({_num(p)}%)" if c else "0" for c, p in zip(r.counts, r.percent,
                                                                   strict=True)),
              str(r.n_assessed), str(r.n_not_assessed)] for r in rep.toxicity],
        ))
    if rep.lesions:
        les = rep.lesions
        tables.append((
            "SUVmax of irradiated lesions",
            ["lesions", "median pre", "median post", "mean reduction %", "Wilcoxon p"],
            [[str(les.n_lesions), _num(les.median_pre), _num(les.median_post),
              _num(les.mean_reduction_percent), _p(les.wilcoxon_p)]],
        ))
    return tables


_RULE_TEXT = {
    "paper": (
        "the paper's rule by initial treatment: after definitive radiotherapy a PSA "
        "strictly over nadir + 2 ng/ml (\"a raise of the serum PSA over 2 ng/ml above PSA "
        "nadir\"; Phoenix proper is inclusive, >= nadir + 2), after prostatectomy two "
        "consecutive PSA rises from the nadir"
    ),
    "phoenix": "Phoenix, PSA >= nadir + 2 ng/ml (Roach 2006)",
    "phoenix_strict": "PSA strictly over nadir + 2 ng/ml",
    "two_rises": "two consecutive PSA rises from the nadir",
    "aua": "AUA, PSA >= 0.2 ng/ml confirmed by the next value (Cookson 2007)",
    "pcwg3": "PCWG3, >= 25 % and >= 2 ng/ml above nadir confirmed >= 3 weeks later "
             "(Scher 2016)",
}


def _methods_text(rep: OutcomesReport) -> str:
    """The Methods paragraph: estimators, tests and the endpoint definitions."""
    band_pct = rep.psa_response.band_percent if rep.psa_response else 0.0
    band = (
        f"changes within +-{band_pct:g} % count as unchanged" if band_pct > 0
        else "any change counts as a decrease or a rise"
    )
    death = (
        "death from any cause is an event" if rep.bpfs_death_is_event
        else "death is not an event: patients are censored at the last PSA value after "
        "the start of radiotherapy"
    )
    return (
        "Kaplan-Meier estimates with Greenwood variance; 95 % confidence intervals on the "
        "log scale (R survival's default); medians by R's rule (midpoint on an exact 0.5 "
        "plateau); NR = not reached. Rates beyond the last follow-up of a group are not "
        "estimated. Log-rank tests with hypergeometric variance; trend test with scores "
        "0, 1, 2, ... over ordered groups (fraction categories in clinical order <10, "
        "10-24, >24); pairwise log-rank tests with Holm adjustment. Median follow-up by "
        "reverse Kaplan-Meier. Times from the start of radiotherapy; months = days / "
        "30.4375. "
        "Overall survival: death from any cause; censored at the last follow-up. "
        "ADT-free survival: event = start of ADT after radiotherapy (adt_start_date: "
        "salvage or palliative ADT) or death, whichever is first; censored at the last "
        "follow-up. ADT given with radiotherapy (adt_concomitant) is not an event; an "
        "adt_start_date on or before the start of radiotherapy is rejected. "
        f"bPFS ({rep.bpfs_rule}): biochemical failure by "
        f"{_RULE_TEXT.get(rep.bpfs_rule, rep.bpfs_rule)}, dated at the PSA value that "
        f"establishes it; event = the first of failure and death ({death}); otherwise "
        "censored at the last PSA value after the start of radiotherapy. Patients "
        "without a PSA value after the start of radiotherapy are left out of bPFS (named "
        "in the warnings). "
        "PSA response: pre-RT PSA = psa_pre_ng_ml or the last value on or before the "
        "start of radiotherapy; 3-month PSA = psa_3m_ng_ml or the value closest to day "
        f"91.3 (3 x 30.4375) within +-{PSA_3M_WINDOW_DAYS:g} days; {band}. PSA and "
        "SUVmax before/after: Wilcoxon signed-rank "
        "(R's default: exact without ties/zeros, else normal approximation with continuity "
        "correction)."
    )


def report_markdown(rep: OutcomesReport, title: str = "Outcomes report") -> str:
    """Render the report as Markdown (tables, methods, warnings).

    Examples
    --------
    >>> from rtplan.outcomes import Cohort, PatientRecord
    >>> pts = [PatientRecord(patient_id="A", fractions=3, total_dose_gy=27, os_months=5,
    ...                      os_event=1)]
    >>> report_markdown(outcomes_report(Cohort(patients=pts))).splitlines()[0]
    '# Outcomes report'
    """
    parts = [f"# {title}", ""]
    for name, headers, rows in report_tables(rep):
        parts += [f"## {name}", "", _md_table(headers, rows), ""]
    parts += ["## Methods", "", _methods_text(rep), ""]
    if any(t.cox is not None for t in rep.tests.values()):
        parts[-2] += (
            " Cox proportional-hazards models per endpoint (Efron ties, R coxph's default) "
            "with one indicator per group: hazard ratios vs the first group with Wald 95 % "
            "CI and p; likelihood-ratio test over all groups."
        )
    if rep.warnings:
        parts += ["## Warnings", ""] + [f"- {w}" for w in rep.warnings] + [""]
    return "\n".join(parts)
