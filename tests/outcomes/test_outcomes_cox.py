"""Cox proportional hazards (:func:`rtplan.outcomes.cox_ph`) against R ``survival::coxph``.

References: every ``cox[]`` case of ``../shared/reference/survival/expected_r.json``
(R 4.2.2, survival 3.5-3; Efron and Breslow ties, with strata), plus single-factor fits
made with the same R and survival versions (script in ``R_SINGLE_FACTOR`` below) and
the log-rank statistics of the same file (the Cox score test of one binary covariate
equals the log-rank test when no event times are tied).

Tolerances: 1e-6 relative for coefficients, standard errors, hazard ratios and their
limits, z, test statistics and concordance (the reference README's suggestion for Cox
coefficients); 1e-6 relative plus 1e-12 absolute for p-values, which can be tiny; 1e-8
absolute for log-likelihoods (values near -750, so ~1e-11 relative). R's Wald
statistic in the reference file went through ``summary.coxph``, which rounds it to 2
decimals (13.47), so it is compared within that rounding (0.005 absolute); its p-value
was computed by R from the unrounded statistic and is compared at 1e-6.
"""

from __future__ import annotations

import csv
import json
import math
import sys

import numpy as np
import pytest

from conftest import SHARED, load_shared_json, shared_path
from rtplan.errors import ComputationError, InvalidParameterError, MissingDependencyError
from rtplan.outcomes import CoxResult, cox_ph, logrank

pytest.importorskip(
    "statsmodels", reason="Cox models need the optional 'stats' extra (statsmodels)"
)

REL = 1e-6  # relative, per the reference README (Cox coefficients)
P_ABS = 1e-12  # absolute floor for p-values
LL_ABS = 1e-8  # log-likelihood, absolute
WALD_ROUNDING = 0.005  # R's summary() printed the Wald statistic with 2 decimals


def _read(dataset: str) -> list[dict[str, str]]:
    path = shared_path("reference", "survival", "data", f"{dataset}.csv")
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _case_data(case: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Time, event, covariates and strata of a reference case, NA rows dropped as R."""
    rows = _read(case["dataset"])
    tcol = {"lung": "time", "ovarian": "futime", "aml": "time"}[case["dataset"]]
    strata_col = "ph.ecog" if "strata(ph.ecog)" in case["formula"] else None
    need = [tcol, "event", *case["terms"]] + ([strata_col] if strata_col else [])
    rows = [r for r in rows if all(r[k] not in ("", "NA") for k in need)]
    t = np.array([float(r[tcol]) for r in rows])
    e = np.array([int(r["event"]) for r in rows])
    x = np.array([[float(r[k]) for k in case["terms"]] for r in rows])
    s = np.array([r[strata_col] for r in rows]) if strata_col else None
    return t, e, x, s


def _cox_params() -> list:
    """One parameter per ``cox[]`` case (both tie methods); a skip if ../shared is absent."""
    path = SHARED / "reference" / "survival" / "expected_r.json"
    if not path.exists():
        return [pytest.param(None, marks=pytest.mark.skip(
            reason=f"R reference not found: {path} (set RTPLAN_SHARED)"))]
    cases = json.loads(path.read_text())["cox"]
    return [pytest.param(c, id=f"{c['case_id']}-{c['ties']}") for c in cases]


def _fit(case: dict) -> CoxResult:
    t, e, x, s = _case_data(case)
    return cox_ph(t, e, x, names=case["terms"], ties=case["ties"], strata=s)


def _close(got, want, what: str) -> None:
    np.testing.assert_allclose(np.asarray(got, float), np.asarray(want, float), rtol=REL,
                               atol=0, err_msg=what)


@pytest.mark.parametrize("r_case", _cox_params())
def test_every_r_cox_case_matches_all_fields(r_case):
    r = _fit(r_case)
    assert r.names == tuple(r_case["terms"])
    assert r.ties == r_case["ties"]
    assert (r.n, r.n_events) == (r_case["n"], r_case["nevent"])
    _close(r.coef, r_case["coef"], "coef")
    _close(r.se, r_case["se"], "se")
    _close(r.hazard_ratio, r_case["hr"], "hazard ratio")
    _close(r.z, r_case["z"], "z")
    np.testing.assert_allclose(r.p_value, r_case["p"], rtol=REL, atol=P_ABS, err_msg="p")
    _close(r.hr_lower, r_case["hr_lower95"], "HR lower 95 %")
    _close(r.hr_upper, r_case["hr_upper95"], "HR upper 95 %")
    np.testing.assert_allclose([r.loglik_null, r.loglik], r_case["loglik"], rtol=0,
                               atol=LL_ABS, err_msg="loglik")
    for mine, name in ((r.lr_test, "lr_test"), (r.score_test, "score_test")):
        stat, df, p = r_case[name]
        _close(mine.statistic, stat, name)
        assert mine.df == df
        np.testing.assert_allclose(mine.p_value, p, rtol=REL, atol=P_ABS, err_msg=name)
    stat, df, p = r_case["wald_test"]
    # statistic rounded to 2 decimals by R's print; its p was computed unrounded
    assert abs(r.wald_test.statistic - stat) <= WALD_ROUNDING
    assert r.wald_test.df == df
    np.testing.assert_allclose(r.wald_test.p_value, p, rtol=REL, atol=P_ABS)
    c, c_se = r_case["concordance"]
    _close(r.concordance, c, "concordance")
    _close(r.concordance_se, c_se, "concordance se")


def test_wald_equals_squared_z_and_ci_is_consistent():
    """Internal consistency: one covariate -> Wald = z^2; CI = exp(coef +- 1.96 se)."""
    t, e, x, _ = _case_data({"dataset": "ovarian", "terms": ["age"], "formula": ""})
    r = cox_ph(t, e, x[:, 0], names=["age"], conf_level=0.9)
    assert r.wald_test.statistic == pytest.approx(r.z[0] ** 2, rel=1e-12)
    k = 1.6448536269514722  # norm.ppf(0.95), 90 % interval
    assert r.hr_lower[0] == pytest.approx(math.exp(r.coef[0] - k * r.se[0]), rel=1e-12)
    assert r.hr_upper[0] == pytest.approx(math.exp(r.coef[0] + k * r.se[0]), rel=1e-12)


# R 4.2.2, survival 3.5-3 (Debian r-cran-survival 3.5-3-1), on the shared CSV files:
#   coxph(Surv(futime, event) ~ factor(rx), ovarian)
#   coxph(Surv(time, event) ~ x, aml)            # and ties = "breslow"
#   c(coef, sqrt(diag(vcov)), 2 * diff(loglik), wald.test, score,
#     concordance["concordance"], concordance["std"])   printed with 15 digits
R_SINGLE_FACTOR = {
    # dataset, column, level coded 1, ties: coef, se, lr, wald, score, C, C se
    ("ovarian", "rx", "2", "efron"): (-0.596380049392283, 0.586989526366481,
                                      1.05145314884901, 1.03225146722768, 1.06273986129141,
                                      0.607798165137615, 0.0698558140386484),
    ("aml", "x", "Nonmaintained", "efron"): (0.915532575014718, 0.511934275172005,
                                             3.38444733260368, 3.19829992215945,
                                             3.41673439551730, 0.619047619047619,
                                             0.0631849960441082),
    ("aml", "x", "Nonmaintained", "breslow"): (0.904219723685700, 0.512247907304151,
                                               3.29601909421032, 3.11592909448118,
                                               3.32256141627306, 0.619047619047619,
                                               0.0631849960441082),
}


@pytest.mark.parametrize("key", list(R_SINGLE_FACTOR), ids=lambda k: "-".join(k))
def test_single_factor_against_r(key):
    dataset, col, level, ties = key
    rows = _read(dataset)
    tcol = "futime" if dataset == "ovarian" else "time"
    t = np.array([float(r[tcol]) for r in rows])
    e = np.array([int(r["event"]) for r in rows])
    x = np.array([1.0 if r[col] == level else 0.0 for r in rows])
    r = cox_ph(t, e, {col: x}, ties=ties)
    coef, se, lr, wald, score, c, c_se = R_SINGLE_FACTOR[key]
    _close([r.coef[0], r.se[0], r.lr_test.statistic, r.wald_test.statistic,
            r.score_test.statistic, r.concordance, r.concordance_se],
           [coef, se, lr, wald, score, c, c_se], str(key))


def test_score_test_is_the_logrank_test_without_tied_event_times():
    """ovarian has no tied times: Efron = Breslow = exact, score test = R survdiff."""
    ref = next(c for c in load_shared_json("reference", "survival", "expected_r.json")
               ["logrank"] if c["case_id"] == "ovarian_rx")
    rows = _read("ovarian")
    t = np.array([float(r["futime"]) for r in rows])
    e = np.array([int(r["event"]) for r in rows])
    rx = np.array([int(r["rx"]) for r in rows])
    for ties in ("efron", "breslow"):
        r = cox_ph(t, e, rx == 2, names=["rx2"], ties=ties)
        assert r.score_test.statistic == pytest.approx(ref["chisq"], rel=1e-10)
    assert logrank(t, e, rx).statistic == pytest.approx(ref["chisq"], rel=1e-10)


def test_time_unit_and_covariate_shift_do_not_change_estimates():
    """Months vs days (monotone rescaling) and centring leave the partial likelihood."""
    t, e, x, _ = _case_data({"dataset": "lung", "terms": ["age", "sex"], "formula": ""})
    days = cox_ph(t, e, x, names=["age", "sex"])
    months = cox_ph(t / 30.4375, e, x - [60.0, 1.0], names=["age", "sex"])
    np.testing.assert_allclose(months.coef, days.coef, rtol=1e-10)
    np.testing.assert_allclose(months.se, days.se, rtol=1e-10)
    assert months.concordance == days.concordance


def test_mapping_names_and_term_lookup():
    r = cox_ph([1, 2, 3, 4, 5, 6], [1, 1, 0, 1, 1, 1],
               {"dose": [1.0, 2.0, 1.5, 3.0, 2.5, 0.5], "adt": [0, 1, 1, 0, 1, 0]})
    assert r.names == ("dose", "adt")
    assert r.term("adt").coef == r.coef[1]
    with pytest.raises(InvalidParameterError, match=r"no covariate 'age'.*'dose', 'adt'"):
        r.term("age")


def test_concordance_by_brute_force_pairs_with_ties():
    """C counted pair by pair (Harrell; score ties 1/2, tied event times skipped)."""
    rng = np.random.default_rng(3)
    t = rng.integers(1, 12, 60).astype(float)  # many tied times
    e = rng.integers(0, 2, 60)
    x = rng.integers(0, 3, 60).astype(float)  # many tied scores
    r = cox_ph(t, e, x)
    lp = x * r.coef[0]
    conc = disc = tie = 0
    for i in range(60):
        if e[i] != 1:
            continue
        for j in range(60):
            if t[j] > t[i] or (t[j] == t[i] and e[j] == 0):
                conc += lp[i] > lp[j]
                disc += lp[i] < lp[j]
                tie += lp[i] == lp[j]
    assert r.concordance == pytest.approx((conc + tie / 2) / (conc + disc + tie), rel=1e-12)


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"time": [1, 2, 3], "event": [1, 0], "covariates": [1, 2, 3]}, "event has 2"),
        ({"covariates": [[1, 2], [3, 4]]}, r"shape \(n,\) or \(n, p\) with n = 4"),
        ({"covariates": [1.0, np.nan, 2.0, 3.0]}, r"covariate 'x' is missing .* \[1\]"),
        ({"time": [1, -2, 3, 4]}, "time must be >= 0"),
        ({"event": [1, 2, 0, 1]}, "event must be 0"),
        ({"event": [0, 0, 0, 0]}, "no events among 4"),
        ({"ties": "exact"}, r"ties must be one of \['efron', 'breslow'\], got 'exact'"),
        ({"conf_level": 95}, r"conf_level must be in \(0, 1\), got 95"),
        ({"names": ["a", "b"]}, r"2 names \['a', 'b'\] for 1 covariate"),
        ({"covariates": ["a", "b", "a", "b"]}, "covariates must be numeric"),
        ({"strata": [1, None, 2, 2]}, "strata is missing at positions"),
    ],
)
def test_invalid_input_is_refused(kwargs, match):
    args = {"time": [2, 4, 6, 8], "event": [1, 0, 1, 1], "covariates": [0, 1, 0, 1]}
    args.update(kwargs)
    with pytest.raises(InvalidParameterError, match=match):
        cox_ph(args.pop("time"), args.pop("event"), args.pop("covariates"), **args)


def test_constant_covariate_is_named():
    with pytest.raises(ComputationError, match=r"covariate 'sex' is constant \(value 1.0\)"):
        cox_ph([1, 2, 3, 4], [1, 1, 0, 1], {"age": [50, 60, 70, 65], "sex": [1, 1, 1, 1]})


def test_covariate_constant_within_strata_is_named():
    with pytest.raises(ComputationError, match="'site' is constant within every stratum"):
        cox_ph([1, 2, 3, 4, 5, 6], [1, 1, 0, 1, 1, 0],
               {"age": [50, 60, 70, 65, 55, 58], "site": [0, 0, 0, 1, 1, 1]},
               strata=["a", "a", "a", "b", "b", "b"])


def test_collinear_covariates_are_named():
    # indicator columns for every level of a 3-level factor sum to 1 (with the intercept
    # the partial likelihood does not have): the third is collinear with the first two
    g = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    cov = {"g0": g == 0, "g1": g == 1, "g2": g == 2}
    with pytest.raises(ComputationError, match=r"'g2' is collinear with \['g0', 'g1'\]"):
        cox_ph(np.arange(1, 9), [1, 1, 1, 0, 1, 1, 0, 1], cov)


def test_covariate_without_information_at_event_times_is_named():
    # 'late' differs only between subjects censored before the first event
    with pytest.raises(ComputationError, match="'late' carries no information"):
        cox_ph([1, 2, 5, 6, 7, 8], [0, 0, 1, 1, 0, 1],
               {"age": [50, 61, 70, 65, 55, 58], "late": [1, 0, 0, 0, 0, 0]})


def test_infinite_coefficient_is_refused_naming_the_covariate():
    # no events in the treated group: monotone likelihood; R 4.2.2 / survival 3.5-3 runs
    # out of its 20 iterations at coef -22.11038 ("Ran out of iterations and did not
    # converge"), and so does the same Newton-Raphson here
    with pytest.raises(ComputationError,
                       match=r"\[-22\.11\]; R's .* coefficient of \['treated'\] may be infinite"):
        cox_ph([1, 2, 3, 4, 5, 6, 7, 8], [1, 1, 1, 1, 0, 0, 0, 0],
               {"treated": [0, 0, 0, 0, 1, 1, 1, 1]})


def test_missing_statsmodels_names_the_extra(monkeypatch):
    # a None entry in sys.modules makes "import statsmodels..." raise ImportError
    for mod in [m for m in sys.modules if m.startswith("statsmodels")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "statsmodels", None)
    monkeypatch.setitem(sys.modules, "statsmodels.duration.hazard_regression", None)
    with pytest.raises(MissingDependencyError,
                       match=r"Cox proportional hazards needs .*pip install 'rtplan\[stats\]'"):
        cox_ph([1, 2, 3, 4], [1, 0, 1, 1], [0, 1, 0, 1])


def test_loglik_converged_before_a_coefficient_is_refused_like_r_warns():
    # R 4.2.2 / survival 3.5-3 on the same data (19 iterations):
    #   coxph(Surv(t, e) ~ a + g) with t = 1:60, e = 1 for t <= 50 except t = 5, 17, 33,
    #   g = (t > 50), a = round(sin(1:60) * 10) -> coef a 0.0238089, g -20.43702 and
    #   warning "Loglik converged before variable 2 ; coefficient may be infinite."
    t = np.arange(1, 61)
    e = (t <= 50).astype(int)
    e[[4, 16, 32]] = 0
    a = np.round(np.sin(t) * 10)
    with pytest.raises(ComputationError,
                       match=r"converged before the coefficient of \['g'\].*\[0\.024, -20\.437\]"):
        cox_ph(t, e, {"a": a, "g": t > 50})
