"""Schedules, SIB plans, presets, categories, solvers and course sums: hand-worked cases."""

import numpy as np
import pytest
from pydantic import ValidationError

from rtplan.errors import InvalidParameterError, ScheduleParseError
from rtplan.radiobiology import (
    PRESETS,
    DoseLevel,
    DosePerFractionClass,
    Fractionation,
    SIBPlan,
    compare_plans,
    dose_per_fraction_class,
    eqd2_sensitivity,
    evaluate,
    fractions_for_target,
    get_preset,
    get_tissue,
    parse_schedule,
    ranking_by_alpha_beta,
    sum_courses,
)


@pytest.mark.parametrize(
    "text, total, n",
    [
        ("37.5/5", 37.5, 5),
        ("37.5Gy/5fx", 37.5, 5),
        ("37.5 Gy / 5 fx", 37.5, 5),
        ("5x7.5", 37.5, 5),
        ("5 x 7.5 Gy", 37.5, 5),
        ("3X9", 27.0, 3),
        ("51/34", 51.0, 34),
        ("57.2 Gy in 34 fractions", 57.2, 34),
    ],
)
def test_parse(text, total, n):
    f = parse_schedule(text)
    assert (f.total_dose_gy, f.fractions) == (pytest.approx(total), n)


def test_dose_per_fraction_is_exact():
    f = parse_schedule("57.2/34")
    assert f.dose_per_fraction_gy == 57.2 / 34  # not rounded to 1.68
    assert f"{f.dose_per_fraction_gy:.6f}" == "1.682353"
    with pytest.raises(ValidationError):
        f.fractions = 3  # immutable


@pytest.mark.parametrize("text", ["", "abc", "37.5", "5x", "/5", "37.5//5", "3 fractions"])
def test_parse_rejects(text):
    with pytest.raises(ScheduleParseError, match="cannot parse schedule"):
        parse_schedule(text)


@pytest.mark.parametrize("text, match", [("30/0", "fractions must be >= 1"),
                                         ("-30/5", "negative"), ("0x3", ">= 1")])
def test_parse_rejects_values(text, match):
    with pytest.raises(InvalidParameterError, match=match):
        parse_schedule(text)


def test_presets_are_the_papers():
    assert set(PRESETS) == {"sbrt-27-3", "sbrt-37.5-5", "eni-51-34-sib-61.2",
                            "eni-51-34-sib-57.2"}
    sib = get_preset("eni-51-34-sib-57.2").plan
    assert sib.fractions == 34
    assert sib.level("lesion").total_dose_gy == 57.2
    assert sib.level("elective_nodes").total_dose_gy == 51.0
    with pytest.raises(InvalidParameterError, match="unknown preset"):
        get_preset("sbrt-40-5")


def test_sib_plan_levels_unique():
    with pytest.raises(ValidationError, match="unique"):
        SIBPlan(name="x", fractions=5, levels=[DoseLevel(name="a", total_dose_gy=1),
                                               DoseLevel(name="a", total_dose_gy=2)])


def test_compare_hand_values_and_ranking_flip():
    # hand: SBRT 37.5/5 at a/b 1.5: 37.5*(7.5+1.5)/3.5 = 96.43; at 10: 37.5*17.5/12 = 54.69
    #       SIB 61.2/34 at 1.5: 61.2*3.3/3.5 = 57.71;        at 10: 61.2*11.8/12 = 60.18
    plans = [PRESETS["sbrt-37.5-5"].plan, PRESETS["eni-51-34-sib-61.2"].plan]
    comps = compare_plans(plans, [1.5, 10.0])
    assert comps[0].eqd2_gy("lesion", 1.5) == pytest.approx(37.5 * 9 / 3.5)
    assert comps[1].eqd2_gy("lesion", 10.0) == pytest.approx(61.2 * 11.8 / 12)
    assert comps[1].eqd2_gy("elective_nodes", 1.5) == pytest.approx(51 * 3 / 3.5)
    assert comps[0].eqd2_gy("elective_nodes", 1.5) is None
    assert comps[0].fraction_category == "<10" and comps[1].fraction_category == ">24"
    rank = ranking_by_alpha_beta(comps, [1.5, 10.0])
    assert rank[1.5][0] == "sbrt-37.5-5" and rank[10.0][0] == "eni-51-34-sib-61.2"


def test_sensitivity_crossover():
    abs_ = np.linspace(1.0, 12.0, 111)
    t = eqd2_sensitivity(["37.5/5", "61.2/34"], abs_)
    # analytic crossing: 37.5 (7.5 + x) = 61.2 (1.8 + x)  ->  x = (281.25 - 110.16) / 23.7
    cross = (281.25 - 110.16) / 23.7
    assert np.all((t[0] > t[1])[abs_ < cross]) and np.all((t[0] < t[1])[abs_ > cross])


def test_lq_warnings():
    assert evaluate("27/3", 1.5).warnings == []
    w = evaluate("1x12", 1.5).warnings
    assert len(w) == 1 and "above 10 Gy" in w[0]
    w = evaluate("1x20", 1.5).warnings
    assert len(w) == 1 and "above 18 Gy" in w[0]


@pytest.mark.parametrize(
    "d, cls",
    [(1.5, "unclassified"), (1.8, "conventional"), (2.0, "conventional"),
     (2.2, "unclassified"), (2.4, "moderate_hypofractionation"),
     (60 / 20, "moderate_hypofractionation"),
     (3.4, "moderate_hypofractionation"), (3.5, "unclassified"), (4.99, "unclassified"),
     (5.0, "ultrahypofractionation"), (7.25, "ultrahypofractionation")],
)
def test_dose_per_fraction_class_edges(d, cls):
    assert dose_per_fraction_class(d) == DosePerFractionClass(cls)


def test_fractions_solver_hand_case():
    # 78 Gy EQD2 at a/b 1.5 in 3-Gy fractions: BED 182 / (3*(1+2)) = 20.22 fractions
    sol = fractions_for_target(3.0, 1.5, target_eqd2_gy=78.0)
    assert sol.fractions_exact == pytest.approx(182 / 9)
    assert [o.fractions for o in sol.options] == [20, 21]
    assert sol.options[1].eqd2_gy == pytest.approx(63 * 4.5 / 3.5)


def test_courses_recovery_applies_to_earlier_only():
    # 2 courses at a/b 3: 30/10 (EQD2 30*6/5 = 36) then 20/5 (20*7/5 = 28)
    s = sum_courses(["30/10", "20/5"], 3.0, recovery_fraction=0.25)
    assert s.course_eqd2_gy == pytest.approx([36.0, 28.0])
    assert s.total_eqd2_gy == pytest.approx(28 + 0.75 * 36)
    with pytest.raises(InvalidParameterError, match="recovery fraction"):
        sum_courses(["30/10"], 3.0, recovery_fraction=1.0)


def test_tissue_presets_have_range_and_citation():
    p = get_tissue("prostate")
    assert p.alpha_beta_gy == 1.5 and p.range_gy == (1.2, 3.0) and "Brenner" in p.citation
    for key in ("rectum_late", "bladder_late"):
        assert get_tissue(key).alpha_beta_gy == 3.0
    assert get_tissue("tumour").alpha_beta_gy == 10.0


def test_fractionation_from_dose_per_fraction():
    assert Fractionation.from_dose_per_fraction(1.8, 34).total_dose_gy == pytest.approx(61.2)
