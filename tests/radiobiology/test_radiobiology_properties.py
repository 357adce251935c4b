"""Analytic properties of the models and solvers (hypothesis)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtplan.errors import InvalidParameterError, RTPlanError
from rtplan.radiobiology import (
    LQ,
    LQL,
    USC,
    Fractionation,
    Repopulation,
    bed,
    dose_per_fraction_for_target,
    eqd2,
    eqdx,
    equivalent_schedule,
    fraction_category,
    fractions_for_target,
)

ab_st = st.floats(0.5, 20.0)
n_st = st.integers(1, 45)
d_st = st.floats(0.1, 25.0)


@given(ab=ab_st, n=n_st)
def test_eqd2_equals_physical_dose_at_2gy(ab, n):
    assert eqd2(2.0 * n, n, ab) == pytest.approx(2.0 * n, rel=1e-12)


@given(ab=ab_st, n=n_st, x=st.floats(0.5, 10))
def test_eqdx_equals_physical_dose_at_x(ab, n, x):
    assert eqdx(x * n, n, ab, x) == pytest.approx(x * n, rel=1e-12)


@given(ab=ab_st, n=n_st, d1=d_st, d2=d_st)
def test_monotone_in_dose(ab, n, d1, d2):
    lo, hi = sorted((d1, d2))
    for model in (LQ(), LQL(transition_dose_gy=6.0)):
        assert eqd2(lo * n, n, ab, model=model) <= eqd2(hi * n, n, ab, model=model)


@given(ab=ab_st, n=n_st, d=d_st)
def test_lq_closed_form_by_hand(ab, n, d):
    # BED = n d (1 + d/ab); EQD2 = BED / (1 + 2/ab): definitions (Fowler 1989)
    assert bed(n * d, n, ab) == pytest.approx(n * d * (1 + d / ab), rel=1e-12)
    assert eqd2(n * d, n, ab) == pytest.approx(n * d * (d + ab) / (2 + ab), rel=1e-12)


@given(ab=ab_st, n=n_st, d=d_st)
def test_solver_roundtrip_dose_per_fraction(ab, n, d):
    target = eqd2(n * d, n, ab)
    assert dose_per_fraction_for_target(n, ab, target_eqd2_gy=target) == pytest.approx(
        d, rel=1e-9
    )
    b = bed(n * d, n, ab)
    assert dose_per_fraction_for_target(n, ab, target_bed_gy=b) == pytest.approx(d, rel=1e-9)


@given(ab=ab_st, n=n_st, d=d_st, dt=st.floats(3.0, 12.0))
def test_solver_roundtrip_lql(ab, n, d, dt):
    m = LQL(transition_dose_gy=dt)
    b = bed(n * d, n, ab, model=m)
    assert dose_per_fraction_for_target(n, ab, target_bed_gy=b, model=m) == pytest.approx(
        d, rel=1e-9
    )


@given(ab=ab_st, n=n_st, d=d_st)
def test_fractions_solver_roundtrip(ab, n, d):
    target = eqd2(n * d, n, ab)
    sol = fractions_for_target(d, ab, target_eqd2_gy=target)
    assert sol.fractions_exact == pytest.approx(n, rel=1e-9)
    assert n in [o.fractions for o in sol.options]


@given(ab=ab_st, n=n_st, m=n_st, d=d_st)
def test_equivalent_schedule_same_bed(ab, n, m, d):
    ref = Fractionation(total_dose_gy=n * d, fractions=n)
    eq = equivalent_schedule(ref, m, ab)
    assert eq.fractions == m
    assert bed(eq.total_dose_gy, m, ab) == pytest.approx(bed(n * d, n, ab), rel=1e-9)


@given(ab=ab_st, dt=st.floats(2.0, 15.0))
def test_lql_continuous_and_smooth_at_transition(ab, dt):
    m = LQL(transition_dose_gy=dt)
    eps = 1e-6
    below = float(m.bed_per_fraction(dt - eps, ab))
    at = float(m.bed_per_fraction(dt, ab))
    above = float(m.bed_per_fraction(dt + eps, ab))
    assert above - below == pytest.approx(2 * eps * (1 + 2 * dt / ab), rel=1e-4)
    assert at == pytest.approx(dt * (1 + dt / ab), rel=1e-12)
    # identical to LQ below the transition
    assert float(m.bed_per_fraction(0.5 * dt, ab)) == pytest.approx(
        float(LQ().bed_per_fraction(0.5 * dt, ab)), rel=1e-12
    )


@given(
    alpha=st.floats(0.05, 0.6), d0=st.floats(0.5, 1.5), dq=st.floats(0.5, 3.0)
)
def test_usc_continuous_and_tangent_at_transition(alpha, d0, dq):
    if alpha * d0 >= 0.95:
        return
    m = USC(alpha_per_gy=alpha, d0_gy=d0, dq_gy=dq)
    ab, dt = m.alpha_beta_gy, m.transition_dose_gy
    eps = 1e-6 * dt
    lo = float(m.bed_per_fraction(dt - eps, ab))
    hi = float(m.bed_per_fraction(dt + eps, ab))
    # slope of the terminal line is 1/(alpha D0), equal to the LQ slope at D_T
    assert (hi - lo) / (2 * eps) == pytest.approx(1 / (alpha * d0), rel=1e-4)
    assert float(m.bed_per_fraction(dt, ab)) == pytest.approx(dt * (1 + dt / ab), rel=1e-9)


def test_lql_reduces_lq_above_transition():
    # 1 x 20 Gy at a/b 3 with d_T = 6: LQ 20*(1+20/3) = 153.33; LQ-L = 18 + 14*5 = 88
    assert bed(20, 1, 3.0) == pytest.approx(153.3333333, rel=1e-9)
    assert bed(20, 1, 3.0, model=LQL(transition_dose_gy=6.0)) == pytest.approx(88.0, rel=1e-12)


def test_repopulation_hand_worked():
    # 70 Gy / 35 fx over 46 days, Tk 21 d, Dprolif 0.9 Gy/d: EQD2 loss 22.5 Gy
    rep = Repopulation(kickoff_days=21, dprolif_gy_per_day=0.9, overall_time_days=46)
    assert eqd2(70, 35, 10, repopulation=rep) == pytest.approx(70 - 22.5, rel=1e-12)
    assert bed(70, 35, 10, repopulation=rep) == pytest.approx(84 - 22.5 * 1.2, rel=1e-12)
    # before the kick-off time there is no loss
    early = Repopulation(kickoff_days=28, dprolif_gy_per_day=0.9, overall_time_days=4)
    assert eqd2(37.5, 5, 1.5, repopulation=early) == pytest.approx(eqd2(37.5, 5, 1.5))


def test_vectorised_matches_scalar_and_keeps_float32():
    rng = np.random.default_rng(1)
    dose = rng.uniform(0, 70, size=(4, 5, 6)).astype(np.float32)
    out = eqd2(dose, 25, 3.0)
    assert out.dtype == np.float32 and out.shape == dose.shape
    ref = np.array([eqd2(float(v), 25, 3.0) for v in dose.ravel()]).reshape(dose.shape)
    np.testing.assert_allclose(out, ref, rtol=1e-6)  # float32 rounding
    out64 = eqd2(dose.astype(float), 25, 3.0, model=LQL(transition_dose_gy=6.0))
    ref64 = [eqd2(float(v), 25, 3.0, model=LQL(transition_dose_gy=6.0)) for v in dose.ravel()]
    np.testing.assert_allclose(out64.ravel(), ref64, rtol=1e-12)
    # input untouched
    assert dose.dtype == np.float32


@pytest.mark.parametrize(
    "n, expected", [(1, "<10"), (9, "<10"), (10, "10-24"), (24, "10-24"), (25, ">24"),
                    (34, ">24")]
)
def test_category_edges(n, expected):
    assert fraction_category(n) == expected


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_category_rejects(bad):
    with pytest.raises(InvalidParameterError, match="whole number >= 1"):
        fraction_category(bad)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"total_dose_gy": 30, "fractions": 0, "alpha_beta_gy": 3}, "fractions must be >= 1"),
        ({"total_dose_gy": 30, "fractions": 5, "alpha_beta_gy": 0}, "alpha/beta must be"),
        ({"total_dose_gy": 30, "fractions": 5, "alpha_beta_gy": -2}, "alpha/beta must be"),
        ({"total_dose_gy": -1, "fractions": 5, "alpha_beta_gy": 3}, "negative"),
        ({"total_dose_gy": math.nan, "fractions": 5, "alpha_beta_gy": 3}, "not finite"),
        ({"total_dose_gy": 30, "fractions": 2.5, "alpha_beta_gy": 3}, "whole number"),
    ],
)
def test_bad_input_errors(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        eqd2(**kwargs)


def test_usc_alpha_beta_must_agree():
    m = USC(alpha_per_gy=0.33, d0_gy=1.25, dq_gy=1.8)
    assert eqd2(20, 1, model=m) == pytest.approx(eqd2(20, 1, m.alpha_beta_gy, model=m))
    with pytest.raises(RTPlanError, match="imply alpha/beta"):
        eqd2(20, 1, 3.0, model=m)


@settings(max_examples=50)
@given(ab=ab_st)
def test_sib_level_is_not_base_plus_boost(ab):
    # EQD2 of the 61.2 Gy / 34 fx boost level versus the wrong "51/34 + 10.2/34" sum:
    # the sum always understates a boost delivered at a higher dose per fraction.
    right = eqd2(61.2, 34, ab)
    wrong = eqd2(51.0, 34, ab) + eqd2(10.2, 34, ab)
    assert right > wrong
    # algebra: the difference is (61.2*1.8 - 51*1.5 - 10.2*0.3) / (2 + ab) = 30.6 / (2 + ab)
    assert right - wrong == pytest.approx(30.6 / (2 + ab), rel=1e-9)


def test_sib_difference_at_prostate_alpha_beta():
    # hand calculation at a/b 1.5: 61.2*(1.8+1.5)/3.5 - [51*3/3.5 + 10.2*1.8/3.5]
    right = 61.2 * 3.3 / 3.5
    wrong = 51 * 3.0 / 3.5 + 10.2 * 1.8 / 3.5
    assert eqd2(61.2, 34, 1.5) == pytest.approx(right, rel=1e-12)
    assert right - wrong == pytest.approx(8.743, abs=1e-3)  # "about 9 Gy" in the issue
