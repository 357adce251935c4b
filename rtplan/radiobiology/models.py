"""Dose-response models: linear-quadratic (LQ), LQ-L and the universal survival curve.

Each model gives the biologically effective dose of one fraction of ``d`` Gy,
``f(d)`` (Gy), so that a schedule of ``n`` fractions has ``BED = n f(d)`` (without
a time factor), and ``EQDx = BED / (f(x) / x)``.

Notes
-----
- LQ: ``f(d) = d (1 + d / (alpha/beta))``.
- LQ-L (Astrahan 2008): LQ up to the transition dose ``d_T``; above it the effect grows
  linearly with the LQ slope at ``d_T``:
  ``f(d) = d_T (1 + d_T/(a/b)) + (d - d_T) (1 + 2 d_T/(a/b))``. Continuous, with a
  continuous first derivative, at ``d_T``.
- USC (Park et al. 2008): LQ below ``D_T = 2 D_q / (1 - alpha D_0)`` and the
  multi-target line ``f(d) = (d - D_q) / (alpha D_0)`` above it; alpha/beta is not free
  but ``4 alpha D_0 D_q / (1 - alpha D_0)^2``. The line is tangent to LQ at ``D_T``.

References
----------
Fowler JF. The linear-quadratic formula and progress in fractionated radiotherapy.
Br J Radiol 1989;62:679-694.
Astrahan M. Some implications of linear-quadratic-linear radiation dose-response with
regard to hypofractionation. Med Phys 2008;35:4161-4172.
Park C, Papiez L, Zhang S, Story M, Timmerman RD. Universal survival curve and single
fraction equivalent dose: useful tools in understanding potency of ablative radiotherapy.
Int J Radiat Oncol Biol Phys 2008;70:847-852.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rtplan.errors import InvalidParameterError, UnsupportedModelError

__all__ = ["LQ", "LQL", "USC", "DoseResponseModel", "Repopulation", "model_from_name"]

_Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]

#: Smallest alpha/beta accepted (Gy): no tissue is below about 0.5 Gy; smaller values
#: make BED overflow (1e-320 Gy gives an infinite BED and a NaN EQD2).
MIN_ALPHA_BETA_GY = 0.01
#: Largest alpha/beta accepted (Gy).
MAX_ALPHA_BETA_GY = 1000.0
#: Largest total dose, dose per fraction or target dose accepted (Gy).
MAX_DOSE_GY = 1e5
#: Largest number of fractions accepted.
MAX_FRACTIONS = 10000


def check_alpha_beta_value(alpha_beta_gy: object) -> float:
    """Return alpha/beta (Gy) as a float, or raise if it is not within the valid range.

    Examples
    --------
    >>> check_alpha_beta_value(1.5)
    1.5
    >>> check_alpha_beta_value(1e-320)
    Traceback (most recent call last):
    ...
    rtplan.errors.InvalidParameterError: alpha/beta must be a positive number of Gy from 0.01 ...
    """
    try:
        ab = float(alpha_beta_gy)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise InvalidParameterError(
            f"alpha/beta must be a positive number of Gy, got {alpha_beta_gy!r}"
        ) from None
    if not (np.isfinite(ab) and MIN_ALPHA_BETA_GY <= ab <= MAX_ALPHA_BETA_GY):
        raise InvalidParameterError(
            f"alpha/beta must be a positive number of Gy from {MIN_ALPHA_BETA_GY:g} to "
            f"{MAX_ALPHA_BETA_GY:g} Gy, "
            f"got {alpha_beta_gy!r}: published values lie between about 0.5 and 20 Gy"
        )
    return ab


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LQ(_Frozen):
    """Linear-quadratic model (default).

    Examples
    --------
    >>> round(float(LQ().bed_per_fraction(2.0, alpha_beta_gy=3.0)), 6)
    3.333333
    """

    name: Literal["lq"] = "lq"

    def resolve_alpha_beta(self, alpha_beta_gy: float | None) -> float:
        """Return the alpha/beta to use (Gy); LQ needs one."""
        if alpha_beta_gy is None:
            raise UnsupportedModelError("the LQ model needs alpha/beta (Gy): give alpha_beta_gy")
        return float(alpha_beta_gy)

    def bed_per_fraction(self, d: NDArray | float, alpha_beta_gy: float) -> NDArray | float:
        """BED (Gy) of one fraction of ``d`` Gy."""
        return d * (1.0 + d / alpha_beta_gy)

    def inverse(self, f: NDArray | float, alpha_beta_gy: float) -> NDArray | float:
        """Dose per fraction (Gy) whose one-fraction BED is ``f`` (Gy)."""
        ab = alpha_beta_gy
        return 0.5 * ab * (np.sqrt(1.0 + 4.0 * np.asarray(f) / ab) - 1.0)

    def describe(self) -> str:
        """Short label for tables and DICOM descriptions."""
        return "LQ"


class LQL(_Frozen):
    """Linear-quadratic-linear model (Astrahan 2008).

    Parameters
    ----------
    transition_dose_gy
        Dose per fraction (Gy) above which the response is linear. There is no universal
        value: choose it from the literature for the tissue (Astrahan discusses 5-10 Gy).

    Examples
    --------
    >>> m = LQL(transition_dose_gy=6.0)
    >>> round(float(m.bed_per_fraction(6.0, 3.0)), 6)   # = LQ at the transition
    18.0
    >>> round(float(m.bed_per_fraction(10.0, 3.0)), 6)  # 18 + 4 * (1 + 12/3)
    38.0
    """

    name: Literal["lql"] = "lql"
    transition_dose_gy: _Positive

    def resolve_alpha_beta(self, alpha_beta_gy: float | None) -> float:
        """Return the alpha/beta to use (Gy); LQ-L needs one."""
        if alpha_beta_gy is None:
            raise UnsupportedModelError("the LQ-L model needs alpha/beta (Gy): give alpha_beta_gy")
        return float(alpha_beta_gy)

    def bed_per_fraction(self, d: NDArray | float, alpha_beta_gy: float) -> NDArray | float:
        """BED (Gy) of one fraction of ``d`` Gy."""
        dt, ab = self.transition_dose_gy, alpha_beta_gy
        lq = d * (1.0 + d / ab)
        lin = dt * (1.0 + dt / ab) + (d - dt) * (1.0 + 2.0 * dt / ab)
        return np.where(np.asarray(d) <= dt, lq, lin)

    def inverse(self, f: NDArray | float, alpha_beta_gy: float) -> NDArray | float:
        """Dose per fraction (Gy) whose one-fraction BED is ``f`` (Gy)."""
        dt, ab = self.transition_dose_gy, alpha_beta_gy
        f = np.asarray(f, dtype=float)
        f_t = dt * (1.0 + dt / ab)
        lq = 0.5 * ab * (np.sqrt(1.0 + 4.0 * f / ab) - 1.0)
        lin = dt + (f - f_t) / (1.0 + 2.0 * dt / ab)
        return np.where(f <= f_t, lq, lin)

    def describe(self) -> str:
        """Short label for tables and DICOM descriptions."""
        return f"LQ-L (d_T {self.transition_dose_gy:g} Gy)"


class USC(_Frozen):
    """Universal survival curve (Park et al. 2008).

    Parameters
    ----------
    alpha_per_gy
        alpha (1/Gy) of the LQ part.
    d0_gy
        D0 (Gy), the reciprocal slope of the terminal (multi-target) line.
    dq_gy
        Dq (Gy), the quasi-threshold dose.

    Notes
    -----
    Requires ``alpha D0 < 1``. alpha/beta is derived:
    ``4 alpha D0 Dq / (1 - alpha D0)^2``; the transition dose is
    ``D_T = 2 Dq / (1 - alpha D0)``.

    Examples
    --------
    Park et al.'s NSCLC parameters (alpha 0.33/Gy, D0 1.25 Gy, Dq 1.8 Gy) give the
    published alpha/beta of 8.6 Gy (the paper quotes D_T = 6.2 Gy from unrounded
    parameters; these rounded ones give 6.13 Gy):

    >>> m = USC(alpha_per_gy=0.33, d0_gy=1.25, dq_gy=1.8)
    >>> round(m.alpha_beta_gy, 1), round(m.transition_dose_gy, 1)
    (8.6, 6.1)
    """

    name: Literal["usc"] = "usc"
    alpha_per_gy: _Positive
    d0_gy: _Positive
    dq_gy: _Positive

    @model_validator(mode="after")
    def _check(self) -> USC:
        if self.alpha_per_gy * self.d0_gy >= 1.0:
            raise ValueError(
                f"USC needs alpha * D0 < 1, got {self.alpha_per_gy} * {self.d0_gy} = "
                f"{self.alpha_per_gy * self.d0_gy:g}: check the units (alpha in 1/Gy, D0 in Gy)"
            )
        return self

    @property
    def alpha_beta_gy(self) -> float:
        """alpha/beta (Gy) implied by the parameters."""
        ad0 = self.alpha_per_gy * self.d0_gy
        return 4.0 * ad0 * self.dq_gy / (1.0 - ad0) ** 2

    @property
    def transition_dose_gy(self) -> float:
        """Transition dose D_T (Gy) between the LQ and linear parts."""
        return 2.0 * self.dq_gy / (1.0 - self.alpha_per_gy * self.d0_gy)

    def resolve_alpha_beta(self, alpha_beta_gy: float | None) -> float:
        """The implied alpha/beta; a given value must agree within 2 %."""
        implied = self.alpha_beta_gy
        if alpha_beta_gy is not None:
            alpha_beta_gy = check_alpha_beta_value(alpha_beta_gy)
        if alpha_beta_gy is not None and abs(alpha_beta_gy - implied) > 0.02 * implied:
            raise UnsupportedModelError(
                f"the USC parameters (alpha {self.alpha_per_gy}/Gy, D0 {self.d0_gy} Gy, "
                f"Dq {self.dq_gy} Gy) imply alpha/beta = {implied:.3g} Gy, not "
                f"{alpha_beta_gy:g} Gy: omit alpha/beta or change the USC parameters"
            )
        return implied

    def bed_per_fraction(self, d: NDArray | float, alpha_beta_gy: float) -> NDArray | float:
        """BED (Gy) of one fraction of ``d`` Gy (``alpha_beta_gy`` is the implied one)."""
        lq = d * (1.0 + d / alpha_beta_gy)
        lin = (d - self.dq_gy) / (self.alpha_per_gy * self.d0_gy)
        return np.where(np.asarray(d) < self.transition_dose_gy, lq, lin)

    def inverse(self, f: NDArray | float, alpha_beta_gy: float) -> NDArray | float:
        """Dose per fraction (Gy) whose one-fraction BED is ``f`` (Gy)."""
        f = np.asarray(f, dtype=float)
        dt = self.transition_dose_gy
        f_t = dt * (1.0 + dt / alpha_beta_gy)
        lq = 0.5 * alpha_beta_gy * (np.sqrt(1.0 + 4.0 * f / alpha_beta_gy) - 1.0)
        lin = f * self.alpha_per_gy * self.d0_gy + self.dq_gy
        return np.where(f < f_t, lq, lin)

    def describe(self) -> str:
        """Short label for tables and DICOM descriptions."""
        return (
            f"USC (alpha {self.alpha_per_gy:g}/Gy, D0 {self.d0_gy:g} Gy, "
            f"Dq {self.dq_gy:g} Gy)"
        )


DoseResponseModel = Annotated[LQ | LQL | USC, Field(discriminator="name")]


class Repopulation(_Frozen):
    """Tumour repopulation during treatment: a dose loss per day after a kick-off time.

    ``EQD2_loss = dprolif_gy_per_day * max(0, overall_time_days - kickoff_days)``; the
    BED loss is that times ``1 + 2 / (alpha/beta)``.

    Parameters
    ----------
    kickoff_days
        Tk, days after the start before repopulation begins (e.g. 21-28 d in head and
        neck cancer, Withers et al. 1988).
    dprolif_gy_per_day
        Dprolif, dose (Gy in 2-Gy fractions) lost per day after Tk (e.g. 0.9 Gy/day
        in head and neck cancer, Bentzen and Thames 1991).
    overall_time_days
        Overall treatment time T in days (first to last fraction).

    Examples
    --------
    >>> Repopulation(kickoff_days=28, dprolif_gy_per_day=0.9, overall_time_days=45).eqd2_loss_gy()
    15.3
    """

    kickoff_days: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    dprolif_gy_per_day: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    overall_time_days: Annotated[float, Field(ge=0, allow_inf_nan=False)]

    def eqd2_loss_gy(self) -> float:
        """EQD2 (Gy) lost to repopulation."""
        return self.dprolif_gy_per_day * max(0.0, self.overall_time_days - self.kickoff_days)


def model_from_name(
    name: str,
    *,
    transition_dose_gy: float | None = None,
    alpha_per_gy: float | None = None,
    d0_gy: float | None = None,
    dq_gy: float | None = None,
) -> LQ | LQL | USC:
    """Build a model from its name (``lq``, ``lql`` or ``usc``) and parameters.

    Examples
    --------
    >>> model_from_name("lql", transition_dose_gy=8).describe()
    'LQ-L (d_T 8 Gy)'
    >>> model_from_name("lql")
    Traceback (most recent call last):
    ...
    rtplan.errors.UnsupportedModelError: the LQ-L model needs a transition dose ...
    """
    key = name.strip().lower().replace("-", "")
    if key == "lq":
        return LQ()
    if key == "lql":
        if transition_dose_gy is None:
            raise UnsupportedModelError(
                "the LQ-L model needs a transition dose per fraction in Gy "
                "(--transition-dose-gy, e.g. 6); there is no universal default"
            )
        return LQL(transition_dose_gy=transition_dose_gy)
    if key == "usc":
        missing = [
            n
            for n, v in (("alpha", alpha_per_gy), ("D0", d0_gy), ("Dq", dq_gy))
            if v is None
        ]
        if missing:
            raise UnsupportedModelError(
                "the USC model needs alpha (1/Gy), D0 (Gy) and Dq (Gy); missing "
                + ", ".join(missing)
                + " (--usc-alpha, --usc-d0-gy, --usc-dq-gy; Park 2008 NSCLC: 0.33, 1.25, 1.8)"
            )
        assert alpha_per_gy is not None and d0_gy is not None and dq_gy is not None
        return USC(alpha_per_gy=alpha_per_gy, d0_gy=d0_gy, dq_gy=dq_gy)
    raise UnsupportedModelError(f"unknown model {name!r}: choose lq, lql or usc")
