"""Biochemical failure from PSA series, bPFS, and PSA response.

All functions take plain arrays: ``days`` after the start of radiotherapy (negative
= before RT) and ``psa_ng_ml``. Values need not be sorted; they are ordered by day.
The nadir is the running minimum of the PSA values measured so far, starting with the
last value before RT (the baseline) when ``use_baseline`` is True.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rtplan.errors import InvalidParameterError
from rtplan.outcomes._cohort import DAYS_PER_MONTH

__all__ = [
    "BiochemicalFailure",
    "FailureRule",
    "PsaResponse",
    "PsaResponseSummary",
    "aua_failure",
    "biochemical_failure",
    "bpfs_from_psa",
    "pcwg3_progression",
    "phoenix_failure",
    "psa_response",
    "psa_response_summary",
    "two_rises_failure",
]


class FailureRule(StrEnum):
    """Definitions of biochemical failure (see each function for the citation)."""

    phoenix = "phoenix"
    phoenix_strict = "phoenix_strict"
    two_rises = "two_rises"
    aua = "aua"
    pcwg3 = "pcwg3"


@dataclass(frozen=True)
class BiochemicalFailure:
    """Outcome of a failure definition on one PSA series.

    ``failed``: whether the rule is met; ``day``: day (after RT start) of the value
    that establishes failure (NaN if none); ``nadir_ng_ml``: nadir at that time
    (or overall nadir); ``value_ng_ml``: the failing value; ``rule``: the rule name;
    ``unconfirmed``: a value met the rule but its confirmation is still missing.
    """

    failed: bool
    day: float
    nadir_ng_ml: float
    value_ng_ml: float
    rule: str
    unconfirmed: bool = False


def _series(days: ArrayLike, psa_ng_ml: ArrayLike, use_baseline: bool) -> tuple[NDArray, NDArray]:
    d = np.asarray(days, dtype=float).ravel()
    v = np.asarray(psa_ng_ml, dtype=float).ravel()
    if d.size != v.size:
        raise InvalidParameterError(
            f"days has {d.size} values but psa_ng_ml has {v.size}: give one day per value"
        )
    if not (np.all(np.isfinite(d)) and np.all(np.isfinite(v))):
        raise InvalidParameterError("days and psa_ng_ml must be finite numbers")
    if np.any(v < 0):
        raise InvalidParameterError(
            f"PSA values must be >= 0 ng/ml, got {v[v < 0][:3].tolist()}: check the units"
        )
    order = np.argsort(d, kind="stable")
    d, v = d[order], v[order]
    post = d > 0
    if use_baseline and np.any(~post):
        keep = post.copy()
        keep[np.flatnonzero(~post)[-1]] = True  # last value on or before RT start
    else:
        keep = post
    return d[keep], v[keep]


def _none(rule: str, v: NDArray, unconfirmed: bool = False) -> BiochemicalFailure:
    nadir = float(v.min()) if v.size else math.nan
    return BiochemicalFailure(False, math.nan, nadir, math.nan, rule, unconfirmed)


def _prior_nadir(v: NDArray) -> NDArray:
    """Nadir before each value (running minimum of earlier values; inf for the first)."""
    return np.concatenate(([np.inf], np.minimum.accumulate(v)[:-1]))


def phoenix_failure(
    days: ArrayLike, psa_ng_ml: ArrayLike, inclusive: bool = True, use_baseline: bool = True
) -> BiochemicalFailure:
    """Phoenix definition after definitive radiotherapy: PSA >= nadir + 2 ng/ml.

    Parameters
    ----------
    days : array_like of float
        Day of each PSA value after RT start (negative or 0 = before/at start).
    psa_ng_ml : array_like of float
        PSA in ng/ml.
    inclusive : bool
        True (default, Phoenix proper): failure when PSA >= nadir + 2 (the consensus
        wording "a rise by 2 ng/mL or more above the nadir"); False: strictly greater
        than nadir + 2 (the Heidelberg paper's "over 2 ng/ml above PSA nadir").
    use_baseline : bool
        Count the last pre-RT value as the starting nadir.

    Returns
    -------
    BiochemicalFailure
        Failure day = day of the first value meeting the criterion (no backdating).

    References
    ----------
    Roach M 3rd et al. Defining biochemical failure following radiotherapy with or
    without hormonal therapy in men with clinically localized prostate cancer: RTOG-
    ASTRO Phoenix Consensus Conference. Int J Radiat Oncol Biol Phys 2006;65:965-974.
    Heidelberg PSMA-guided radiotherapy cohort (``shared/papers``), Statistical
    analysis: "a raise of the serum PSA over 2 ng/ml above PSA nadir after definitive
    radiotherapy" (strict: ``inclusive=False``, used by the report's ``paper`` rule).

    Examples
    --------
    >>> phoenix_failure([0, 90, 180, 270], [3.0, 0.5, 1.5, 2.5]).failed
    True
    >>> phoenix_failure([0, 90, 180], [3.0, 0.5, 2.5], inclusive=False).failed
    False
    """
    rule = "phoenix" if inclusive else "phoenix_strict"
    d, v = _series(days, psa_ng_ml, use_baseline)
    nadir = _prior_nadir(v)
    # compare with a tiny tolerance so that 0.5 + 2 == 2.5 holds in floating point
    excess = v - (nadir + 2.0)
    hit = excess >= -1e-9 if inclusive else excess > 1e-9
    idx = np.flatnonzero(hit)
    if idx.size == 0:
        return _none(rule, v)
    i = int(idx[0])
    return BiochemicalFailure(True, float(d[i]), float(nadir[i]), float(v[i]), rule)


def two_rises_failure(
    days: ArrayLike, psa_ng_ml: ArrayLike, use_baseline: bool = True
) -> BiochemicalFailure:
    """Two consecutive PSA rises from the nadir (the paper's rule after prostatectomy).

    Failure at the second of two consecutive increases: v[i-2] < v[i-1] < v[i]
    (each rise is then above the nadir). Failure day = day of v[i].

    References
    ----------
    Heidelberg PSMA-guided radiotherapy cohort (``shared/papers``), Statistical
    analysis: "two consecutive rises of PSA from nadir after primary radical
    prostatectomy".

    Examples
    --------
    >>> two_rises_failure([0, 30, 60, 90, 120], [1.0, 0.2, 0.3, 0.25, 0.4]).failed
    False
    >>> two_rises_failure([0, 30, 60, 90], [1.0, 0.2, 0.3, 0.4]).day
    90.0
    """
    d, v = _series(days, psa_ng_ml, use_baseline)
    if v.size < 3:
        return _none("two_rises", v)
    hit = (v[2:] > v[1:-1]) & (v[1:-1] > v[:-2])
    idx = np.flatnonzero(hit)
    if idx.size == 0:
        return _none("two_rises", v)
    i = int(idx[0]) + 2
    return BiochemicalFailure(
        True, float(d[i]), float(_prior_nadir(v)[i]), float(v[i]), "two_rises"
    )


def aua_failure(
    days: ArrayLike,
    psa_ng_ml: ArrayLike,
    threshold_ng_ml: float = 0.2,
    use_baseline: bool = False,
) -> BiochemicalFailure:
    """AUA biochemical recurrence after prostatectomy: PSA >= 0.2 ng/ml, confirmed.

    Failure when a value is >= ``threshold_ng_ml`` and the next value is also >= the
    threshold; the failure day is the day of the first of the two. A last value above
    the threshold without a confirmation is reported as ``unconfirmed``. Pre-RT
    values are ignored by default (the rule concerns the post-treatment course).

    References
    ----------
    Cookson MS et al. Variation in the definition of biochemical recurrence in
    patients treated for localized prostate cancer: the American Urological
    Association Prostate Guidelines for Localized Prostate Cancer Update Panel report
    and recommendations for a standard. J Urol 2007;177:540-545.

    Examples
    --------
    >>> aua_failure([30, 60, 90, 120], [0.1, 0.25, 0.15, 0.3]).unconfirmed
    True
    >>> aua_failure([30, 60, 90], [0.1, 0.2, 0.3]).day
    60.0
    """
    d, v = _series(days, psa_ng_ml, use_baseline)
    above = v >= threshold_ng_ml - 1e-12
    idx = np.flatnonzero(above[:-1] & above[1:])
    if idx.size == 0:
        return _none("aua", v, unconfirmed=bool(above.size and above[-1]))
    i = int(idx[0])
    return BiochemicalFailure(True, float(d[i]), float(_prior_nadir(v)[i]), float(v[i]), "aua")


def pcwg3_progression(
    days: ArrayLike,
    psa_ng_ml: ArrayLike,
    confirm_after_days: float = 21.0,
    use_baseline: bool = True,
) -> BiochemicalFailure:
    """PCWG3 PSA progression: >= 25 % and >= 2 ng/ml above nadir, confirmed >= 3 weeks.

    A value v with v >= 1.25 x nadir and v >= nadir + 2 ng/ml (nadir = lowest earlier
    value, baseline included) is confirmed by the first value measured at least
    ``confirm_after_days`` later that also meets both criteria against the same
    nadir. The progression day is the day of the first value (the documented rise).
    A qualifying value without any later value is ``unconfirmed``.

    References
    ----------
    Scher HI et al. Trial design and objectives for castration-resistant prostate
    cancer: updated recommendations from the Prostate Cancer Clinical Trials Working
    Group 3. J Clin Oncol 2016;34:1402-1418.

    Examples
    --------
    >>> r = pcwg3_progression([0, 28, 56, 84], [4.0, 2.0, 4.5, 5.0])
    >>> r.failed, r.day
    (True, 56.0)
    """
    d, v = _series(days, psa_ng_ml, use_baseline)
    nadir = _prior_nadir(v)

    def meets(value: float, nad: float) -> bool:
        return value >= 1.25 * nad - 1e-12 and value >= nad + 2.0 - 1e-9

    pending = False
    for i in range(1, v.size):
        if not meets(v[i], nadir[i]):
            continue
        later = np.flatnonzero(d >= d[i] + confirm_after_days)
        if later.size == 0:
            pending = True
            continue
        j = int(later[0])
        if meets(v[j], nadir[i]):
            return BiochemicalFailure(True, float(d[i]), float(nadir[i]), float(v[i]), "pcwg3")
    return _none("pcwg3", v, unconfirmed=pending)


def biochemical_failure(
    days: ArrayLike, psa_ng_ml: ArrayLike, rule: FailureRule | str
) -> BiochemicalFailure:
    """Apply a failure rule by name (``phoenix``, ``phoenix_strict``, ``two_rises``,
    ``aua``, ``pcwg3``) with its default parameters.

    Examples
    --------
    >>> biochemical_failure([0, 90, 180], [3.0, 0.5, 2.5], "phoenix").failed
    True
    """
    try:
        r = FailureRule(rule)
    except ValueError:
        raise InvalidParameterError(
            f"unknown failure rule {rule!r}: choose one of {[x.value for x in FailureRule]}"
        ) from None
    if r is FailureRule.phoenix:
        return phoenix_failure(days, psa_ng_ml, inclusive=True)
    if r is FailureRule.phoenix_strict:
        return phoenix_failure(days, psa_ng_ml, inclusive=False)
    if r is FailureRule.two_rises:
        return two_rises_failure(days, psa_ng_ml)
    if r is FailureRule.aua:
        return aua_failure(days, psa_ng_ml)
    return pcwg3_progression(days, psa_ng_ml)


def bpfs_from_psa(
    days: ArrayLike,
    psa_ng_ml: ArrayLike,
    rule: FailureRule | str,
    death_day: float | None = None,
    *,
    death_is_event: bool = True,
) -> tuple[float, int]:
    """Biochemical progression-free survival (months, event) from a PSA series.

    Parameters
    ----------
    days : array_like of float
        Day of each PSA value after RT start (<= 0 = before/at RT start).
    psa_ng_ml : array_like of float
        PSA values, ng/ml.
    rule : FailureRule or str
        Biochemical failure rule (see :func:`biochemical_failure`).
    death_day : float, optional
        Day of death (any cause) after RT start; None if alive or unknown.
    death_is_event : bool
        True (default): death from any cause is a bPFS event, as in progression-free
        survival generally. False: death is not an event; the patient is censored at
        the last PSA value after RT start, the last day the biochemical status was known.

    Returns
    -------
    tuple of (float, int)
        Months (days / 30.4375) and event (1 = failure or death, 0 = censored).

    Raises
    ------
    InvalidParameterError
        No PSA value after RT start (bPFS undefined: leave the patient out of bPFS), a
        PSA value after ``death_day``, or a negative/non-finite ``death_day``.

    Notes
    -----
    Event time = the earlier of the failure day (the day of the PSA value that
    establishes failure under ``rule``) and the death day. Without either the patient
    is censored at the last PSA value after RT start: failure can only be seen at a
    measurement. With ``death_is_event=False`` death is not an event and the patient is
    censored at the last PSA value after RT start (not at the death day: between the last
    PSA and death, biochemical failure could have gone unobserved).

    Examples
    --------
    >>> bpfs_from_psa([0, 91, 182.625], [3.0, 0.5, 2.6], "phoenix")
    (6.0, 1)
    >>> bpfs_from_psa([0, 91, 365.25], [3.0, 0.5, 0.4], "phoenix")
    (12.0, 0)

    A death after the last PSA value, before any failure, is the event:

    >>> bpfs_from_psa([-14, 91, 182.625], [3.0, 0.5, 0.4], "phoenix", death_day=365.25)
    (12.0, 1)
    >>> bpfs_from_psa([-14, 91, 182.625], [3.0, 0.5, 0.4], "phoenix", death_day=365.25,
    ...               death_is_event=False)
    (6.0, 0)
    """
    d = np.asarray(days, dtype=float).ravel()
    post = d[d > 0]
    if post.size == 0:
        raise InvalidParameterError(
            f"no PSA value after RT start (days {d.tolist()[:5]}): bPFS is not defined "
            "without follow-up PSA; leave the patient out of bPFS"
        )
    f = biochemical_failure(days, psa_ng_ml, rule)
    if death_day is not None:
        death_day = float(death_day)
        if not math.isfinite(death_day) or death_day < 0:
            raise InvalidParameterError(
                f"death_day must be a finite number of days >= 0 after RT start, got "
                f"{death_day!r}"
            )
        if post.max() > death_day:
            raise InvalidParameterError(
                f"PSA value on day {post.max():g} is after death on day {death_day:g}: "
                "check the PSA days and the death date"
            )
    if f.failed and (death_day is None or f.day <= death_day):
        day, event = f.day, 1
    elif death_day is not None and death_is_event:
        day, event = death_day, 1
    else:
        day, event = float(post.max()), 0
    return day / DAYS_PER_MONTH, event


# ------------------------------------------------------------------------ response

@dataclass(frozen=True)
class PsaResponse:
    """PSA change of one patient: ``percent_change`` and ``category``
    (``decrease`` / ``unchanged`` / ``rise``), ``decline_50`` (>= 50 % decline)."""

    percent_change: float
    category: str
    decline_50: bool


def check_band_percent(band_percent: float) -> None:
    """Refuse a band that is not a finite percentage in [0, 100] (NaN would silently
    classify every change as a rise or a decrease)."""
    try:
        band = float(band_percent)
    except (TypeError, ValueError, OverflowError):
        band = math.nan
    if not (math.isfinite(band) and 0 <= band <= 100):
        raise InvalidParameterError(
            f"band_percent must be a finite percentage from 0 to 100, got {band_percent!r}"
        )


def psa_response(pre_ng_ml: float, post_ng_ml: float, band_percent: float = 0.0) -> PsaResponse:
    """PSA response at a timepoint relative to the pre-RT value.

    Parameters
    ----------
    pre_ng_ml, post_ng_ml : float
        PSA before RT and at the timepoint (e.g. 3 months), ng/ml.
    band_percent : float
        Changes within +-band_percent % count as ``unchanged`` (0 = any change counts).

    Notes
    -----
    percent_change = 100 (post - pre) / pre. A pre value of 0 gives ``unchanged``
    if post is 0, else ``rise`` (percent change NaN).

    Examples
    --------
    >>> psa_response(2.0, 0.5)
    PsaResponse(percent_change=-75.0, category='decrease', decline_50=True)
    >>> psa_response(2.0, 2.1, band_percent=10).category
    'unchanged'
    """
    pre_ng_ml, post_ng_ml = float(pre_ng_ml), float(post_ng_ml)
    if pre_ng_ml < 0 or post_ng_ml < 0 or not (math.isfinite(pre_ng_ml)
                                                and math.isfinite(post_ng_ml)):
        raise InvalidParameterError(
            f"PSA values must be finite and >= 0 ng/ml, got {pre_ng_ml!r}, {post_ng_ml!r}"
        )
    check_band_percent(band_percent)
    if pre_ng_ml == 0:
        return PsaResponse(math.nan, "unchanged" if post_ng_ml == 0 else "rise", False)
    pct = 100.0 * (post_ng_ml - pre_ng_ml) / pre_ng_ml
    tol = 1e-9  # so that e.g. 4.0 -> 4.2 is exactly +5 %
    if pct < -band_percent - tol:
        cat = "decrease"
    elif pct > band_percent + tol:
        cat = "rise"
    else:
        cat = "unchanged"
    return PsaResponse(pct, cat, pct <= -50.0 + tol)


@dataclass(frozen=True)
class PsaResponseSummary:
    """Counts of PSA response categories over patients with both values.

    ``n``: patients with pre and post values; ``n_decrease``/``n_unchanged``/
    ``n_rise``; ``n_decline_50`` (>= 50 % decline, among all ``n``);
    ``median_percent_change`` (all patients) and ``median_reduction_percent`` (median
    decline among patients with a decrease, as a positive number), and the paired
    Wilcoxon test (R's default) of pre vs post.
    """

    n: int
    n_decrease: int
    n_unchanged: int
    n_rise: int
    n_decline_50: int
    median_percent_change: float
    median_reduction_percent: float
    wilcoxon_p: float
    wilcoxon_method: str


def psa_response_summary(
    pre_ng_ml: ArrayLike, post_ng_ml: ArrayLike, band_percent: float = 0.0
) -> PsaResponseSummary:
    """Summarise PSA response over patients (pairs with a missing value are skipped
    and counted by the caller).

    Examples
    --------
    >>> s = psa_response_summary([2, 4, 1, 3], [0.5, 1, 1, 6])
    >>> s.n_decrease, s.n_unchanged, s.n_rise, s.n_decline_50, s.median_reduction_percent
    (2, 1, 1, 2, 75.0)
    """
    from rtplan.outcomes._stattests import wilcoxon_paired

    check_band_percent(band_percent)
    pre = np.asarray(pre_ng_ml, dtype=float).ravel()
    post = np.asarray(post_ng_ml, dtype=float).ravel()
    if pre.size != post.size:
        raise InvalidParameterError("pre and post PSA need the same number of values")
    ok = np.isfinite(pre) & np.isfinite(post)
    res = [psa_response(a, b, band_percent) for a, b in zip(pre[ok], post[ok], strict=True)]
    cats = [r.category for r in res]
    pct = np.array([r.percent_change for r in res])
    dec = pct[np.array([c == "decrease" for c in cats], dtype=bool)] if res else pct
    try:
        w = wilcoxon_paired(pre[ok], post[ok])
        wp, wm = w.p_value, w.method
    except InvalidParameterError:
        wp, wm = math.nan, "not computable (no non-zero differences)"
    finite = pct[np.isfinite(pct)]
    return PsaResponseSummary(
        n=len(res),
        n_decrease=cats.count("decrease"),
        n_unchanged=cats.count("unchanged"),
        n_rise=cats.count("rise"),
        n_decline_50=int(sum(r.decline_50 for r in res)),
        median_percent_change=float(np.median(finite)) if finite.size else math.nan,
        median_reduction_percent=float(-np.median(dec)) if dec.size else math.nan,
        wilcoxon_p=wp,
        wilcoxon_method=wm,
    )
