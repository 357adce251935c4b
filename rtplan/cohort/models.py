"""Records of a cohort: the index of a DICOM tree, DVH parameters, metrics, run summaries.

Every record that crosses a boundary (worker -> parent, database -> export, CLI JSON)
is one of these pydantic models; their JSON Schemas are under ``schemas/cohort/``.
Doses in Gy, volumes in cm3 (unit ``cc``), alpha/beta in Gy.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BadFile",
    "CohortIndex",
    "DVHParameters",
    "MetricRecord",
    "PatientEntry",
    "PatientFailure",
    "PatientResult",
    "PlanEntry",
    "RunSummary",
]

#: Plan status: ``complete`` (plan, dose, structure set and every referenced CT slice
#: found), ``usable`` (plan, dose and structure set found, so metrics can be computed,
#: but something else is missing, e.g. CT slices), ``incomplete`` (no metrics possible:
#: dose, structure set or fraction count missing), ``ambiguous`` (no metrics: two
#: candidate doses or structure sets and no rule to choose).
PlanStatus = Literal["complete", "usable", "incomplete", "ambiguous"]
PatientStatus = Literal["complete", "usable", "ambiguous", "incomplete"]


class BadFile(BaseModel):
    """A file of the tree that could not be used, with the reason."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    reason: str


class PlanEntry(BaseModel):
    """One RTPLAN of a patient and the files linked to it by UID.

    Links: RTDOSE -> RTPLAN (the dose's ReferencedRTPlanSequence), RTPLAN -> RTSTRUCT
    (the plan's ReferencedStructureSetSequence, else the dose's, else the only RTSTRUCT
    of the plan's frame of reference), RTSTRUCT -> CT (the series it references).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    patient_id: str
    plan_uid: str = Field(description="SOPInstanceUID of the RTPLAN")
    plan_label: str = ""
    plan_path: str
    dose_path: str | None = None
    structure_path: str | None = None
    ct_series_uid: str | None = None
    ct_files: int = Field(default=0, description="CT files of the referenced series found")
    ct_referenced: int = Field(default=0, description="CT images the RTSTRUCT references")
    fractions: int | None = Field(default=None, description="NumberOfFractionsPlanned")
    prescription_gy: float | None = Field(
        default=None, description="largest TargetPrescriptionDose of the plan's target dose "
        "references (Gy), for the dose-per-fraction class"
    )
    status: PlanStatus
    issues: list[str] = Field(default_factory=list)

    @property
    def computable(self) -> bool:
        """True when metrics can be computed (status ``complete`` or ``usable``)."""
        return self.status in ("complete", "usable")


class PatientEntry(BaseModel):
    """What the index found for one PatientID."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    patient_id: str
    status: PatientStatus = Field(
        description="complete: every plan complete; usable: at least one plan can be "
        "computed, something is missing; ambiguous: several plans (each computed) or "
        "an unresolved choice; incomplete: no plan can be computed"
    )
    plans: list[PlanEntry] = Field(default_factory=list)
    issues: list[str] = Field(default_factory=list)

    @property
    def computable_plans(self) -> list[PlanEntry]:
        """Plans whose metrics can be computed."""
        return [p for p in self.plans if p.computable]


class CohortIndex(BaseModel):
    """Result of indexing a DICOM tree (see :func:`rtplan.cohort.index_tree`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    root: str
    n_files: int = Field(description="files walked")
    n_dicom: int = Field(description="DICOM files read")
    n_ignored: int = Field(description="files that are not DICOM (no DICM preamble)")
    patients: list[PatientEntry]
    bad_files: list[BadFile] = Field(default_factory=list)


class DVHParameters(BaseModel):
    """What ``cohort dvh`` computes; part of every patient's input hash.

    Metric names: ``Dmean``, ``Dmax``, ``Dmin`` (Gy); ``D<x>%`` (dose received by at
    least x % of the ROI, Gy); ``D<x>cc`` (dose received by the hottest x cm3, Gy);
    ``V<x>Gy`` (volume receiving at least x Gy, cm3); ``V<x>Gy%`` (the same in % of
    the ROI). Every metric is computed on the physical DVH and on the EQD2 DVH.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    metrics: tuple[str, ...] = ("Dmean", "Dmax", "D2cc", "D2%", "D50%", "D98%")
    alpha_beta_gy: dict[str, Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict,
        description="ROI name or glob pattern (case-insensitive) -> alpha/beta (Gy); "
        "takes precedence over the name rules",
    )
    default_alpha_beta_gy: Annotated[float, Field(gt=0)] = Field(
        default=3.0, description="alpha/beta of ROIs no rule or override matches (Gy)"
    )
    supersampling: Annotated[int, Field(ge=1, le=16)] = 3


class MetricRecord(BaseModel):
    """One value: a patient, a plan, an ROI, a metric, physical or EQD2."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    patient_id: str
    plan_uid: str
    plan_label: str = ""
    roi: str
    metric: str
    quantity: Literal["physical", "EQD2"]
    value: float
    unit: Literal["Gy", "cc", "%"]
    alpha_beta_gy: float | None = Field(default=None,
                                        description="alpha/beta of the ROI (EQD2)")
    alpha_beta_source: str = Field(default="", description="override, rule:<name> or default")
    fractions: int
    fraction_category: str = Field(description="'<10', '10-24' or '>24'")
    dose_per_fraction_class: str = Field(
        description="ASTRO/ASCO/AUA class of the prescription dose per fraction, or "
        "'unknown' without a prescription"
    )


class PatientResult(BaseModel):
    """What a worker returns for one patient (plain data: no arrays, no handles)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    patient_id: str
    input_hash: str
    status: Literal["ok", "error"]
    error: str = ""
    error_kind: Literal["", "input", "internal", "worker"] = Field(
        default="", description="input: a problem of the patient's files; internal: a bug; "
        "worker: the worker process died"
    )
    warnings: list[str] = Field(default_factory=list)
    metrics: list[MetricRecord] = Field(default_factory=list)
    seconds: float = 0.0


class PatientFailure(BaseModel):
    """A patient whose metrics could not be computed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    patient_id: str
    error_kind: str
    error: str


class RunSummary(BaseModel):
    """Outcome of ``cohort dvh``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    executor: str
    workers: int
    n_patients: int = Field(description="patients in the index")
    computed: int = Field(description="patients computed in this run (ok or error)")
    skipped_unchanged: int = Field(description="patients whose stored result was reused")
    not_computable: list[str] = Field(
        default_factory=list, description="patients of the index with no computable plan"
    )
    failed: list[PatientFailure] = Field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        """0 when every patient succeeded or failed on its inputs (stored and listed);
        1 when a worker died, a bug struck, or the run was interrupted."""
        if self.interrupted or any(f.error_kind != "input" for f in self.failed):
            return 1
        return 0
