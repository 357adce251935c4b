"""Dose metrics of ``rtplan cohort export`` joined to an outcomes cohort by patient id.

A metric (e.g. Rectum EQD2 D2cc) becomes, per patient, a covariate (logistic
dose-response of toxicity grade >= 2, :func:`dose_response`) or a grouping (above/below
a cut, within the plan's fraction category, :func:`dose_groups`).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rtplan.cohort.models import MetricRecord
from rtplan.errors import InputError, RecordError
from rtplan.outcomes._cohort import Cohort
from rtplan.radiobiology import FRACTION_CATEGORIES

__all__ = [
    "DoseResponse",
    "DoseSelector",
    "DoseValue",
    "dose_groups",
    "dose_response",
    "dose_values",
    "load_dose_metrics",
    "plot_dose_response",
]


class DoseSelector(BaseModel):
    """Which metric: ROI (case-insensitive), metric name, quantity, optionally the plan.

    Examples
    --------
    >>> DoseSelector.parse("Rectum:D2cc:EQD2").label
    'Rectum EQD2 D2cc'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    roi: str
    metric: str
    quantity: Literal["physical", "EQD2"] = "EQD2"
    plan_label: str | None = Field(
        default=None, description="RTPlanLabel to use for patients with several plans "
        "(patients with one plan keep it)"
    )

    @classmethod
    def parse(cls, text: str, plan_label: str | None = None) -> DoseSelector:
        """``ROI:METRIC[:QUANTITY]`` (QUANTITY ``EQD2``, the default, or ``physical``)."""
        parts = [t.strip() for t in text.split(":")]
        if len(parts) not in (2, 3) or not all(parts):
            raise InputError(f"dose metric {text!r}: expected ROI:METRIC[:QUANTITY], e.g. "
                             "Rectum:D2cc:EQD2")
        q = parts[2] if len(parts) == 3 else "EQD2"
        quantity = {"eqd2": "EQD2", "physical": "physical"}.get(q.lower())
        if quantity is None:
            raise InputError(f"dose metric {text!r}: quantity {q!r} is not EQD2 or physical")
        return cls(roi=parts[0], metric=parts[1], quantity=quantity,  # type: ignore[arg-type]
                   plan_label=plan_label)

    @property
    def label(self) -> str:
        """``ROI QUANTITY METRIC`` for tables."""
        return f"{self.roi} {self.quantity} {self.metric}"


class DoseValue(BaseModel):
    """One patient's value of the selected metric, with its plan's fraction category."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    patient_id: str
    value: float
    unit: str
    fraction_category: str
    plan_label: str


def load_dose_metrics(path: str | os.PathLike[str]) -> list[MetricRecord]:
    """Read the table written by ``rtplan cohort export`` (``.csv`` or ``.parquet``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.csv"
    >>> _ = p.write_text("patient_id,plan_uid,plan_label,roi,metric,quantity,value,unit,"
    ...     "alpha_beta_gy,alpha_beta_source,fractions,fraction_category,"
    ...     "dose_per_fraction_class\\nP1,1.2,5fx,Rectum,D2cc,EQD2,61.5,Gy,3.0,rule:rectum,5,"
    ...     "<10,ultrahypofractionation\\n")
    >>> [(m.patient_id, m.value) for m in load_dose_metrics(p)]
    [('P1', 61.5)]
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"dose metrics file '{p}' does not exist: write it with "
                         "'rtplan cohort export --db ... -o metrics.csv'")
    if p.suffix.lower() == ".parquet":
        from rtplan._shared.optional import import_optional

        pq = import_optional("pyarrow.parquet", feature="Parquet dose metrics")
        rows: list[dict] = pq.read_table(p).to_pylist()
    else:
        with open(p, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    out = []
    for i, row in enumerate(rows, start=2):
        clean = {k: (None if v == "" else v) for k, v in row.items()}
        if clean.get("alpha_beta_source") is None:
            clean["alpha_beta_source"] = ""
        if clean.get("plan_label") is None:
            clean["plan_label"] = ""
        try:
            out.append(MetricRecord.model_validate(clean))
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(x) for x in err["loc"])
            raise RecordError(f"'{p}' row {i}, field {field}: {err['msg']}") from None
    return out


def dose_values(metrics: list[MetricRecord], selector: DoseSelector) -> dict[str, DoseValue]:
    """patient_id -> value of the selected metric (one plan per patient).

    Raises
    ------
    InputError
        No row matches; or a patient has the metric in several plans and
        ``selector.plan_label`` does not pick one.

    Examples
    --------
    >>> m = MetricRecord(patient_id="P1", plan_uid="1", plan_label="5fx", roi="Rectum",
    ...                  metric="D2cc", quantity="EQD2", value=61.5, unit="Gy", fractions=5,
    ...                  fraction_category="<10", dose_per_fraction_class="unknown")
    >>> dose_values([m], DoseSelector.parse("rectum:D2cc"))["P1"].value
    61.5
    """
    roi = selector.roi.strip().lower()
    rows = [m for m in metrics if m.roi.strip().lower() == roi and m.metric == selector.metric
            and m.quantity == selector.quantity]
    if not rows:
        rois = sorted({m.roi for m in metrics})
        names = sorted({m.metric for m in metrics})
        raise InputError(
            f"no dose metric {selector.label}: ROIs {rois[:20]}, metrics {names[:20]}"
        )
    by: dict[str, list[MetricRecord]] = {}
    for m in rows:
        by.setdefault(m.patient_id, []).append(m)
    if selector.plan_label is not None:  # only decides for patients with several plans
        by = {pid: ([m for m in ms if m.plan_label == selector.plan_label]
                    if len(ms) > 1 else ms) for pid, ms in by.items()}
        missing = [pid for pid, ms in by.items() if not ms]
        if missing:
            raise InputError(f"no plan labelled {selector.plan_label!r} among the plans of "
                             f"{', '.join(missing[:10])}")
    several = {pid: sorted(m.plan_label or m.plan_uid for m in ms)
               for pid, ms in by.items() if len(ms) > 1}
    if several:
        pid, plans = next(iter(several.items()))
        raise InputError(
            f"{len(several)} patient(s) have {selector.label} in several plans (e.g. {pid}: "
            f"{plans}): choose one plan by its label (plan_label=..., --dose-plan LABEL)"
        )
    return {pid: DoseValue(patient_id=pid, value=ms[0].value, unit=ms[0].unit,
                           fraction_category=ms[0].fraction_category,
                           plan_label=ms[0].plan_label)
            for pid, ms in sorted(by.items())}


def dose_groups(values: Mapping[str, DoseValue], cut: float,
                by_fraction_category: bool = True) -> tuple[dict[str, str], list[str]]:
    """Group labels ``"<category> < cut"`` / ``"<category> >= cut"`` and their order.

    Examples
    --------
    >>> v = {p: DoseValue(patient_id=p, value=x, unit="Gy", fraction_category=c,
    ...                   plan_label="") for p, x, c in [("A", 50, "<10"), ("B", 70, "<10")]}
    >>> dose_groups(v, 60)
    ({'A': '<10 < 60', 'B': '<10 >= 60'}, ['<10 < 60', '<10 >= 60'])
    """
    if not math.isfinite(cut):
        raise InputError(f"the dose cut must be a finite number, got {cut!r}")
    labels = {}
    for pid, v in values.items():
        side = f"< {cut:g}" if v.value < cut else f">= {cut:g}"
        labels[pid] = f"{v.fraction_category} {side}" if by_fraction_category else side
    cats = [c for c in FRACTION_CATEGORIES] if by_fraction_category else [""]
    order = [f"{c} {s}".strip() for c in cats for s in (f"< {cut:g}", f">= {cut:g}")]
    return labels, [o for o in order if o in set(labels.values())]


class DoseResponse(BaseModel):
    """Logistic dose-response: P(toxicity >= grade) = 1 / (1 + exp(-(b0 + b1 x)))."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str
    unit: str
    grade: int
    domain: str | None
    n: int
    events: int
    intercept: float | None
    slope_per_unit: float | None
    slope_se: float | None
    intercept_se: float | None
    odds_ratio_per_unit: float | None
    odds_ratio_ci95: tuple[float, float] | None
    p_wald: float | None
    p_likelihood_ratio: float | None
    dose_50: float | None = Field(description="metric value at 50 % probability (-b0/b1)")
    doses: list[float]
    outcomes: list[int]
    patient_ids: list[str]
    warnings: list[str] = Field(default_factory=list)


def _fit_logistic(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """Newton-Raphson maximum likelihood; (beta, covariance, log-likelihood, converged)."""
    xm = np.c_[np.ones_like(x), x]
    beta = np.zeros(2)
    ll_old = -np.inf
    for _ in range(100):
        eta = xm @ beta
        p = 1.0 / (1.0 + np.exp(-eta))
        w = p * (1 - p)
        info = xm.T @ (xm * w[:, None])
        grad = xm.T @ (y - p)
        try:
            step = np.linalg.solve(info, grad)
        except np.linalg.LinAlgError:
            return beta, np.full((2, 2), np.nan), ll_old, False
        beta = beta + step
        eta = xm @ beta
        ll = float(np.sum(y * eta - np.logaddexp(0.0, eta)))
        if abs(ll - ll_old) < 1e-12 and np.max(np.abs(step)) < 1e-10:
            p = 1.0 / (1.0 + np.exp(-eta))
            info = xm.T @ (xm * (p * (1 - p))[:, None])
            return beta, np.linalg.inv(info), ll, True
        ll_old = ll
    return beta, np.full((2, 2), np.nan), ll_old, False


def dose_response(
    cohort: Cohort,
    values: Mapping[str, DoseValue],
    *,
    grade: int = 2,
    domain: str | None = None,
    metric: str = "",
) -> DoseResponse:
    """Logistic regression of toxicity grade >= ``grade`` (any timepoint) on a dose metric.

    Parameters
    ----------
    cohort
        With its toxicity table. A patient's outcome is 1 when any assessed grade (of
        ``domain``, or of any domain) is >= ``grade``, 0 when every assessed grade is
        lower; patients never assessed, or without the dose metric, are left out (with a
        warning).
    values
        :func:`dose_values` of the metric.
    grade
        Toxicity threshold (CTCAE grade, default 2).
    domain
        ``GU``, ``GI``... (case-insensitive); default all domains.
    metric
        Name for the result (e.g. ``"Rectum EQD2 D2cc"``).

    Returns
    -------
    DoseResponse
        Maximum-likelihood intercept and slope with Wald standard errors, odds ratio per
        unit (95 % CI), Wald and likelihood-ratio p-values, the metric value at 50 %
        probability; all None with a warning when there is no finite estimate (no event,
        no non-event, or complete separation).

    Examples
    --------
    >>> from rtplan.outcomes import PatientRecord, ToxicityRecord
    >>> doses = [40, 45, 50, 55, 60, 65, 70, 75]
    >>> tox = [0, 0, 2, 0, 1, 2, 3, 2]
    >>> pts = [PatientRecord(patient_id=f"P{i}", fractions=5, total_dose_gy=37.5,
    ...                      os_months=24, os_event=0) for i in range(8)]
    >>> c = Cohort(patients=pts, toxicity=[ToxicityRecord(patient_id=f"P{i}",
    ...            timepoint="1y", domain="GI", grade=g) for i, g in enumerate(tox)])
    >>> v = {f"P{i}": DoseValue(patient_id=f"P{i}", value=d, unit="Gy",
    ...                         fraction_category="<10", plan_label="")
    ...      for i, d in enumerate(doses)}
    >>> r = dose_response(c, v)
    >>> (r.n, r.events), round(r.dose_50, 2)
    ((8, 4), 57.5)
    """
    warnings: list[str] = []
    dom = domain.strip().upper() if domain else None
    grades: dict[str, list[int]] = {}
    for t in cohort.toxicity:
        if t.grade is None or (dom and t.domain.strip().upper() != dom):
            continue
        grades.setdefault(t.patient_id, []).append(int(t.grade))
    ids, x, y = [], [], []
    no_tox, no_dose = [], []
    for p in cohort.patients:
        pid = p.patient_id
        if pid not in grades:
            no_tox.append(pid)
            continue
        if pid not in values:
            no_dose.append(pid)
            continue
        ids.append(pid)
        x.append(values[pid].value)
        y.append(int(max(grades[pid]) >= grade))
    if no_tox:
        warnings.append(f"{len(no_tox)} patient(s) without an assessed toxicity grade"
                        f"{' (' + dom + ')' if dom else ''} left out: {', '.join(no_tox[:10])}")
    if no_dose:
        warnings.append(f"{len(no_dose)} patient(s) without the dose metric left out: "
                        f"{', '.join(no_dose[:10])}")
    unit = next(iter(values.values())).unit if values else ""
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    base: dict[str, Any] = {
        "metric": metric, "unit": unit, "grade": grade, "domain": dom, "n": len(ids),
        "events": int(ya.sum()), "doses": x, "outcomes": y, "patient_ids": ids,
    }
    empty: dict[str, Any] = {k: None for k in (
        "intercept", "slope_per_unit", "slope_se", "intercept_se", "odds_ratio_per_unit",
        "odds_ratio_ci95", "p_wald", "p_likelihood_ratio", "dose_50")}
    n_ev = int(ya.sum())
    if len(ids) < 3 or n_ev == 0 or n_ev == len(ids) or np.ptp(xa) == 0:
        warnings.append("no logistic fit: needs at least 3 patients, events and non-events, "
                        "and different dose values")
        return DoseResponse(**base, **empty, warnings=warnings)
    if xa[ya == 1].min() > xa[ya == 0].max() or xa[ya == 1].max() < xa[ya == 0].min():
        warnings.append("complete separation: every patient with toxicity has a higher (or "
                        "lower) dose than every patient without; the maximum-likelihood "
                        "slope is infinite, no fit reported")
        return DoseResponse(**base, **empty, warnings=warnings)
    beta, cov, ll, ok = _fit_logistic(xa, ya)
    if not ok or not np.all(np.isfinite(cov)):
        warnings.append("the logistic fit did not converge; no fit reported")
        return DoseResponse(**base, **empty, warnings=warnings)
    from scipy import stats

    p0 = ya.mean()
    ll0 = float(np.sum(ya * np.log(p0) + (1 - ya) * np.log(1 - p0)))
    se = np.sqrt(np.diag(cov))
    z = beta[1] / se[1]
    return DoseResponse(
        **base, intercept=float(beta[0]), slope_per_unit=float(beta[1]),
        intercept_se=float(se[0]), slope_se=float(se[1]),
        odds_ratio_per_unit=float(np.exp(beta[1])),
        odds_ratio_ci95=(float(np.exp(beta[1] - 1.959963984540054 * se[1])),
                         float(np.exp(beta[1] + 1.959963984540054 * se[1]))),
        p_wald=float(2 * stats.norm.sf(abs(z))),
        p_likelihood_ratio=float(stats.chi2.sf(2 * (ll - ll0), 1)),
        dose_50=float(-beta[0] / beta[1]) if beta[1] != 0 else None, warnings=warnings,
    )


def plot_dose_response(result: DoseResponse, path: str | os.PathLike[str], *,
                       overwrite: bool = False) -> Path:
    """Save the outcomes (0/1, jittered) against the metric with the fitted curve (PNG, PDF
    or SVG by the suffix; needs matplotlib)."""
    from rtplan._shared.io import atomic_write
    from rtplan._shared.optional import import_optional

    mfig = import_optional("matplotlib.figure", feature="dose-response plots")
    fig = mfig.Figure(figsize=(6, 4), dpi=120, layout="constrained")
    ax = fig.add_subplot()
    x = np.asarray(result.doses, dtype=float)
    y = np.asarray(result.outcomes, dtype=float)
    jitter = (np.arange(y.size) % 5 - 2) * 0.012
    ax.scatter(x, y + jitter, s=18, alpha=0.7, color="tab:blue",
               label=f"patients (n = {result.n}, {result.events} events)")
    if result.slope_per_unit is not None and result.intercept is not None and x.size:
        xs = np.linspace(x.min(), x.max(), 200)
        ax.plot(xs, 1 / (1 + np.exp(-(result.intercept + result.slope_per_unit * xs))),
                color="tab:red", label=f"logistic fit (p = {result.p_wald:.3g})")
    ax.set_xlabel(f"{result.metric} ({result.unit})")
    ax.set_ylabel(f"P(toxicity grade >= {result.grade})")
    ax.set_ylim(-0.08, 1.08)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    return atomic_write(path, lambda t: fig.savefig(t, format=fmt), overwrite=overwrite)
