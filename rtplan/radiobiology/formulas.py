"""BED, EQD2 and EQDx: vectorised over numpy arrays of total dose.

A dose grid is an array of total doses (Gy) delivered in one number of fractions; each
voxel's dose per fraction is its own dose divided by that number.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rtplan.errors import InvalidParameterError
from rtplan.radiobiology.models import (
    LQ,
    LQL,
    MAX_DOSE_GY,
    MAX_FRACTIONS,
    USC,
    Repopulation,
    check_alpha_beta_value,
)

__all__ = ["bed", "eqd2", "eqdx"]

Model = LQ | LQL | USC
_LQ = LQ()


def _shown(value: object) -> str:
    """A short text of a value for a message (never thousands of digits)."""
    try:
        return repr(value)[:40]
    except ValueError:  # an integer of more than 4300 digits
        return f"a {type(value).__name__} too large to print"


def _check_fractions(fractions: ArrayLike) -> NDArray | float:
    if isinstance(fractions, int) and not isinstance(fractions, bool) and (
        abs(fractions) > MAX_FRACTIONS
    ):
        bits = fractions.bit_length()
        shown = str(fractions) if bits < 64 else f"a {bits}-bit integer"
        raise InvalidParameterError(
            f"fractions must be >= 1 and at most {MAX_FRACTIONS}, got {shown}"
        )
    try:
        n = np.asarray(fractions)
    except (OverflowError, ValueError):
        n = np.asarray(None)
    if n.dtype.kind not in "iuf" or n.size == 0:
        raise InvalidParameterError(
            f"fractions must be a number (whole, 1 to {MAX_FRACTIONS}), got "
            f"{_shown(fractions)}"
        )
    if n.dtype.kind == "f" and not np.all(np.isfinite(n) & (n == np.round(n))):
        raise InvalidParameterError(
            f"fractions must be a whole number >= 1, got {fractions!r}"
        )
    if np.any(n < 1):
        raise InvalidParameterError(
            f"fractions must be >= 1, got {fractions!r}: a schedule has at least one fraction"
        )
    if np.any(n > MAX_FRACTIONS):
        raise InvalidParameterError(
            f"fractions must be at most {MAX_FRACTIONS}, got {np.max(n)!r}"
        )
    return float(n) if n.ndim == 0 else n.astype(float)


def _check_dose(total_dose_gy: ArrayLike) -> NDArray:
    try:
        d = np.asarray(total_dose_gy)
    except (OverflowError, ValueError):
        d = np.asarray(None)
    if d.dtype.kind not in "iuf":
        raise InvalidParameterError(
            f"total dose must be numeric (Gy), got {type(total_dose_gy).__name__}"
        )
    if d.dtype.kind != "f":
        d = d.astype(float)
    if d.size:
        lo, hi = d.min(), d.max()
        if not (lo >= 0) or not np.isfinite(hi) or hi > MAX_DOSE_GY:
            bad = (
                "negative" if lo < 0 else "not finite (NaN or infinite)" if not
                np.isfinite(hi) or not np.isfinite(lo) else f"above {MAX_DOSE_GY:g} Gy"
            )
            raise InvalidParameterError(
                f"total dose (Gy) must be finite, >= 0 and at most {MAX_DOSE_GY:g} Gy, but "
                f"some values are {bad} (min {lo!r}, max {hi!r})"
            )
    return d


def _check_alpha_beta(alpha_beta_gy: float | None, model: Model) -> float:
    ab = model.resolve_alpha_beta(alpha_beta_gy)
    return check_alpha_beta_value(ab)


def _result(x: NDArray, like: ArrayLike) -> NDArray | float:
    return float(x) if np.ndim(x) == 0 and np.ndim(like) == 0 else x


def _bed_array(
    d_total: NDArray, n: NDArray | float, ab: float, model: Model
) -> NDArray:
    if isinstance(model, LQ):
        # D (1 + D/(n ab)), in place to spare memory on large grids
        out = np.divide(d_total, n * ab, dtype=np.result_type(d_total, np.float32))
        out += 1.0
        out *= d_total
        return out
    d = d_total / n
    return n * np.asarray(model.bed_per_fraction(d, ab), dtype=d.dtype)


def bed(
    total_dose_gy: ArrayLike,
    fractions: ArrayLike,
    alpha_beta_gy: float | None = None,
    *,
    model: Model | None = None,
    repopulation: Repopulation | None = None,
) -> NDArray | float:
    """Biologically effective dose (Gy).

    Parameters
    ----------
    total_dose_gy
        Total physical dose (Gy), scalar or array (e.g. a dose grid), >= 0.
    fractions
        Number of fractions (>= 1), scalar or an array that broadcasts.
    alpha_beta_gy
        alpha/beta (Gy), > 0. Optional for :class:`~rtplan.radiobiology.USC`, which
        implies its own.
    model
        :class:`~rtplan.radiobiology.LQ` (default), :class:`~rtplan.radiobiology.LQL`
        or :class:`~rtplan.radiobiology.USC`.
    repopulation
        Optional :class:`~rtplan.radiobiology.Repopulation` time factor.

    Returns
    -------
    float or ndarray
        BED in Gy; an array of the input's shape (float32 stays float32).

    Notes
    -----
    LQ: ``BED = D (1 + d / (alpha/beta))`` with ``d = D / n``; with repopulation,
    ``BED -= Dprolif (T - Tk) (1 + 2/(alpha/beta))``.

    Examples
    --------
    >>> bed(66, 33, 1.5)   # SHARE trial protocol, Table 3: 154 Gy
    154.0
    >>> bed([27.0, 37.5], 5, 10.0).round(3).tolist()
    [41.58, 65.625]
    """
    model = _LQ if model is None else model
    n = _check_fractions(fractions)
    d = _check_dose(total_dose_gy)
    ab = _check_alpha_beta(alpha_beta_gy, model)
    out = _bed_array(d, n, ab, model)
    if repopulation is not None:
        out = out - repopulation.eqd2_loss_gy() * (1.0 + 2.0 / ab)
    return _result(out, total_dose_gy)


def eqdx(
    total_dose_gy: ArrayLike,
    fractions: ArrayLike,
    alpha_beta_gy: float | None = None,
    reference_dose_per_fraction_gy: float = 2.0,
    *,
    model: Model | None = None,
    repopulation: Repopulation | None = None,
) -> NDArray | float:
    """Equivalent dose (Gy) in fractions of ``reference_dose_per_fraction_gy``.

    ``EQDx = BED / (f(x) / x)`` where ``f(x)`` is the model's BED of one fraction of
    ``x`` Gy; for LQ, ``EQDx = D (d + alpha/beta) / (x + alpha/beta)``.

    Examples
    --------
    >>> round(eqdx(60, 30, 3.0, reference_dose_per_fraction_gy=2.0), 10)
    60.0
    >>> round(eqdx(37.5, 5, 1.5, reference_dose_per_fraction_gy=1.8), 3)
    102.273
    """
    model = _LQ if model is None else model
    x = float(reference_dose_per_fraction_gy)
    if not np.isfinite(x) or x <= 0 or x > MAX_DOSE_GY:
        raise InvalidParameterError(
            f"reference dose per fraction must be > 0 and at most {MAX_DOSE_GY:g} Gy, got "
            f"{reference_dose_per_fraction_gy!r}"
        )
    b = bed(total_dose_gy, fractions, alpha_beta_gy, model=model, repopulation=repopulation)
    ab = _check_alpha_beta(alpha_beta_gy, model)
    per_gy = float(model.bed_per_fraction(x, ab)) / x
    if isinstance(b, float):
        return b / per_gy
    b /= per_gy
    return b


def eqd2(
    total_dose_gy: ArrayLike,
    fractions: ArrayLike,
    alpha_beta_gy: float | None = None,
    *,
    model: Model | None = None,
    repopulation: Repopulation | None = None,
) -> NDArray | float:
    """Equivalent dose in 2-Gy fractions (Gy); see :func:`eqdx` and :func:`bed`.

    Notes
    -----
    LQ: ``EQD2 = D (d + alpha/beta) / (2 + alpha/beta)``, ``d = D / n``.

    Examples
    --------
    >>> round(eqd2(65, 26, 1.5), 2)      # SHARE trial protocol, Table 3: 74.29 Gy
    74.29
    >>> round(eqd2(37.5, 5, 1.5), 2)     # SBRT 37.5 Gy / 5 fx for prostate cancer
    96.43
    >>> eqd2([0.0, 60.0], 30, 3.0).tolist()   # 2 Gy per fraction: EQD2 = physical dose
    [0.0, 60.0]
    """
    return eqdx(
        total_dose_gy, fractions, alpha_beta_gy, 2.0, model=model, repopulation=repopulation
    )
