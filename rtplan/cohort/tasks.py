"""The per-patient task: file paths in, plain metric records out.

A task (:class:`PatientTask`) carries only paths and parameters, so what is sent to a
worker (a process of the pool or a Dask worker) is a few hundred bytes; the worker reads
the files itself and returns a :class:`~rtplan.cohort.models.PatientResult` (no arrays).
:func:`compute_patient` never raises for a patient's problem: the error is returned.

EQD2 DVH of an ROI: every DVH sample of the ROI is converted with the ROI's own
alpha/beta and the plan's fraction count, ``EQD2 = D (D/n + a/b) / (2 + a/b)`` with the
sample's own total dose D (voxel-wise, as :func:`rtplan.dose.eqd2_map`); each ROI is
converted on its own, so overlapping ROIs do not interfere. Sample doses are rounded to
1e-9 Gy first, so that the 1e-14 Gy noise of the trilinear interpolation does not split
equal doses into separate DVH steps (which would move D_x% between them).
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from rtplan import __version__
from rtplan.cohort.metrics import alpha_beta_for_roi, parse_metric
from rtplan.cohort.models import DVHParameters, MetricRecord, PatientResult, PlanEntry
from rtplan.errors import InputError

__all__ = ["PatientTask", "compute_patient", "input_hash"]

#: Bump when the computation changes in a way that alters stored results.
_ALGORITHM_VERSION = "1"
#: Sample doses are rounded to this many decimals of a Gy before the DVH is built.
_ROUND_DECIMALS = 9


class PatientTask(BaseModel):
    """Everything a worker needs for one patient: computable plans and parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    patient_id: str
    plans: list[PlanEntry]
    parameters: DVHParameters
    input_hash: str


def _file_digest(path: str, h: hashlib._Hash) -> None:
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)


def input_hash(plans: list[PlanEntry], parameters: DVHParameters) -> str:
    """SHA-256 of the bytes of every input file (RTPLAN, RTDOSE, RTSTRUCT) and the
    parameters: a patient whose hash is unchanged is not recomputed.

    The CT is not hashed: it is not read for DVH metrics. The rtplan version is part of
    the hash, so a new release recomputes.

    Examples
    --------
    >>> input_hash([], DVHParameters())[:7] == input_hash([], DVHParameters())[:7]
    True
    >>> input_hash([], DVHParameters()) == input_hash([], DVHParameters(supersampling=2))
    False
    """
    h = hashlib.sha256()
    h.update(json.dumps({"parameters": parameters.model_dump(mode="json"),
                         "version": __version__, "algorithm": _ALGORITHM_VERSION},
                        sort_keys=True).encode())
    for p in sorted(plans, key=lambda p: p.plan_uid):
        h.update(p.plan_uid.encode() + b"\0")
        for f in (p.plan_path, p.dose_path, p.structure_path):
            if f is None:
                h.update(b"-\0")
                continue
            _file_digest(f, h)
            h.update(b"\0")
    return h.hexdigest()


def _plan_metrics(plan: PlanEntry, params: DVHParameters,
                  warnings: list[str]) -> list[MetricRecord]:
    from rtplan.dose import eqd2_map, read_rtdose, structure_dvhs
    from rtplan.dose.dvh import dvh_from_samples
    from rtplan.radiobiology import dose_per_fraction_class, fraction_category
    from rtplan.structures.rtstruct import read_rtstruct

    if plan.dose_path is None or plan.structure_path is None or plan.fractions is None:
        raise InputError(f"plan {plan.plan_uid} is not computable: {plan.issues}")
    specs = [parse_metric(m) for m in params.metrics]
    dose = read_rtdose(plan.dose_path, rtplan=plan.plan_path)
    n = int(plan.fractions)
    ss = read_rtstruct(plan.structure_path)
    dvhs = structure_dvhs(dose, ss, supersampling=params.supersampling)
    category = fraction_category(n)
    dpf = ("unknown" if not plan.prescription_gy
           else dose_per_fraction_class(plan.prescription_gy / n).value)
    common: dict[str, Any] = {
        "patient_id": plan.patient_id, "plan_uid": plan.plan_uid,
        "plan_label": plan.plan_label, "fractions": n, "fraction_category": category,
        "dose_per_fraction_class": dpf,
    }
    out: list[MetricRecord] = []
    for name, h in dvhs.items():
        if h.dose_gy.size == 0:
            warnings.append(f"plan {plan.plan_label or plan.plan_uid}: ROI {name!r} has no "
                            "volume on the dose grid; no metrics")
            continue
        if h.outside_grid_cc > 0:
            warnings.append(f"plan {plan.plan_label or plan.plan_uid}: ROI {name!r}: "
                            f"{h.outside_grid_cc:.3g} cm3 outside the dose grid (0 Gy)")
        # doses rounded to 1e-9 Gy: the interpolation's float noise (1e-14 Gy) would
        # otherwise split equal doses into several DVH steps (D_x% depends on it)
        h = dvh_from_samples(np.round(h.dose_gy, _ROUND_DECIMALS), h.volume_cc, name=name,
                             outside_grid_cc=h.outside_grid_cc)
        ab, source = alpha_beta_for_roi(name, params.alpha_beta_gy,
                                        params.default_alpha_beta_gy)
        eq = dvh_from_samples(eqd2_map(h.dose_gy, n, ab), h.volume_cc, name=name,
                              outside_grid_cc=h.outside_grid_cc)
        out.append(MetricRecord(**common, roi=name, metric="volume", quantity="physical",
                                value=h.total_volume_cc, unit="cc"))
        for s in specs:
            out.append(MetricRecord(**common, roi=name, metric=s.name, quantity="physical",
                                    value=s.value(h), unit=s.unit))  # type: ignore[arg-type]
            out.append(MetricRecord(**common, roi=name, metric=s.name, quantity="EQD2",
                                    value=s.value(eq), unit=s.unit,  # type: ignore[arg-type]
                                    alpha_beta_gy=ab, alpha_beta_source=source))
    return out


def compute_patient(task: PatientTask) -> PatientResult:
    """Physical and EQD2 DVH metrics of every plan of one patient.

    Parameters
    ----------
    task
        Paths of the patient's plans, doses and structure sets, and the parameters.

    Returns
    -------
    PatientResult
        ``status`` ``ok`` with the metric records, or ``error`` with the message
        (``error_kind`` ``input`` for a problem of the files, ``internal`` otherwise).

    Examples
    --------
    >>> import tempfile
    >>> from rtplan.cohort.index import index_tree
    >>> from rtplan.cohort.synthetic import write_synthetic_cohort
    >>> root = tempfile.mkdtemp(); _ = write_synthetic_cohort(root, 1, broken=False)
    >>> plans = index_tree(root).patients[0].plans
    >>> params = DVHParameters(metrics=("Dmean",))
    >>> r = compute_patient(PatientTask(patient_id="SYN-000", plans=plans,
    ...                                 parameters=params, input_hash=""))
    >>> r.status, sorted({m.roi for m in r.metrics})
    ('ok', ['Bladder', 'PTV', 'Rectum'])
    """
    t0 = time.perf_counter()
    warnings: list[str] = []
    metrics: list[MetricRecord] = []
    try:
        for plan in task.plans:
            metrics += _plan_metrics(plan, task.parameters, warnings)
    except (InputError, OSError) as exc:
        return PatientResult(patient_id=task.patient_id, input_hash=task.input_hash,
                             status="error", error=str(exc), error_kind="input",
                             warnings=warnings, seconds=time.perf_counter() - t0)
    except Exception as exc:
        return PatientResult(patient_id=task.patient_id, input_hash=task.input_hash,
                             status="error", error=f"{type(exc).__name__}: {exc}",
                             error_kind="internal", warnings=warnings,
                             seconds=time.perf_counter() - t0)
    return PatientResult(patient_id=task.patient_id, input_hash=task.input_hash,
                         status="ok", warnings=warnings, metrics=metrics,
                         seconds=time.perf_counter() - t0)
