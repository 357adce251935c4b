"""Outcome statistics for radiotherapy cohorts: survival, PSA, toxicity, classification.

Kaplan-Meier curves and log-rank tests agree with R's ``survival`` package (3.5-3) to
1e-10; time is in the unit given (the cohort tools use months = days / 30.4375).

Examples
--------
>>> from rtplan.outcomes import kaplan_meier, logrank
>>> km = kaplan_meier([3, 5, 8, 12, 20], [1, 0, 1, 1, 0])
>>> round(float(km.survival_at([10])[0]), 4)
0.5333
"""

from rtplan.outcomes._km import (
    CONF_TYPES,
    KaplanMeier,
    LandmarkRate,
    kaplan_meier,
    median_follow_up,
)
from rtplan.outcomes._logrank import (
    LogrankResult,
    PairwiseResult,
    TrendResult,
    holm,
    logrank,
    logrank_trend,
    pairwise_logrank,
)
from rtplan.outcomes._stattests import (
    TestResult,
    chi_square,
    fisher_exact,
    mann_whitney,
    wilcoxon_paired,
)
from rtplan.outcomes.categories import FRACTION_CATEGORIES, fraction_category

__all__ = [
    "CONF_TYPES",
    "FRACTION_CATEGORIES",
    "KaplanMeier",
    "LandmarkRate",
    "LogrankResult",
    "PairwiseResult",
    "TestResult",
    "TrendResult",
    "chi_square",
    "fisher_exact",
    "fraction_category",
    "holm",
    "kaplan_meier",
    "logrank",
    "logrank_trend",
    "mann_whitney",
    "median_follow_up",
    "pairwise_logrank",
    "wilcoxon_paired",
]
