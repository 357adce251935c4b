"""Prescription-level evaluation: BED/EQD2 of schedules and SIB plans, side by side,
across alpha/beta values, and summed over courses."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from rtplan.errors import InvalidParameterError
from rtplan.radiobiology.categories import dose_per_fraction_class, fraction_category
from rtplan.radiobiology.formulas import _check_alpha_beta, bed, eqd2
from rtplan.radiobiology.models import LQ, LQL, USC, Repopulation
from rtplan.radiobiology.schedule import Fractionation, SIBPlan, parse_schedule

__all__ = [
    "CourseSum",
    "EQD2Result",
    "LevelComparison",
    "PlanComparison",
    "compare_plans",
    "eqd2_sensitivity",
    "evaluate",
    "lq_validity_warnings",
    "ranking_by_alpha_beta",
    "sum_courses",
]

Model = LQ | LQL | USC
_LQ = LQ()

#: Dose per fraction (Gy) above which LQ extrapolation is flagged, and strongly flagged.
LQ_WARN_GY = 10.0
LQ_STRONG_WARN_GY = 18.0


def lq_validity_warnings(dose_per_fraction_gy: float, model: Model | None = None) -> list[str]:
    """Warnings for LQ used above 10 Gy per fraction (stronger above 18 Gy).

    Examples
    --------
    >>> lq_validity_warnings(9.0)
    []
    >>> lq_validity_warnings(12.0)[0][:40]
    'LQ model used at 12 Gy per fraction, abo'
    """
    model = _LQ if model is None else model
    if not isinstance(model, LQ):
        return []
    d = float(dose_per_fraction_gy)
    if d > LQ_STRONG_WARN_GY:
        return [
            f"LQ model used at {d:.4g} Gy per fraction, above {LQ_STRONG_WARN_GY:g} Gy: the "
            "LQ model is not validated here and likely overestimates the effect; "
            "use it with great caution and compare with LQ-L or USC"
        ]
    if d > LQ_WARN_GY:
        return [
            f"LQ model used at {d:.4g} Gy per fraction, above {LQ_WARN_GY:g} Gy: LQ "
            "extrapolation may overestimate the effect; consider LQ-L or USC"
        ]
    return []


class EQD2Result(BaseModel):
    """BED and EQD2 of one schedule at one alpha/beta (the ``rtplan eqd2`` JSON object)."""

    model_config = ConfigDict(frozen=True)

    schedule: str
    total_dose_gy: float
    fractions: int
    dose_per_fraction_gy: float
    alpha_beta_gy: float
    model: str
    bed_gy: float
    eqd2_gy: float
    fraction_category: str
    warnings: list[str] = Field(default_factory=list)


def _as_schedule(schedule: Fractionation | str) -> tuple[Fractionation, str]:
    if isinstance(schedule, str):
        return parse_schedule(schedule), schedule.strip()
    return schedule, schedule.label()


def evaluate(
    schedule: Fractionation | str,
    alpha_beta_gy: float | None = None,
    *,
    model: Model | None = None,
    repopulation: Repopulation | None = None,
) -> EQD2Result:
    """BED and EQD2 of a schedule, with its fraction category and model warnings.

    Examples
    --------
    >>> r = evaluate("27/3", 1.5)
    >>> r.dose_per_fraction_gy, r.bed_gy, r.eqd2_gy, r.fraction_category
    (9.0, 189.0, 81.0, '<10')
    """
    model = _LQ if model is None else model
    fx, label = _as_schedule(schedule)
    ab = _check_alpha_beta(alpha_beta_gy, model)
    warnings = lq_validity_warnings(fx.dose_per_fraction_gy, model)
    b = float(bed(fx.total_dose_gy, fx.fractions, ab, model=model, repopulation=repopulation))
    e = float(eqd2(fx.total_dose_gy, fx.fractions, ab, model=model, repopulation=repopulation))
    if repopulation is not None and e < 0:
        warnings.append("repopulation exceeds the delivered effect: EQD2 is negative")
    return EQD2Result(
        schedule=label,
        total_dose_gy=fx.total_dose_gy,
        fractions=fx.fractions,
        dose_per_fraction_gy=fx.dose_per_fraction_gy,
        alpha_beta_gy=ab,
        model=model.name,
        bed_gy=b,
        eqd2_gy=e,
        fraction_category=fraction_category(fx.fractions),
        warnings=warnings,
    )


class LevelComparison(BaseModel):
    """One dose level of a plan, evaluated at several alpha/beta values."""

    model_config = ConfigDict(frozen=True)

    level: str
    total_dose_gy: float
    dose_per_fraction_gy: float
    dose_per_fraction_class: str
    results: list[EQD2Result]


class PlanComparison(BaseModel):
    """A plan's levels evaluated at several alpha/beta values."""

    model_config = ConfigDict(frozen=True)

    plan: str
    description: str
    fractions: int
    fraction_category: str
    levels: list[LevelComparison]

    def eqd2_gy(self, level: str, alpha_beta_gy: float) -> float | None:
        """EQD2 (Gy) of a level at an alpha/beta, or None when the plan lacks the level."""
        for lv in self.levels:
            if lv.level == level:
                for r in lv.results:
                    if np.isclose(r.alpha_beta_gy, alpha_beta_gy):
                        return r.eqd2_gy
        return None


def compare_plans(
    plans: Sequence[SIBPlan],
    alpha_beta_values_gy: Sequence[float],
    *,
    model: Model | None = None,
) -> list[PlanComparison]:
    """Evaluate every level of every plan at every alpha/beta.

    Each SIB level is evaluated from its own dose per fraction: the 61.2 Gy boost of
    ENI 51 Gy/34 fx is 61.2 Gy in 34 fractions of 1.8 Gy, not 51 Gy plus a 10.2 Gy
    course.

    Examples
    --------
    >>> from rtplan.radiobiology.schedule import PRESETS
    >>> c = compare_plans([PRESETS["eni-51-34-sib-61.2"].plan], [1.5])[0]
    >>> round(c.eqd2_gy("lesion", 1.5), 2), round(c.eqd2_gy("elective_nodes", 1.5), 2)
    (57.7, 43.71)
    """
    if not alpha_beta_values_gy:
        raise InvalidParameterError("give at least one alpha/beta value (Gy)")
    out = []
    for plan in plans:
        levels = []
        for lv, fx in zip(plan.levels, plan.schedules(), strict=True):
            results = [
                evaluate(fx, ab, model=model) for ab in alpha_beta_values_gy
            ]
            levels.append(
                LevelComparison(
                    level=lv.name,
                    total_dose_gy=fx.total_dose_gy,
                    dose_per_fraction_gy=fx.dose_per_fraction_gy,
                    dose_per_fraction_class=dose_per_fraction_class(
                        fx.dose_per_fraction_gy
                    ).value,
                    results=results,
                )
            )
        out.append(
            PlanComparison(
                plan=plan.name,
                description=plan.description,
                fractions=plan.fractions,
                fraction_category=fraction_category(plan.fractions),
                levels=levels,
            )
        )
    return out


def ranking_by_alpha_beta(
    comparisons: Sequence[PlanComparison],
    alpha_beta_values_gy: Sequence[float],
    level: str = "lesion",
) -> dict[float, list[str]]:
    """Plans ordered by decreasing EQD2 of ``level`` at each alpha/beta.

    Shows where the ranking flips: SBRT 37.5 Gy/5 fx beats the 61.2 Gy SIB at
    alpha/beta 1.5 Gy but not at 10 Gy.

    Examples
    --------
    >>> from rtplan.radiobiology.schedule import PRESETS
    >>> plans = [PRESETS[k].plan for k in ("sbrt-37.5-5", "eni-51-34-sib-61.2")]
    >>> ranking_by_alpha_beta(compare_plans(plans, [1.5, 10]), [1.5, 10])
    {1.5: ['sbrt-37.5-5', 'eni-51-34-sib-61.2'], 10: ['eni-51-34-sib-61.2', 'sbrt-37.5-5']}
    """
    ranks: dict[float, list[str]] = {}
    for ab in alpha_beta_values_gy:
        vals = [(v, c.plan) for c in comparisons if (v := c.eqd2_gy(level, ab)) is not None]
        ranks[ab] = [p for _, p in sorted(vals, key=lambda t: -t[0])]
    return ranks


def eqd2_sensitivity(
    schedules: Sequence[Fractionation | str],
    alpha_beta_values_gy: Sequence[float] | NDArray,
    *,
    model: Model | None = None,
) -> NDArray:
    """EQD2 (Gy) of each schedule (rows) at each alpha/beta (columns).

    Examples
    --------
    >>> t = eqd2_sensitivity(["37.5/5", "61.2/34"], [1.5, 10.0])
    >>> t.round(2).tolist()
    [[96.43, 54.69], [57.7, 60.18]]
    """
    abs_ = np.asarray(alpha_beta_values_gy, dtype=float)
    out = np.empty((len(schedules), abs_.size))
    for i, s in enumerate(schedules):
        fx, _ = _as_schedule(s)
        for j, ab in enumerate(abs_):
            out[i, j] = eqd2(fx.total_dose_gy, fx.fractions, float(ab), model=model)
    return out


class CourseSum(BaseModel):
    """EQD2 of several courses and their sum (Gy)."""

    model_config = ConfigDict(frozen=True)

    alpha_beta_gy: float
    recovery_fraction: float
    course_eqd2_gy: list[float]
    total_eqd2_gy: float


def sum_courses(
    courses: Sequence[Fractionation | str],
    alpha_beta_gy: float,
    *,
    recovery_fraction: float = 0.0,
    model: Model | None = None,
) -> CourseSum:
    """Sum EQD2 over courses given one after another (e.g. re-irradiation).

    ``total = EQD2_last + (1 - recovery_fraction) * sum(EQD2 of earlier courses)``:
    the recovery (tissue repair between courses) discounts earlier courses only.

    Examples
    --------
    External beam 45 Gy/25 fx plus HDR 7 Gy x 4 at alpha/beta 10 (cervix HDR
    consensus: 83.9 Gy):

    >>> round(sum_courses(["45/25", "28/4"], 10).total_eqd2_gy, 1)
    83.9
    """
    if not courses:
        raise InvalidParameterError("give at least one course")
    r = float(recovery_fraction)
    if not 0.0 <= r < 1.0:
        raise InvalidParameterError(
            f"recovery fraction must be in [0, 1), got {recovery_fraction!r}"
        )
    values = []
    for c in courses:
        fx, _ = _as_schedule(c)
        values.append(float(eqd2(fx.total_dose_gy, fx.fractions, alpha_beta_gy, model=model)))
    total = values[-1] + (1.0 - r) * sum(values[:-1])
    return CourseSum(
        alpha_beta_gy=alpha_beta_gy,
        recovery_fraction=r,
        course_eqd2_gy=values,
        total_eqd2_gy=total,
    )
