"""Fraction-count categories (the paper's outcome groups) and dose-per-fraction classes."""

from __future__ import annotations

from enum import StrEnum

import numpy as np

from rtplan.errors import InvalidParameterError

__all__ = [
    "FRACTION_CATEGORIES",
    "DosePerFractionClass",
    "dose_per_fraction_class",
    "fraction_category",
]

#: The paper's outcome groups, in order of increasing fraction count.
FRACTION_CATEGORIES: tuple[str, str, str] = ("<10", "10-24", ">24")

_TOL_GY = 1e-9


def fraction_category(fractions: int) -> str:
    """The paper's fraction-count group: ``"<10"``, ``"10-24"`` or ``">24"``.

    Edges: 9 fractions is ``<10``; 10 and 24 are ``10-24``; 25 is ``>24``.

    Examples
    --------
    >>> [fraction_category(n) for n in (1, 9, 10, 24, 25, 34)]
    ['<10', '<10', '10-24', '10-24', '>24', '>24']
    """
    if isinstance(fractions, bool) or not float(fractions).is_integer() or fractions < 1:
        raise InvalidParameterError(
            f"fractions must be a whole number >= 1, got {fractions!r}"
        )
    n = int(fractions)
    if n < 10:
        return FRACTION_CATEGORIES[0]
    if n <= 24:
        return FRACTION_CATEGORIES[1]
    return FRACTION_CATEGORIES[2]


class DosePerFractionClass(StrEnum):
    """Dose-per-fraction classes of the ASTRO/ASCO/AUA 2018 guideline."""

    CONVENTIONAL = "conventional"
    MODERATE_HYPOFRACTIONATION = "moderate_hypofractionation"
    ULTRAHYPOFRACTIONATION = "ultrahypofractionation"
    UNCLASSIFIED = "unclassified"


def dose_per_fraction_class(dose_per_fraction_gy: float) -> DosePerFractionClass:
    """Classify a dose per fraction by the ASTRO/ASCO/AUA 2018 definitions.

    Edges (inclusive at both ends, to 1e-9 Gy):

    - conventional: 1.8-2.0 Gy per fraction;
    - moderate hypofractionation: 2.4-3.4 Gy;
    - ultrahypofractionation: >= 5 Gy;
    - anything else (below 1.8, 2.0-2.4, 3.4-5 Gy): unclassified.

    The ENI level of 51 Gy / 34 fx (1.5 Gy) and the SIB of 57.2 Gy / 34 fx (1.68 Gy)
    are therefore unclassified; the SIB of 61.2 Gy / 34 fx (1.8 Gy) is conventional.

    References
    ----------
    Morgan SC, Hoffman K, Loblaw DA, et al. Hypofractionated radiation therapy for
    localized prostate cancer: an ASTRO, ASCO, and AUA evidence-based guideline.
    J Clin Oncol 2018;36:3411-3430.

    Examples
    --------
    >>> [dose_per_fraction_class(d).value for d in (1.8, 2.2, 2.4, 3.4, 5.0, 7.5)]
    ['conventional', 'unclassified', 'moderate_hypofractionation', \
'moderate_hypofractionation', 'ultrahypofractionation', 'ultrahypofractionation']
    """
    d = float(dose_per_fraction_gy)
    if not np.isfinite(d) or d <= 0:
        raise InvalidParameterError(
            f"dose per fraction must be a positive number of Gy, got {dose_per_fraction_gy!r}"
        )
    if 1.8 - _TOL_GY <= d <= 2.0 + _TOL_GY:
        return DosePerFractionClass.CONVENTIONAL
    if 2.4 - _TOL_GY <= d <= 3.4 + _TOL_GY:
        return DosePerFractionClass.MODERATE_HYPOFRACTIONATION
    if d >= 5.0 - _TOL_GY:
        return DosePerFractionClass.ULTRAHYPOFRACTIONATION
    return DosePerFractionClass.UNCLASSIFIED
