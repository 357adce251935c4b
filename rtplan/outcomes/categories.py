"""Fraction-count categories used to stratify outcomes (< 10, 10-24, > 24 fractions).

The categories are those of the Heidelberg PSMA-guided radiotherapy cohort (51 patients
with > 24, 21 with 10-24 and 14 with < 10 fractions).

The definition lives in :func:`rtplan.radiobiology.fraction_category`; this module
re-exports it with the ordinal scores used by the trend test.
"""

from __future__ import annotations

from rtplan.radiobiology.categories import FRACTION_CATEGORIES as _CATS
from rtplan.radiobiology.categories import fraction_category as _radiobiology_category

__all__ = ["FRACTION_CATEGORIES", "FRACTION_CATEGORY_SCORES", "fraction_category"]

#: Category labels in increasing order of fraction count.
FRACTION_CATEGORIES: tuple[str, ...] = _CATS
#: Ordinal scores for the trend test.
FRACTION_CATEGORY_SCORES: dict[str, int] = {c: i for i, c in enumerate(FRACTION_CATEGORIES)}


def fraction_category(n: int) -> str:
    """Fraction-count category of a schedule: ``"<10"``, ``"10-24"`` or ``">24"``.

    Parameters
    ----------
    n : int
        Number of fractions, >= 1.

    Returns
    -------
    str
        ``"<10"`` for 1-9, ``"10-24"`` for 10-24, ``">24"`` for 25 or more fractions.

    Raises
    ------
    InvalidParameterError
        If ``n`` is not a whole number >= 1.

    References
    ----------
    Heidelberg PSMA-guided radiotherapy cohort (see ``shared/papers``), Results.

    Examples
    --------
    >>> [fraction_category(n) for n in (3, 9, 10, 24, 25, 34)]
    ['<10', '<10', '10-24', '10-24', '>24', '>24']
    """
    return _radiobiology_category(n)
