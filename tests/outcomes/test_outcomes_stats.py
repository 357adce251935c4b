"""Proportion and rank tests, Holm adjustment, landmarks and input checks.

References are hand calculations from the definitions (hypergeometric sums with
math.comb, Holm's step-down rule, exact rank-sum enumeration) and the second paper's
counts (14/15 vs 4/11 with a 50 % PSA decline).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtplan.errors import InvalidParameterError
from rtplan.outcomes import (
    chi_square,
    fisher_exact,
    holm,
    kaplan_meier,
    logrank,
    mann_whitney,
    pairwise_logrank,
)


def _fisher_two_sided_by_hand(a, b, c, d):
    """Sum of hypergeometric probabilities <= the observed one (R's two-sided rule)."""
    r1, c1, n = a + b, a + c, a + b + c + d

    def prob(x):
        return math.comb(c1, x) * math.comb(n - c1, r1 - x) / math.comb(n, r1)

    p_obs = prob(a)
    lo, hi = max(0, r1 + c1 - n), min(r1, c1)
    return sum(prob(x) for x in range(lo, hi + 1) if prob(x) <= p_obs * (1 + 1e-7))


def test_fisher_second_paper_psa_decline_is_0_0033_not_printed_0_033():
    # Genuine OM-CRPC 14/15 vs induced 4/11 with >= 50 % PSA decline. The paper prints
    # P = 0.033; the two-sided Fisher exact p is 0.00327 (a typo in the paper, by a
    # factor of 10). We assert the computed value.
    r = fisher_exact([[14, 1], [4, 7]])
    assert r.p_value == pytest.approx(_fisher_two_sided_by_hand(14, 1, 4, 7), rel=1e-12)
    assert round(r.p_value, 4) == 0.0033
    assert r.p_value != pytest.approx(0.033, abs=1e-3)


def test_chi_square_without_correction_matches_hand_calculation():
    obs = np.array([[14, 1], [4, 7]], float)
    exp = obs.sum(1, keepdims=True) * obs.sum(0, keepdims=True) / obs.sum()
    by_hand = float(((obs - exp) ** 2 / exp).sum())
    assert chi_square(obs, correction=False).statistic == pytest.approx(by_hand, rel=1e-12)
    yates = float(((np.abs(obs - exp) - 0.5) ** 2 / exp).sum())
    r = chi_square(obs)
    assert r.statistic == pytest.approx(yates, rel=1e-12)
    assert "Yates" in r.method


def test_mann_whitney_exact_matches_enumeration():
    # complete separation of 3 vs 4: U = 0, two-sided exact p = 2 / C(7, 3)
    r = mann_whitney([1.1, 2.3, 3.0], [4.2, 5.1, 6.3, 7.7])
    assert r.statistic == 0.0
    assert r.p_value == pytest.approx(2 / math.comb(7, 3), rel=1e-12)


def test_holm_matches_step_down_by_hand():
    # sorted p * (m - i): .05, .08, .09, .08 -> cummax .09, .05 -> .09
    np.testing.assert_allclose(
        holm([0.01, 0.02, 0.03, 0.04, 0.05]), [0.05, 0.08, 0.09, 0.09, 0.09], atol=1e-15
    )
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])  # capped at 1


def test_pairwise_logrank_equals_two_group_tests_with_holm():
    rng = np.random.default_rng(7)
    time = rng.exponential(10, 90).round(1)
    event = rng.integers(0, 2, 90)
    group = np.repeat(["<10", "10-24", ">24"], 30)
    res = pairwise_logrank(time, event, group, levels=["<10", "10-24", ">24"])
    assert [(r.group_a, r.group_b) for r in res] == [
        ("<10", "10-24"), ("<10", ">24"), ("10-24", ">24")
    ]
    raw = []
    for r in res:
        sel = np.isin(group, [r.group_a, r.group_b])
        two = logrank(time[sel], event[sel], group[sel])
        assert r.statistic == pytest.approx(two.statistic, abs=1e-12)
        raw.append(two.p_value)
    np.testing.assert_allclose([r.p_holm for r in res], holm(raw))


def test_landmark_beyond_follow_up_is_nan_with_flag():
    km = kaplan_meier([5, 10, 20, 30], [1, 0, 1, 0])
    lm = km.landmark(24)
    assert lm.rate == pytest.approx(0.75 * 0.5) and not lm.beyond_follow_up
    assert lm.n_at_risk == 1
    far = km.landmark(36)
    assert far.beyond_follow_up and math.isnan(far.rate) and math.isnan(far.lower)
    # a curve that reached 0 is known to stay 0
    assert kaplan_meier([1, 2], [1, 1]).landmark(36).rate == 0.0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 30), min_size=1, max_size=40))
def test_km_without_censoring_is_the_empirical_survival(times):
    t = np.array(times, float)
    km = kaplan_meier(t, np.ones_like(t))
    grid = np.arange(0, 32)
    np.testing.assert_allclose(km.survival_at(grid), [(t > g).mean() for g in grid], atol=1e-12)


@pytest.mark.parametrize(
    ("time", "event", "match"),
    [
        ([], [], "empty"),
        ([1, 2], [1], "one event flag"),
        ([1, -2], [1, 0], "negative"),
        ([1, float("nan")], [1, 0], "finite"),
        ([1, 2], [1, 2], "0 .censored. or 1"),
    ],
)
def test_kaplan_meier_rejects_bad_input(time, event, match):
    with pytest.raises(InvalidParameterError, match=match):
        kaplan_meier(time, event)


def test_bad_conf_type_and_groups():
    with pytest.raises(InvalidParameterError, match="conf_type"):
        kaplan_meier([1], [1], conf_type="arcsin")
    with pytest.raises(InvalidParameterError, match="at least 2 groups"):
        logrank([1, 2], [1, 1], ["a", "a"])
    with pytest.raises(InvalidParameterError, match="not in levels"):
        logrank([1, 2], [1, 1], ["a", "b"], levels=["a", "c"])
    with pytest.raises(InvalidParameterError, match="missing"):
        logrank([1, 2, 3], [1, 1, 0], ["a", None, "b"])
