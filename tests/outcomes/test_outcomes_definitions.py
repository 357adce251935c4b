"""PSA failure rules, PSA response, ESTRO/EORTC 2020, d'Amico, CTCAE tables.

Each case is worked by hand from the definition in the cited source (see the
docstrings in rtplan.outcomes): the expected values below are read off the rule,
not produced by running the code.
"""

from __future__ import annotations

import math

import pytest

from rtplan.errors import InvalidParameterError
from rtplan.outcomes import (
    aua_failure,
    biochemical_failure,
    bpfs_from_psa,
    classify_omd,
    damico_risk,
    fraction_category,
    pcwg3_progression,
    phoenix_failure,
    psa_response,
    psa_response_summary,
    toxicity_table,
    two_rises_failure,
)

# ---------------------------------------------------------------- Phoenix (Roach 2006)
# baseline 3.0 at day 0; nadir 0.5 at day 90; 2.5 = nadir + 2 exactly at day 180


@pytest.mark.parametrize(
    ("inclusive", "failed", "day"),
    [(True, True, 180.0), (False, True, 270.0)],
)
def test_phoenix_inclusive_vs_strict_at_exactly_nadir_plus_2(inclusive, failed, day):
    r = phoenix_failure([0, 90, 180, 270], [3.0, 0.5, 2.5, 2.6], inclusive=inclusive)
    assert (r.failed, r.day, r.nadir_ng_ml) == (failed, day, 0.5)


def test_phoenix_uses_running_nadir_not_later_nadir():
    # value 2.3 at day 120 is < 0.4 + 2 (nadir so far 0.4); a later nadir of 0.1 does not
    # make it a failure retroactively; 2.2 at day 300 >= 0.1 + 2 is
    r = phoenix_failure([0, 60, 120, 200, 300], [1.0, 0.4, 2.3, 0.1, 2.2])
    assert (r.failed, r.day, r.nadir_ng_ml, r.value_ng_ml) == (True, 300.0, 0.1, 2.2)


def test_phoenix_baseline_counts_as_nadir_only_when_asked():
    # PSA only rises after RT: 1.0 (pre) -> 3.1: failure only against the baseline
    assert phoenix_failure([-10, 90], [1.0, 3.1]).failed
    assert not phoenix_failure([-10, 90], [1.0, 3.1], use_baseline=False).failed


# ---------------------------------------------- two consecutive rises (paper's rule)

@pytest.mark.parametrize(
    ("psa", "failed", "day"),
    [
        ([0.5, 0.05, 0.08, 0.12], True, 90.0),  # rise, rise -> at the second rise
        ([0.5, 0.05, 0.08, 0.06, 0.09], False, math.nan),  # rise, fall, rise
        ([0.5, 0.05, 0.05, 0.06], False, math.nan),  # equal value is not a rise
    ],
)
def test_two_consecutive_rises(psa, failed, day):
    days = [0, 30, 60, 90, 120][: len(psa)]
    r = two_rises_failure(days, psa)
    assert r.failed is failed
    assert (math.isnan(r.day) and math.isnan(day)) or r.day == day


# -------------------------------------------------------------- AUA (Cookson 2007)

def test_aua_needs_confirmation_by_the_next_value():
    assert aua_failure([30, 60, 90], [0.1, 0.2, 0.35]).day == 60.0  # 0.2 then 0.35
    r = aua_failure([30, 60, 90, 120], [0.1, 0.25, 0.15, 0.3])
    assert not r.failed and r.unconfirmed  # 0.25 not confirmed; 0.3 awaits a second
    assert not aua_failure([30, 60], [0.19, 0.19]).failed


# ---------------------------------------------------------------- PCWG3 (Scher 2016)

def test_pcwg3_needs_25_percent_and_2_ng_ml_and_3_week_confirmation():
    # nadir 2.0: threshold max(1.25 * 2, 2 + 2) = 4.0
    r = pcwg3_progression([0, 28, 56, 84], [4.0, 2.0, 3.9, 5.0])
    assert not r.failed and r.unconfirmed  # 3.9 < 4.0; 5.0 has no confirmation yet
    r = pcwg3_progression([0, 28, 56, 84], [4.0, 2.0, 4.0, 4.1])
    assert (r.failed, r.day, r.nadir_ng_ml) == (True, 56.0, 2.0)
    # nadir 10: 2 ng/ml is only 20 %: 12.4 fails the 25 % criterion, 12.5 meets both
    assert not pcwg3_progression([0, 28, 56], [10, 12.4, 12.4]).failed
    assert pcwg3_progression([0, 28, 56], [10, 12.5, 12.6]).failed
    # confirmation < 21 days later does not count; the first value >= 21 days later does
    r = pcwg3_progression([0, 28, 40, 49], [2.0, 4.5, 1.0, 4.6])
    assert r.failed and r.day == 28.0  # day 49 is exactly 21 days later
    r = pcwg3_progression([0, 28, 49], [2.0, 4.5, 3.0])
    assert not r.failed
    r = pcwg3_progression([0, 28], [2.0, 4.5])
    assert not r.failed and r.unconfirmed


def test_rule_names_and_bpfs_months():
    assert biochemical_failure([0, 90, 180], [3.0, 0.5, 2.5], "phoenix_strict").failed is False
    with pytest.raises(InvalidParameterError, match="unknown failure rule"):
        biochemical_failure([0], [1], "astro")
    # failure at day 182.625 = 6 months; censoring at the last PSA, 365.25 days = 12 months
    assert bpfs_from_psa([0, 91, 182.625], [3.0, 0.5, 2.6], "phoenix") == (6.0, 1)
    assert bpfs_from_psa([0, 91, 365.25], [3.0, 0.5, 0.4], "phoenix") == (12.0, 0)
    # death (day 304.375 = 10 months) after the last PSA, no failure: event at death
    assert bpfs_from_psa([0, 91, 182.625], [3.0, 0.5, 0.4], "phoenix", death_day=304.375) == (
        10.0, 1)


# Hand-computed bPFS; months = days / 30.4375.
@pytest.mark.parametrize(
    ("days", "psa", "rule", "death_day", "death_is_event", "expected"),
    [
        # the audit's case: death on day 200 after the last PSA (day 180), no failure
        ([-14, 91, 180], [3, 0.5, 0.4], "phoenix", 200, True, (200 / 30.4375, 1)),
        # death not an event: censored at the last PSA (day 180), not at death
        ([-14, 91, 180], [3, 0.5, 0.4], "phoenix", 200, False, (180 / 30.4375, 0)),
        # alive, no failure: censored at the last PSA after RT (day 180)
        ([-14, 91, 180], [3, 0.5, 0.4], "phoenix", None, True, (180 / 30.4375, 0)),
        # failure (2.5 >= 0.5 + 2) on day 180 before death on day 300: failure wins
        ([-14, 91, 180], [3, 0.5, 2.5], "phoenix", 300, True, (180 / 30.4375, 1)),
        ([-14, 91, 180], [3, 0.5, 2.5], "phoenix", 300, False, (180 / 30.4375, 1)),
        # strict rule: 2.5 is not over 0.5 + 2; death on day 300 is the event
        ([-14, 91, 180], [3, 0.5, 2.5], "phoenix_strict", 300, True, (300 / 30.4375, 1)),
        # death on the day of the failing PSA: one event on that day
        ([-14, 91, 180], [3, 0.5, 2.6], "phoenix", 180, True, (180 / 30.4375, 1)),
        # two rises (0.2 < 0.3 < 0.45 on days 91, 182, 273): failure on day 273
        ([-7, 91, 182, 273], [1, 0.2, 0.3, 0.45], "two_rises", None, True,
         (273 / 30.4375, 1)),
    ],
)
def test_bpfs_from_psa_by_hand(days, psa, rule, death_day, death_is_event, expected):
    got = bpfs_from_psa(days, psa, rule, death_day=death_day, death_is_event=death_is_event)
    assert got[1] == expected[1]
    assert got[0] == pytest.approx(expected[0], rel=1e-15)  # months


def test_bpfs_without_post_rt_psa_or_with_psa_after_death_is_refused():
    with pytest.raises(InvalidParameterError, match="no PSA value after RT start"):
        bpfs_from_psa([-30, -14, 0], [3.0, 2.5, 2.4], "phoenix")
    with pytest.raises(InvalidParameterError, match="no PSA value after RT start"):
        bpfs_from_psa([-14], [3.0], "phoenix", death_day=100)
    with pytest.raises(InvalidParameterError, match="after death on day 300"):
        bpfs_from_psa([0, 91, 365.25], [3.0, 0.5, 0.4], "phoenix", death_day=300)
    with pytest.raises(InvalidParameterError, match="death_day must be"):
        bpfs_from_psa([0, 91], [3.0, 0.5], "phoenix", death_day=-1)


def test_phoenix_inclusive_by_default_strict_on_request():
    # Roach 2006: "a rise by 2 ng/mL or more above the nadir": exactly nadir + 2 fails
    assert phoenix_failure([0, 91, 182], [3.0, 0.5, 2.5]).failed
    assert not phoenix_failure([0, 91, 182], [3.0, 0.5, 2.5], inclusive=False).failed
    assert phoenix_failure([0, 91, 182], [3.0, 0.5, 2.51], inclusive=False).failed


def test_negative_psa_is_rejected():
    with pytest.raises(InvalidParameterError, match=">= 0 ng/ml"):
        phoenix_failure([0, 30], [1.0, -0.1])


# ------------------------------------------------------------------- PSA response

def test_psa_response_categories_and_band():
    assert psa_response(4.0, 1.0).percent_change == -75.0
    assert psa_response(4.0, 2.0).decline_50  # exactly 50 % counts
    assert not psa_response(4.0, 2.01).decline_50
    assert psa_response(4.0, 4.2, band_percent=5).category == "unchanged"  # +5 %
    assert psa_response(4.0, 4.21, band_percent=5).category == "rise"
    assert psa_response(4.0, 4.0).category == "unchanged"
    assert psa_response(0.0, 0.3).category == "rise"


def test_psa_response_summary_counts_by_hand():
    pre = [2.0, 4.0, 1.0, 3.0, 10.0]
    post = [0.5, 3.0, 1.0, 6.0, 1.0]  # -75 %, -25 %, 0, +100 %, -90 %
    s = psa_response_summary(pre, post)
    assert (s.n, s.n_decrease, s.n_unchanged, s.n_rise, s.n_decline_50) == (5, 3, 1, 1, 2)
    assert s.median_percent_change == -25.0
    assert s.median_reduction_percent == 75.0  # median of 75, 25, 90


# ------------------------------------------------------- ESTRO/EORTC 2020 (Fig. 2)

@pytest.mark.parametrize(
    ("kwargs", "label", "origin"),
    [
        (dict(prior_polymetastatic=False, prior_omd=False, months_since_primary_diagnosis=3,
              on_systemic_therapy=False), "synchronous oligometastatic disease", "genuine"),
        (dict(prior_polymetastatic=False, prior_omd=False, months_since_primary_diagnosis=6,
              on_systemic_therapy=True), "synchronous oligometastatic disease", "genuine"),
        (dict(prior_polymetastatic=False, prior_omd=False, months_since_primary_diagnosis=6.5,
              on_systemic_therapy=False), "metachronous oligorecurrence", "genuine"),
        (dict(prior_polymetastatic=False, prior_omd=False, months_since_primary_diagnosis=40,
              on_systemic_therapy=True), "metachronous oligoprogression", "genuine"),
        (dict(prior_polymetastatic=False, prior_omd=True, on_systemic_therapy=False),
         "repeat oligorecurrence", "genuine"),
        (dict(prior_polymetastatic=False, prior_omd=True, on_systemic_therapy=True,
              progressing=True), "repeat oligoprogression", "genuine"),
        (dict(prior_polymetastatic=False, prior_omd=True, on_systemic_therapy=True,
              progressing=False), "repeat oligopersistence", "genuine"),
        (dict(prior_polymetastatic=True, prior_omd=False, on_systemic_therapy=False),
         "induced oligorecurrence", "induced"),
        (dict(prior_polymetastatic=True, prior_omd=True, on_systemic_therapy=True,
              progressing=True), "induced oligoprogression", "induced"),
        (dict(prior_polymetastatic=True, prior_omd=False, on_systemic_therapy=True,
              progressing=False), "induced oligopersistence", "induced"),
    ],
)
def test_estro_eortc_2020_classes(kwargs, label, origin):
    c = classify_omd(**kwargs)
    assert (c.label, c.origin) == (label, origin)


def test_estro_eortc_needs_the_deciding_facts():
    with pytest.raises(InvalidParameterError, match="progressing"):
        classify_omd(prior_polymetastatic=True, prior_omd=False, on_systemic_therapy=True)
    with pytest.raises(InvalidParameterError, match="months_since_primary_diagnosis"):
        classify_omd(prior_polymetastatic=False, prior_omd=False, on_systemic_therapy=False)


# ------------------------------------------------------------- d'Amico (JAMA 1998)

@pytest.mark.parametrize(
    ("psa", "gleason", "t", "risk"),
    [
        (10.0, 6, "T2a", "low"),  # all boundaries of low inclusive
        (10.1, 6, "T1c", "intermediate"),
        (20.0, 6, "T1c", "intermediate"),
        (20.1, 6, "T1c", "high"),
        (5.0, 7, "cT1c", "intermediate"),
        (5.0, 6, "T2b", "intermediate"),
        (5.0, 6, "pT2c", "high"),
        (5.0, 8, "T1c", "high"),
        (5.0, 6, "T3a", "high"),
        (None, 9, None, "high"),  # high criterion decides despite missing values
        (5.0, 6, None, None),  # T stage could make it intermediate or high
        (5.0, 6, "T2", None),  # T2 without sub-stage is ambiguous
        (5.0, 6, "Tx", None),
    ],
)
def test_damico(psa, gleason, t, risk):
    assert damico_risk(psa, gleason, t) == risk


def test_damico_rejects_unreadable_stage():
    with pytest.raises(InvalidParameterError, match="T stage"):
        damico_risk(5.0, 6, "stage II")


# ------------------------------------------------------------------- CTCAE tables

def test_toxicity_not_assessed_is_apart_from_grade_0_and_worst_grade_counts():
    rows = [
        ("P1", "before", "GU", 0), ("P2", "before", "GU", None), ("P3", "before", "GU", 1),
        ("P1", "3m", "GU", 1), ("P1", "3m", "GU", 3), ("P2", "3m", "GU", None),
        ("P2", "3m", "GU", 2), ("P3", "3m", "GU", None), ("P1", "3m", "GI", 0),
    ]
    cells = {(c.domain, c.timepoint): c for c in toxicity_table(rows)}
    before = cells[("GU", "before")]
    assert before.counts == (1, 1, 0, 0, 0, 0)
    assert (before.n_assessed, before.n_not_assessed) == (2, 1)
    assert before.percent[:2] == (50.0, 50.0)
    three = cells[("GU", "3m")]
    assert three.counts == (0, 0, 1, 1, 0, 0)  # P1 worst 3, P2 graded 2 (wins over empty)
    assert (three.n_assessed, three.n_not_assessed) == (2, 1)
    assert list(cells) == [("GU", "before"), ("GU", "3m"), ("GI", "3m")]
    with pytest.raises(InvalidParameterError, match="0-5"):
        toxicity_table([("P1", "3m", "GU", 6)])


def test_fraction_category_boundaries():
    assert [fraction_category(n) for n in (1, 9, 10, 24, 25)] == [
        "<10", "<10", "10-24", "10-24", ">24"]
    with pytest.raises(InvalidParameterError):
        fraction_category(0)
    with pytest.raises(InvalidParameterError):
        fraction_category(2.5)
