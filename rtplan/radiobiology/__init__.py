"""Radiobiology: LQ, LQ-L and USC models, BED/EQD2, schedules, SIB plans, solvers.

Doses in Gy, alpha/beta in Gy. See :func:`bed`, :func:`eqd2`, :func:`evaluate` and
:func:`compare_plans`.
"""

from rtplan.radiobiology.analysis import (
    CourseSum,
    EQD2Result,
    LevelComparison,
    PlanComparison,
    compare_plans,
    eqd2_sensitivity,
    evaluate,
    lq_validity_warnings,
    ranking_by_alpha_beta,
    sum_courses,
)
from rtplan.radiobiology.api import (
    ComparisonReport,
    EQD2Curves,
    EquivalentReport,
    PresetsListing,
    compare_report,
    eqd2_curves,
    eqd2_report,
    equivalent_report,
    presets_listing,
    to_jsonable,
)
from rtplan.radiobiology.categories import (
    FRACTION_CATEGORIES,
    DosePerFractionClass,
    dose_per_fraction_class,
    fraction_category,
)
from rtplan.radiobiology.formulas import bed, eqd2, eqdx
from rtplan.radiobiology.models import LQ, LQL, USC, Repopulation, model_from_name
from rtplan.radiobiology.schedule import (
    PLAN_PRESETS,
    PRESETS,
    DoseLevel,
    Fractionation,
    PlanPreset,
    SIBPlan,
    get_preset,
    parse_schedule,
)
from rtplan.radiobiology.solvers import (
    FractionOption,
    FractionsSolution,
    dose_per_fraction_for_target,
    equivalent_schedule,
    fractions_for_target,
)
from rtplan.radiobiology.tissues import TISSUES, TissuePreset, get_tissue

__all__ = [
    "FRACTION_CATEGORIES",
    "LQ",
    "LQL",
    "PLAN_PRESETS",
    "PRESETS",
    "TISSUES",
    "USC",
    "ComparisonReport",
    "CourseSum",
    "DoseLevel",
    "DosePerFractionClass",
    "EQD2Curves",
    "EQD2Result",
    "EquivalentReport",
    "FractionOption",
    "Fractionation",
    "FractionsSolution",
    "LevelComparison",
    "PlanComparison",
    "PlanPreset",
    "PresetsListing",
    "Repopulation",
    "SIBPlan",
    "TissuePreset",
    "bed",
    "compare_plans",
    "compare_report",
    "dose_per_fraction_class",
    "dose_per_fraction_for_target",
    "eqd2",
    "eqd2_curves",
    "eqd2_report",
    "eqd2_sensitivity",
    "eqdx",
    "equivalent_report",
    "equivalent_schedule",
    "evaluate",
    "fraction_category",
    "fractions_for_target",
    "get_preset",
    "get_tissue",
    "lq_validity_warnings",
    "model_from_name",
    "parse_schedule",
    "presets_listing",
    "ranking_by_alpha_beta",
    "sum_courses",
    "to_jsonable",
]
