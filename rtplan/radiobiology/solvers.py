"""Solvers: the dose per fraction, or the number of fractions, that reaches a target.

All solvers invert the model's one-fraction BED ``f(d)`` in closed form (LQ: the
positive root of ``d^2/(a/b) + d - BED/n = 0``; LQ-L and USC: the same below the
transition, linear above it).
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from rtplan.errors import InvalidParameterError
from rtplan.radiobiology.analysis import lq_validity_warnings
from rtplan.radiobiology.formulas import _check_alpha_beta, bed, eqd2
from rtplan.radiobiology.models import LQ, LQL, MAX_DOSE_GY, MAX_FRACTIONS, USC
from rtplan.radiobiology.schedule import Fractionation

__all__ = [
    "FractionOption",
    "FractionsSolution",
    "dose_per_fraction_for_target",
    "equivalent_schedule",
    "fractions_for_target",
]

Model = LQ | LQL | USC
_LQ = LQ()


def _shown(value: object) -> str:
    """A short text of a value for a message (a 5000-digit integer is not printed)."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    return repr(value)[:40]


def _target_bed(
    target_eqd2_gy: float | None, target_bed_gy: float | None, ab: float, model: Model
) -> float:
    if (target_eqd2_gy is None) == (target_bed_gy is None):
        raise InvalidParameterError("give exactly one of target EQD2 (Gy) or target BED (Gy)")
    value = target_eqd2_gy if target_eqd2_gy is not None else target_bed_gy
    try:
        ok = value is not None and math.isfinite(value) and 0 < value <= MAX_DOSE_GY
    except (TypeError, OverflowError):
        ok = False
    if not ok:
        raise InvalidParameterError(
            f"the target dose must be a positive number of Gy (at most {MAX_DOSE_GY:g}), got "
            f"{_shown(value)}"
        )
    assert value is not None  # checked above
    if target_bed_gy is not None:
        return float(value)
    return float(value) * float(model.bed_per_fraction(2.0, ab)) / 2.0


def dose_per_fraction_for_target(
    fractions: int,
    alpha_beta_gy: float | None = None,
    *,
    target_eqd2_gy: float | None = None,
    target_bed_gy: float | None = None,
    model: Model | None = None,
) -> float:
    """Dose per fraction (Gy) that reaches a target EQD2 or BED in ``fractions``.

    Notes
    -----
    LQ: ``d = (a/b) / 2 * (sqrt(1 + 4 BED / (n a/b)) - 1)``.

    Examples
    --------
    >>> round(dose_per_fraction_for_target(5, 1.5, target_eqd2_gy=96.428571), 4)
    7.5
    >>> round(dose_per_fraction_for_target(30, 3.0, target_eqd2_gy=60.0), 10)
    2.0
    """
    model = _LQ if model is None else model
    try:
        whole = not isinstance(fractions, bool) and int(fractions) == fractions
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole or not 1 <= fractions <= MAX_FRACTIONS:
        raise InvalidParameterError(
            f"fractions must be a whole number >= 1 (and at most {MAX_FRACTIONS}), got "
            f"{_shown(fractions)}"
        )
    ab = _check_alpha_beta(alpha_beta_gy, model)
    target = _target_bed(target_eqd2_gy, target_bed_gy, ab, model)
    return float(model.inverse(target / int(fractions), ab))


class FractionOption(BaseModel):
    """A whole number of fractions at the given dose per fraction, and what it gives."""

    model_config = ConfigDict(frozen=True)

    fractions: int
    total_dose_gy: float
    dose_per_fraction_gy: float
    eqd2_gy: float
    bed_gy: float


class FractionsSolution(BaseModel):
    """Fractions needed at a dose per fraction: the exact value and whole options.

    ``fractions_exact`` is the real solution (not a deliverable schedule);
    ``fractions_needed`` is the smallest whole number of fractions whose BED reaches the
    target (the exact value rounded up, unless it is a whole number to within 1e-9);
    ``options`` are the whole numbers just below and above the exact value.
    ``warnings`` are the LQ-validity warnings for the dose per fraction.
    """

    model_config = ConfigDict(frozen=True)

    fractions_exact: float
    fractions_needed: int
    dose_per_fraction_gy: float
    target_bed_gy: float
    target_eqd2_gy: float
    options: list[FractionOption]
    warnings: list[str] = Field(default_factory=list)


def fractions_for_target(
    dose_per_fraction_gy: float,
    alpha_beta_gy: float | None = None,
    *,
    target_eqd2_gy: float | None = None,
    target_bed_gy: float | None = None,
    model: Model | None = None,
) -> FractionsSolution:
    """Number of fractions of ``dose_per_fraction_gy`` that reaches a target EQD2/BED.

    Returns the exact (real) number, the smallest whole number that reaches the target
    (``fractions_needed``), the whole numbers below and above the exact value with
    their EQD2 and BED, and LQ-validity warnings (above 10 and 18 Gy per fraction).

    Examples
    --------
    >>> s = fractions_for_target(3.0, 1.5, target_eqd2_gy=78.0)
    >>> round(s.fractions_exact, 4), s.fractions_needed, [o.fractions for o in s.options]
    (20.2222, 21, [20, 21])
    >>> round(s.options[0].eqd2_gy, 2)
    77.14
    >>> len(fractions_for_target(12.0, 1.5, target_eqd2_gy=100.0).warnings)
    1
    """
    model = _LQ if model is None else model
    try:
        d = float(dose_per_fraction_gy)
    except (TypeError, ValueError, OverflowError):
        d = math.nan
    if not math.isfinite(d) or d <= 0 or d > MAX_DOSE_GY:
        raise InvalidParameterError(
            f"dose per fraction must be a positive number of Gy (at most {MAX_DOSE_GY:g}), got "
            f"{_shown(dose_per_fraction_gy)}"
        )
    ab = _check_alpha_beta(alpha_beta_gy, model)
    target = _target_bed(target_eqd2_gy, target_bed_gy, ab, model)
    n_exact = target / float(model.bed_per_fraction(d, ab))
    if not math.isfinite(n_exact) or n_exact > MAX_FRACTIONS:
        raise InvalidParameterError(
            f"reaching the target at {d:g} Gy per fraction needs {n_exact:.3g} fractions, "
            f"more than {MAX_FRACTIONS}: give a larger dose per fraction or a smaller target"
        )
    nearest = round(n_exact)
    if nearest >= 1 and abs(n_exact - nearest) <= 1e-9 * max(1.0, n_exact):
        n_exact_whole = float(nearest)  # a whole number up to rounding error
    else:
        n_exact_whole = n_exact
    needed = max(1, math.ceil(n_exact_whole))
    whole = sorted({max(1, math.floor(n_exact_whole)), needed})
    options = [
        FractionOption(
            fractions=n,
            total_dose_gy=n * d,
            dose_per_fraction_gy=d,
            eqd2_gy=float(eqd2(n * d, n, ab, model=model)),
            bed_gy=float(bed(n * d, n, ab, model=model)),
        )
        for n in whole
    ]
    per_gy_2 = float(model.bed_per_fraction(2.0, ab)) / 2.0
    return FractionsSolution(
        fractions_exact=n_exact,
        fractions_needed=needed,
        dose_per_fraction_gy=d,
        target_bed_gy=target,
        target_eqd2_gy=target / per_gy_2,
        options=options,
        warnings=lq_validity_warnings(d, model),
    )


def equivalent_schedule(
    reference: Fractionation,
    fractions: int,
    alpha_beta_gy: float | None = None,
    *,
    model: Model | None = None,
) -> Fractionation:
    """Schedule in ``fractions`` with the same BED (and EQD2) as ``reference``.

    Examples
    --------
    >>> ref = Fractionation.parse("37.5/5")
    >>> s = equivalent_schedule(ref, 3, 1.5)
    >>> round(s.dose_per_fraction_gy, 4), round(s.total_dose_gy, 3)
    (9.8831, 29.649)
    """
    model = _LQ if model is None else model
    target = float(bed(reference.total_dose_gy, reference.fractions, alpha_beta_gy, model=model))
    d = dose_per_fraction_for_target(fractions, alpha_beta_gy, target_bed_gy=target, model=model)
    return Fractionation(total_dose_gy=d * fractions, fractions=fractions)
