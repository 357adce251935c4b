"""Cohorts: DVH metrics (physical and EQD2) of many patients, stored in a database.

Index a DICOM tree (:func:`index_tree`, headers only, linked by UID), store it
(:func:`store_index`), compute every patient's metrics serially, on a process pool or
on a Dask cluster (:func:`run_dvh`, resumable: unchanged patients are not recomputed),
and export a tidy table (:func:`export_metrics`). Doses in Gy, volumes in cm3.
"""

from rtplan.cohort.db import (
    CohortDB,
    connect,
    load_index,
    load_metrics,
    store_index,
    store_result,
)
from rtplan.cohort.export import EXPORT_COLUMNS, export_metrics
from rtplan.cohort.index import index_tree
from rtplan.cohort.metrics import ALPHA_BETA_RULES, MetricSpec, alpha_beta_for_roi, parse_metric
from rtplan.cohort.models import (
    BadFile,
    CohortIndex,
    DVHParameters,
    MetricRecord,
    PatientEntry,
    PatientFailure,
    PatientResult,
    PlanEntry,
    RunSummary,
)
from rtplan.cohort.run import run_dvh
from rtplan.cohort.tasks import PatientTask, compute_patient, input_hash

__all__ = [
    "ALPHA_BETA_RULES",
    "EXPORT_COLUMNS",
    "BadFile",
    "CohortDB",
    "CohortIndex",
    "DVHParameters",
    "MetricRecord",
    "MetricSpec",
    "PatientEntry",
    "PatientFailure",
    "PatientResult",
    "PatientTask",
    "PlanEntry",
    "RunSummary",
    "alpha_beta_for_roi",
    "compute_patient",
    "connect",
    "export_metrics",
    "index_tree",
    "input_hash",
    "load_index",
    "load_metrics",
    "parse_metric",
    "run_dvh",
    "store_index",
    "store_result",
]
