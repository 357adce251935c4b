"""Outcome statistics for radiotherapy cohorts: survival, PSA, toxicity, classification.

Kaplan-Meier curves and log-rank tests agree with R's ``survival`` package (3.5-3) to
1e-10; time is in the unit given (the cohort tools use months = days / 30.4375).
Cohort files (CSV/JSON) are validated by pydantic models; a bad row raises
:class:`~rtplan.errors.RecordError` naming file, row and field.

Examples
--------
>>> from rtplan.outcomes import kaplan_meier, logrank
>>> km = kaplan_meier([3, 5, 8, 12, 20], [1, 0, 1, 1, 0])
>>> round(float(km.survival_at([10])[0]), 4)
0.5333
"""

from rtplan.outcomes._classification import OmdClassification, classify_omd, damico_risk
from rtplan.outcomes._cohort import (
    Cohort,
    InitialTreatment,
    LesionRecord,
    PatientRecord,
    PsaRecord,
    Relapse,
    ToxicityRecord,
    days_to_months,
    load_cohort,
    load_lesions,
    load_psa,
    load_toxicity,
)
from rtplan.outcomes._cox import CoxResult, CoxTerm, CoxTest, cox_ph
from rtplan.outcomes._dose_join import (
    DoseResponse,
    DoseSelector,
    DoseValue,
    dose_groups,
    dose_response,
    dose_values,
    load_dose_metrics,
    plot_dose_response,
)
from rtplan.outcomes._km import (
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
    natural_order,
    pairwise_logrank,
)
from rtplan.outcomes._plots import write_plots
from rtplan.outcomes._psa import (
    BiochemicalFailure,
    FailureRule,
    PsaResponse,
    PsaResponseSummary,
    aua_failure,
    biochemical_failure,
    bpfs_from_psa,
    pcwg3_progression,
    phoenix_failure,
    psa_response,
    psa_response_summary,
    two_rises_failure,
)
from rtplan.outcomes._report import (
    BPFS_RULES,
    GROUPINGS,
    OutcomesReport,
    outcomes_report,
    report_markdown,
    report_tables,
)
from rtplan.outcomes._schema import outcomes_json_schemas
from rtplan.outcomes._stattests import (
    TestResult,
    chi_square,
    fisher_exact,
    mann_whitney,
    wilcoxon_paired,
)
from rtplan.outcomes._toxicity import ToxicityCell, toxicity_table
from rtplan.outcomes.categories import fraction_category

__all__ = [
    "BPFS_RULES",
    "GROUPINGS",
    "BiochemicalFailure",
    "Cohort",
    "CoxResult",
    "CoxTerm",
    "CoxTest",
    "DoseResponse",
    "DoseSelector",
    "DoseValue",
    "FailureRule",
    "InitialTreatment",
    "KaplanMeier",
    "LandmarkRate",
    "LesionRecord",
    "LogrankResult",
    "OmdClassification",
    "OutcomesReport",
    "PairwiseResult",
    "PatientRecord",
    "PsaRecord",
    "PsaResponse",
    "PsaResponseSummary",
    "Relapse",
    "TestResult",
    "ToxicityCell",
    "ToxicityRecord",
    "TrendResult",
    "aua_failure",
    "biochemical_failure",
    "bpfs_from_psa",
    "chi_square",
    "classify_omd",
    "cox_ph",
    "damico_risk",
    "days_to_months",
    "dose_groups",
    "dose_response",
    "dose_values",
    "fisher_exact",
    "fraction_category",
    "holm",
    "kaplan_meier",
    "load_cohort",
    "load_dose_metrics",
    "load_lesions",
    "load_psa",
    "load_toxicity",
    "logrank",
    "logrank_trend",
    "mann_whitney",
    "median_follow_up",
    "natural_order",
    "outcomes_json_schemas",
    "outcomes_report",
    "pairwise_logrank",
    "pcwg3_progression",
    "phoenix_failure",
    "plot_dose_response",
    "psa_response",
    "psa_response_summary",
    "report_markdown",
    "report_tables",
    "toxicity_table",
    "two_rises_failure",
    "wilcoxon_paired",
    "write_plots",
]
