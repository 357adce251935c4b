"""Kaplan-Meier, log-rank and trend tests against R (survival 3.5-3, R 4.2.2).

Reference: ../shared/reference/survival/expected_r.json, computed by R on data sets
that ship with R (README there). Every case in that file is a parametrized test here.
Tolerance: 1e-10 absolute for probabilities, standard errors, chi-square and p-values
(R's suggested tolerance); times (medians, quantiles) are compared exactly.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED
from rtplan.errors import InvalidParameterError
from rtplan.outcomes import (
    kaplan_meier,
    logrank,
    logrank_trend,
    median_follow_up,
    wilcoxon_paired,
)

REF_DIR = SHARED / "reference" / "survival"
ATOL = 1e-10  # unitless (probabilities, chi-square, p-values)

pytestmark = pytest.mark.skipif(
    not (REF_DIR / "expected_r.json").exists(),
    reason=f"R reference not found under {REF_DIR} (set RTPLAN_SHARED)",
)


def _load_ref() -> dict:
    p = REF_DIR / "expected_r.json"
    return json.loads(p.read_text()) if p.exists() else {}


REF = _load_ref()
TIME_COL = {"aml": "time", "lung": "time", "ovarian": "futime"}


def _dataset(name: str) -> list[dict[str, str]]:
    with (REF_DIR / "data" / f"{name}.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def _arrays(dataset: str, group_col: str | None = None, strata_col: str | None = None):
    """time, event, group, strata arrays; rows with NA in a used column are dropped (R)."""
    rows = _dataset(dataset)
    used = [c for c in (group_col, strata_col) if c]
    rows = [r for r in rows if all(r[c] not in ("", "NA") for c in used)]
    time = np.array([float(r[TIME_COL[dataset]]) for r in rows])
    event = np.array([int(r["event"]) for r in rows])
    group = None if group_col is None else np.array([r[group_col] for r in rows], dtype=object)
    strata = None if strata_col is None else np.array([r[strata_col] for r in rows], dtype=object)
    return time, event, group, strata


def _nan(v):
    return math.nan if v is None else v


def _close(actual, expected, atol=ATOL):
    """Compare arrays where R's NA (JSON null) must be NaN/inf (not finite) here."""
    exp = np.array([_nan(v) for v in np.atleast_1d(expected)], dtype=float)
    act = np.atleast_1d(np.asarray(actual, dtype=float))
    assert act.shape == exp.shape
    na = np.isnan(exp)
    assert np.array_equal(~np.isfinite(act), na), (act, exp)
    np.testing.assert_allclose(act[~na], exp[~na], rtol=0, atol=atol)


def _fits(case: dict) -> dict:
    time, event, group, _ = _arrays(case["dataset"], case["group_col"])
    fits = {}
    for g in case["groups"]:
        sel = np.ones(time.size, bool) if g == "all" else group == g
        fits[g] = kaplan_meier(time[sel], event[sel], case["conf_type"], case["conf_level"])
    return fits


def _ids(cases, key="case_id"):
    return [f"{c[key]}-{c.get('conf_type', c.get('rho', ''))}" for c in cases]


@pytest.mark.parametrize("case", REF.get("km", []), ids=_ids(REF.get("km", [])))
def test_km_full_curve_matches_r(case):
    for g, fit in _fits(case).items():
        exp = case["full_curve"][g]
        np.testing.assert_array_equal(fit.time, exp["time"])
        np.testing.assert_array_equal(fit.n_risk, exp["n_risk"])
        np.testing.assert_array_equal(fit.n_event, exp["n_event"])
        np.testing.assert_array_equal(fit.n_censor, exp["n_censor"])
        _close(fit.surv, exp["surv"])
        _close(fit.se_log_surv, exp["se_log_surv"])
        _close(fit.lower, exp["lower"])
        _close(fit.upper, exp["upper"])


@pytest.mark.parametrize("case", REF.get("km", []), ids=_ids(REF.get("km", [])))
def test_km_at_times_matches_r_summary(case):
    times = case["requested_times"]
    for g, fit in _fits(case).items():
        exp = case["at_times"][g]
        np.testing.assert_array_equal(exp["time"], times)
        _close(fit.survival_at(times), exp["surv"])
        _close(fit.std_err_at(times), exp["std_err_surv"])
        lo, hi = fit.ci_at(times)
        _close(lo, exp["lower"])
        _close(hi, exp["upper"])
        np.testing.assert_array_equal(fit.at_risk(times), exp["n_risk"])
        edges = [-math.inf, *times]
        counts = [fit.events_between(a, b) for a, b in itertools.pairwise(edges)]
        assert counts == exp["n_event_cum_interval"]


@pytest.mark.parametrize("case", REF.get("median", []), ids=_ids(REF.get("median", [])))
def test_median_table_and_quantiles_match_r(case):
    km_case = next(
        c for c in REF["km"] if c["case_id"] == case["case_id"]
        and c["conf_type"] == case["conf_type"]
    )
    fits = _fits(km_case)
    common_end = max(f.last_time for f in fits.values())  # R rmean="common"
    for g, fit in fits.items():
        exp = case["medians"][g]
        assert fit.n == exp["records"]
        assert int(fit.n_event.sum()) == exp["events"]
        _close(fit.median, exp["median"], atol=0)
        _close(fit.median_ci, [exp["lcl"], exp["ucl"]], atol=0)
        rmean, se_rmean = fit.restricted_mean(common_end)
        _close([rmean, se_rmean], [exp["rmean"], exp["se_rmean"]], atol=1e-9)
        q = case["quantiles_of_time"][g]
        quant, lo, hi = fit.quantile(q["probs"])
        _close(quant, q["quantile"], atol=0)
        _close(lo, q["lower"], atol=0)
        _close(hi, q["upper"], atol=0)


@pytest.mark.parametrize("name", sorted(REF.get("median_edge_cases", {})))
def test_median_edge_cases_match_r_table_rule(name):
    case = REF["median_edge_cases"][name]
    fit = kaplan_meier(case["time"], case["event"])
    _close(fit.median, case["median"], atol=0)
    _close(fit.median_ci, [case["lcl"], case["ucl"]], atol=0)


def test_median_rules_differ_where_the_curve_ends_at_half():
    # R: summary()$table median = 2 but quantile() = (2 + last time 4) / 2 = 3
    fit = kaplan_meier([1, 2, 3, 4], [1, 1, 0, 0])
    assert fit.median == 2.0
    assert fit.quantile([0.5])[0][0] == 3.0


@pytest.mark.parametrize("dataset", sorted(REF.get("reverse_km_followup", {})))
def test_reverse_km_median_follow_up_matches_r(dataset):
    exp = REF["reverse_km_followup"][dataset]
    time, event, _, _ = _arrays(dataset)
    med, lo, hi = median_follow_up(time, event, exp["conf_type"])
    _close([med, lo, hi], [exp["median_followup"], exp["lcl"], exp["ucl"]], atol=0)


def _logrank_case(case):
    formula = case["formula"]
    group_col = formula.split("~")[1].split("+")[0].strip()
    strata_col = formula.split("strata(")[1].rstrip(")") if "strata(" in formula else None
    return _arrays(case["dataset"], group_col, strata_col)


@pytest.mark.parametrize("case", REF.get("logrank", []), ids=_ids(REF.get("logrank", [])))
def test_logrank_matches_r_survdiff(case):
    time, event, group, strata = _logrank_case(case)
    r = logrank(time, event, group, strata=strata, rho=case["rho"], levels=case["groups"])
    assert [str(g) for g in r.groups] == case["groups"]
    assert list(r.n) == case["n"]
    _close(r.observed, case["observed"])
    _close(r.expected, case["expected"])
    _close(np.ravel(r.variance), np.ravel(case["var"]))
    assert r.df == case["df"]
    _close(r.statistic, case["chisq"])
    _close(r.p_value, case["p"])


@pytest.mark.parametrize("case", REF.get("trend", []), ids=_ids(REF.get("trend", [])))
def test_trend_matches_r(case):
    time, event, group, _ = _arrays(case["dataset"], case["group_col"])
    keep = np.isin(group, case["levels"])
    scores = dict(zip(case["levels"], case["scores"], strict=True))
    r = logrank_trend(time[keep], event[keep], group[keep], scores=scores)
    order = [r.groups.index(lv) for lv in case["levels"]]
    _close(np.array(r.observed)[order], case["observed"])
    _close(np.array(r.expected)[order], case["expected"])
    r2 = logrank_trend(time[keep], event[keep], group[keep], scores=case["scores"],
                       levels=case["levels"])
    assert r2.statistic == pytest.approx(r.statistic, abs=ATOL)
    _close([r.u, r.v, r.statistic, r.p_value, r.z],
           [case["U"], case["V"], case["chisq"], case["p"], case["z_signed"]])
    assert r.df == case["df"]
    # equals R's coxph score test with exact ties (independent route to the same number)
    _close(r.statistic, case["coxph_score_exact"]["chisq"], atol=1e-9)


def test_trend_scores_shift_invariant_and_sequence_form():
    time, event, group, _ = _arrays("lung", "age_grp")
    a = logrank_trend(time, event, group, scores={"<60": 0, "60-69": 1, ">=70": 2})
    # sequence scores follow the order given in levels
    b = logrank_trend(time, event, group, scores=[2, 3, 4], levels=["<60", "60-69", ">=70"])
    assert a.statistic == pytest.approx(b.statistic, abs=1e-10)
    # these labels have no natural order: a sequence without levels is refused
    with pytest.raises(InvalidParameterError, match="no natural order"):
        logrank_trend(time, event, group, scores=[0, 1, 2])


@pytest.mark.parametrize(
    ("key", "correction"), [("sleep_default", True), ("sleep_nocorrect", False)]
)
def test_wilcoxon_paired_matches_r_default(key, correction):
    exp = REF["paired_and_rank"][key]
    rows = _dataset("sleep_paired")
    d1 = [float(r["drug1"]) for r in rows]
    d2 = [float(r["drug2"]) for r in rows]
    r = wilcoxon_paired(d1, d2, correction=correction)
    assert r.statistic == exp["stat"]
    assert r.p_value == pytest.approx(exp["p"], abs=1e-12)
    assert "normal approximation" in r.method


def test_reference_file_has_expected_sections():
    # guards against silently skipping everything if the file layout changes
    for key in ("km", "median", "logrank", "trend", "median_edge_cases", "reverse_km_followup"):
        assert REF.get(key), key
    assert Path(REF_DIR / "README.md").exists()
