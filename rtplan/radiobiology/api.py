"""The results of ``rtplan eqd2 / equivalent / compare / presets`` as records.

One function per command builds the record that the command line prints with
``--json`` and that the web calculator (``rtplan serve``) returns from its JSON API:
both call these functions, so the two can never disagree. Turn a record into its JSON
object with :func:`to_jsonable`.

Doses in Gy, alpha/beta in Gy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from rtplan._shared.jsonio import finite_or_none
from rtplan.errors import InvalidParameterError
from rtplan.radiobiology.analysis import (
    EQD2Result,
    PlanComparison,
    compare_plans,
    evaluate,
    lq_validity_warnings,
    ranking_by_alpha_beta,
)
from rtplan.radiobiology.formulas import bed, eqd2
from rtplan.radiobiology.models import LQ, LQL, USC
from rtplan.radiobiology.schedule import PRESETS, Fractionation, PlanPreset, SIBPlan
from rtplan.radiobiology.solvers import (
    FractionOption,
    dose_per_fraction_for_target,
    fractions_for_target,
)
from rtplan.radiobiology.tissues import TISSUES, TissuePreset

__all__ = [
    "DEFAULT_COMPARE_ALPHA_BETA_GY",
    "ComparisonReport",
    "EQD2Curve",
    "EQD2Curves",
    "EquivalentReport",
    "ParameterError",
    "PresetsListing",
    "RankingAtAlphaBeta",
    "RankingFlip",
    "compare_report",
    "eqd2_curves",
    "eqd2_report",
    "equivalent_report",
    "presets_listing",
    "to_jsonable",
]

Model = LQ | LQL | USC
_LQ = LQ()


class ParameterError(InvalidParameterError):
    """An invalid argument of a report function; ``field`` names the keyword argument.

    ``index`` is the position in a sequence argument, when the bad value is one item.
    """

    def __init__(self, message: str, *, field: str, index: int | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.index = index



def to_jsonable(record: BaseModel | Sequence[BaseModel]) -> object:
    """The JSON object of a record (or list of records), as ``--json`` prints it.

    Keys whose value is ``None`` at the top level of an :class:`EquivalentReport`
    are left out (they do not apply to that kind of solution); NaN and infinities
    become ``None``.

    Examples
    --------
    >>> to_jsonable(eqd2_report(["27/3"], [1.5]))[0]["eqd2_gy"]
    81.0
    """
    if isinstance(record, BaseModel):
        data = record.model_dump()
        if isinstance(record, EquivalentReport):
            data = {k: v for k, v in data.items() if v is not None}
        return finite_or_none(data)
    return [to_jsonable(r) for r in record]


# -- eqd2 ---------------------------------------------------------------------------
def _alpha_betas(
    alpha_beta_values_gy: Sequence[float | None], model: Model, field: str
) -> list[float | None]:
    values = list(alpha_beta_values_gy)
    if not values:
        if isinstance(model, USC):
            return [None]
        raise ParameterError(
            f"give at least one alpha/beta value in Gy ({field}), e.g. 1.5 for prostate "
            "cancer", field=field,
        )
    for i, v in enumerate(values):
        if v is None:
            if isinstance(model, USC):
                continue
            raise ParameterError(
                "alpha/beta is needed for this model: give a positive number of Gy",
                field=field, index=i,
            )
        if not (math.isfinite(v) and v > 0):
            raise ParameterError(
                f"alpha/beta must be a positive number of Gy, got {v:g}", field=field, index=i
            )
    return values


def eqd2_report(
    schedules: Sequence[str | Fractionation],
    alpha_beta_values_gy: Sequence[float | None],
    *,
    model: Model | None = None,
) -> list[EQD2Result]:
    """BED and EQD2 of every schedule at every alpha/beta (``rtplan eqd2``).

    Parameters
    ----------
    schedules
        Schedules such as ``"27/3"`` or ``"5x7.5"``, or :class:`Fractionation` objects.
    alpha_beta_values_gy
        alpha/beta values (Gy); may be empty (or ``[None]``) for the USC model, whose
        parameters imply alpha/beta.
    model
        LQ (default), LQ-L or USC.

    Returns
    -------
    list of EQD2Result
        Schedule-major order: every alpha/beta of the first schedule, then the next.

    Examples
    --------
    >>> [round(r.eqd2_gy, 2) for r in eqd2_report(["27/3", "37.5/5"], [1.5])]
    [81.0, 96.43]
    """
    model = _LQ if model is None else model
    abs_ = _alpha_betas(alpha_beta_values_gy, model, "alpha_beta_values_gy")
    if not schedules:
        raise ParameterError("give at least one schedule, e.g. '27/3'", field="schedules")
    return [evaluate(s, ab, model=model) for s in schedules for ab in abs_]


# -- equivalent ---------------------------------------------------------------------
class EquivalentReport(BaseModel):
    """An equivalent schedule (the ``rtplan equivalent --json`` object).

    Solving for the dose per fraction fills ``fractions`` .. ``target_bed_gy``;
    solving for the number of fractions also fills ``fractions_exact`` (the real
    solution) and ``options`` (the whole numbers around it), and ``fractions`` is the
    smallest whole number reaching the target. ``reference`` is the reference
    schedule's result when one was given. Doses in Gy.
    """

    model_config = ConfigDict(frozen=True)

    fractions: int
    dose_per_fraction_gy: float
    total_dose_gy: float
    eqd2_gy: float
    bed_gy: float
    fractions_exact: float | None = None
    target_eqd2_gy: float
    target_bed_gy: float
    options: list[FractionOption] | None = None
    alpha_beta_gy: float
    model: str
    warnings: list[str] = Field(default_factory=list)
    reference: EQD2Result | None = None


def equivalent_report(
    alpha_beta_gy: float | None,
    *,
    reference: str | Fractionation | None = None,
    target_eqd2_gy: float | None = None,
    target_bed_gy: float | None = None,
    fractions: int | None = None,
    dose_per_fraction_gy: float | None = None,
    model: Model | None = None,
) -> EquivalentReport:
    """The schedule equivalent to a reference or a target (``rtplan equivalent``).

    Give one of ``reference``, ``target_eqd2_gy`` or ``target_bed_gy``, and one of
    ``fractions`` (solve for the dose per fraction) or ``dose_per_fraction_gy`` (solve
    for the number of fractions). With the USC model ``alpha_beta_gy`` may be None: the
    alpha/beta implied by its parameters is used.

    Examples
    --------
    >>> r = equivalent_report(1.5, reference="37.5/5", fractions=3)
    >>> round(r.dose_per_fraction_gy, 4), round(r.eqd2_gy, 2)
    (9.8831, 96.43)
    >>> r = equivalent_report(1.5, target_eqd2_gy=78, dose_per_fraction_gy=3)
    >>> r.fractions, round(r.fractions_exact, 4)
    (21, 20.2222)
    """
    model = _LQ if model is None else model
    ab = _alpha_betas([alpha_beta_gy], model, "alpha_beta_gy")[0]
    n_targets = sum(v is not None for v in (reference, target_eqd2_gy, target_bed_gy))
    if n_targets != 1:
        raise ParameterError(
            "give exactly one of reference (a schedule such as '37.5/5'), target_eqd2_gy "
            "or target_bed_gy",
            field="reference",
        )
    if (fractions is None) == (dose_per_fraction_gy is None):
        raise ParameterError(
            "give exactly one of fractions (solve for the dose per fraction) or "
            "dose_per_fraction_gy (solve for the number of fractions)",
            field="fractions",
        )
    ref_result = None
    target: dict[str, float]
    if reference is not None:
        ref_result = evaluate(reference, ab, model=model)
        target = {"target_bed_gy": ref_result.bed_gy}
        ab_used = ref_result.alpha_beta_gy
    else:
        ab_used = model.resolve_alpha_beta(ab)
        if target_bed_gy is not None:
            target = {"target_bed_gy": target_bed_gy}
        else:
            assert target_eqd2_gy is not None
            target = {"target_eqd2_gy": target_eqd2_gy}
    if fractions is not None:
        if isinstance(fractions, bool) or int(fractions) != fractions or fractions < 1:
            raise ParameterError(
                f"fractions must be a whole number >= 1, got {fractions}", field="fractions"
            )
        n = int(fractions)
        d = dose_per_fraction_for_target(n, ab_used, model=model, **target)
        e = float(eqd2(d * n, n, ab_used, model=model))
        b = float(bed(d * n, n, ab_used, model=model))
        return EquivalentReport(
            fractions=n,
            dose_per_fraction_gy=d,
            total_dose_gy=d * n,
            eqd2_gy=e,
            bed_gy=b,
            target_eqd2_gy=e,
            target_bed_gy=b,
            alpha_beta_gy=ab_used,
            model=model.name,
            warnings=lq_validity_warnings(d, model),
            reference=ref_result,
        )
    assert dose_per_fraction_gy is not None
    sol = fractions_for_target(dose_per_fraction_gy, ab_used, model=model, **target)
    # `fractions` is a deliverable whole number (the smallest that reaches the target);
    # the real-valued solution is `fractions_exact`.
    chosen = next(o for o in sol.options if o.fractions == sol.fractions_needed)
    return EquivalentReport(
        fractions=chosen.fractions,
        dose_per_fraction_gy=chosen.dose_per_fraction_gy,
        total_dose_gy=chosen.total_dose_gy,
        eqd2_gy=chosen.eqd2_gy,
        bed_gy=chosen.bed_gy,
        fractions_exact=sol.fractions_exact,
        target_eqd2_gy=sol.target_eqd2_gy,
        target_bed_gy=sol.target_bed_gy,
        options=list(sol.options),
        alpha_beta_gy=ab_used,
        model=model.name,
        warnings=list(sol.warnings),
        reference=ref_result,
    )


# -- compare ------------------------------------------------------------------------
class RankingAtAlphaBeta(BaseModel):
    """Plans by decreasing lesion EQD2 at one alpha/beta (Gy)."""

    model_config = ConfigDict(frozen=True)

    alpha_beta_gy: float
    plans: list[str]


class ComparisonReport(BaseModel):
    """Plans side by side (the ``rtplan compare --json`` object); EQD2 and BED in Gy."""

    model_config = ConfigDict(frozen=True)

    model: str
    alpha_beta_gy: list[float]
    plans: list[PlanComparison]
    lesion_ranking: list[RankingAtAlphaBeta]


#: alpha/beta values (Gy) ``rtplan compare`` uses by default: prostate cancer, late
#: rectum, tumour.
DEFAULT_COMPARE_ALPHA_BETA_GY: tuple[float, ...] = (1.5, 3.0, 10.0)


def compare_report(
    plans: Sequence[SIBPlan] | None = None,
    alpha_beta_values_gy: Sequence[float | None] = DEFAULT_COMPARE_ALPHA_BETA_GY,
    *,
    model: Model | None = None,
) -> ComparisonReport:
    """Every level of every plan at every alpha/beta, and the lesion ranking.

    ``plans`` defaults to the paper's four presets (``rtplan compare``).

    Examples
    --------
    >>> r = compare_report(None, [1.5, 10])
    >>> [(x.alpha_beta_gy, x.plans[0]) for x in r.lesion_ranking]
    [(1.5, 'sbrt-37.5-5'), (10.0, 'eni-51-34-sib-61.2')]
    """
    model = _LQ if model is None else model
    abs_ = _alpha_betas(alpha_beta_values_gy, model, "alpha_beta_values_gy")
    plan_list = [p.plan for p in PRESETS.values()] if not plans else list(plans)
    comps = compare_plans(plan_list, abs_, model=model)  # type: ignore[arg-type]
    abs_used = [r.alpha_beta_gy for r in comps[0].levels[0].results]
    ranking = ranking_by_alpha_beta(comps, abs_used, level="lesion")
    return ComparisonReport(
        model=model.name,
        alpha_beta_gy=abs_used,
        plans=comps,
        lesion_ranking=[
            RankingAtAlphaBeta(alpha_beta_gy=ab, plans=ranking[ab]) for ab in abs_used
        ],
    )


# -- presets ------------------------------------------------------------------------
class PresetsListing(BaseModel):
    """The paper's plan presets and the tissue alpha/beta presets (``rtplan presets``)."""

    model_config = ConfigDict(frozen=True)

    plans: list[PlanPreset]
    tissues: list[TissuePreset]


def presets_listing() -> PresetsListing:
    """Plan and tissue presets with their sources.

    Examples
    --------
    >>> [p.key for p in presets_listing().plans][:2]
    ['sbrt-27-3', 'sbrt-37.5-5']
    """
    return PresetsListing(plans=list(PRESETS.values()), tissues=list(TISSUES.values()))


# -- EQD2 versus alpha/beta ---------------------------------------------------------
class EQD2Curve(BaseModel):
    """EQD2 (Gy) of one level of one plan along the alpha/beta grid."""

    model_config = ConfigDict(frozen=True)

    plan: str
    level: str
    eqd2_gy: list[float]


class RankingFlip(BaseModel):
    """alpha/beta (Gy) where two plans' lesion EQD2 are equal (their ranking flips)."""

    model_config = ConfigDict(frozen=True)

    plans: Annotated[list[str], Field(min_length=2, max_length=2)]
    alpha_beta_gy: float
    eqd2_gy: float


class EQD2Curves(BaseModel):
    """EQD2 versus alpha/beta for every level of every plan, and the ranking flips."""

    model_config = ConfigDict(frozen=True)

    model: str
    alpha_beta_gy: list[float]
    curves: list[EQD2Curve]
    lesion_flips: list[RankingFlip]


def _lesion_eqd2(plan: SIBPlan, ab: float, model: Model) -> float:
    fx = plan.level("lesion") if any(lv.name == "lesion" for lv in plan.levels) else (
        plan.schedules()[0]
    )
    return float(eqd2(fx.total_dose_gy, fx.fractions, ab, model=model))


def eqd2_curves(
    plans: Sequence[SIBPlan],
    *,
    alpha_beta_min_gy: float = 0.5,
    alpha_beta_max_gy: float = 20.0,
    points: int = 97,
    model: Model | None = None,
) -> EQD2Curves:
    """EQD2 (Gy) of every plan level on a log-spaced alpha/beta grid, with the
    alpha/beta values where two plans' lesion EQD2 are equal.

    A flip is found by bisection between grid points where the difference changes
    sign (to 1e-9 relative); the lesion level is the level named ``lesion`` (else the
    first). The USC model fixes alpha/beta through its parameters, so it has no curve.

    Examples
    --------
    SBRT 37.5 Gy/5 fx and 61.2 Gy/34 fx give the same EQD2 where
    ``37.5 (7.5 + ab) = 61.2 (1.8 + ab)``, i.e. ab = 171.09 / 23.7 = 7.219 Gy:

    >>> c = eqd2_curves([PRESETS["sbrt-37.5-5"].plan, PRESETS["eni-51-34-sib-61.2"].plan])
    >>> round(c.lesion_flips[0].alpha_beta_gy, 3)
    7.219
    """
    model = _LQ if model is None else model
    if isinstance(model, USC):
        raise ParameterError(
            "the USC model fixes alpha/beta through its parameters: there is no EQD2 "
            "versus alpha/beta curve; use the LQ or LQ-L model",
            field="model",
        )
    lo, hi = float(alpha_beta_min_gy), float(alpha_beta_max_gy)
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi <= 1000):
        raise ParameterError(
            f"the alpha/beta range must satisfy 0 < min < max <= 1000 Gy, got {lo:g}..{hi:g}",
            field="alpha_beta_min_gy",
        )
    if isinstance(points, bool) or not 2 <= int(points) <= 1000:
        raise ParameterError(f"points must be 2..1000, got {points}", field="points")
    if not plans:
        raise ParameterError("give at least one plan", field="plans")
    grid = [float(x) for x in np.geomspace(lo, hi, int(points))]
    curves = []
    for plan in plans:
        for lv, fx in zip(plan.levels, plan.schedules(), strict=True):
            curves.append(
                EQD2Curve(
                    plan=plan.name,
                    level=lv.name,
                    eqd2_gy=[
                        float(eqd2(fx.total_dose_gy, fx.fractions, ab, model=model))
                        for ab in grid
                    ],
                )
            )
    flips = []
    for i in range(len(plans)):
        for j in range(i + 1, len(plans)):
            a, b = plans[i], plans[j]

            def diff(ab: float, a: SIBPlan = a, b: SIBPlan = b) -> float:
                return _lesion_eqd2(a, ab, model) - _lesion_eqd2(b, ab, model)

            values = [diff(ab) for ab in grid]
            for k in range(len(grid) - 1):
                v0, v1 = values[k], values[k + 1]
                if v0 == 0 or v0 * v1 >= 0:
                    continue
                x0, x1 = grid[k], grid[k + 1]
                for _ in range(200):
                    xm = 0.5 * (x0 + x1)
                    vm = diff(xm)
                    if (vm < 0) == (v0 < 0):
                        x0, v0 = xm, vm
                    else:
                        x1 = xm
                    if x1 - x0 <= 1e-9 * x1:
                        break
                x = 0.5 * (x0 + x1)
                flips.append(
                    RankingFlip(
                        plans=[a.name, b.name], alpha_beta_gy=x,
                        eqd2_gy=_lesion_eqd2(a, x, model),
                    )
                )
    return EQD2Curves(
        model=model.name, alpha_beta_gy=grid, curves=curves, lesion_flips=flips
    )
