"""Log-rank tests (k groups, stratified, G-rho weights), trend test, pairwise tests.

Computations follow R ``survival::survdiff`` (hypergeometric variance, ties handled as
in Mantel-Haenszel), so statistics agree with R to floating-point rounding.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from rtplan.errors import InvalidParameterError
from rtplan.outcomes._km import _as_time_event, _count_at, _distinct_sorted
from rtplan.outcomes.categories import FRACTION_CATEGORY_SCORES

__all__ = [
    "LogrankResult",
    "PairwiseResult",
    "TrendResult",
    "holm",
    "logrank",
    "logrank_trend",
    "natural_order",
    "pairwise_logrank",
]


@dataclass(frozen=True)
class LogrankResult:
    """Result of :func:`logrank`: chi-square ``statistic``, ``df``, ``p_value``.

    ``groups`` are the group labels (sorted), ``n`` subjects, ``observed`` and
    ``expected`` (weighted) events per group, ``variance`` the covariance matrix of
    O - E, ``rho`` the G-rho weight exponent.
    """

    statistic: float
    df: int
    p_value: float
    groups: tuple[Any, ...]
    n: tuple[int, ...]
    observed: tuple[float, ...]
    expected: tuple[float, ...]
    variance: tuple[tuple[float, ...], ...]
    rho: float


@dataclass(frozen=True)
class TrendResult:
    """Result of :func:`logrank_trend`: chi-square ``statistic`` (df 1), ``p_value``.

    ``u`` = w'(O - E), ``v`` = w' V w, ``z`` = u / sqrt(v) (positive: more events than
    expected in higher-scored groups), ``scores`` per group in ``groups`` order.
    """

    statistic: float
    df: int
    p_value: float
    u: float
    v: float
    z: float
    groups: tuple[Any, ...]
    scores: tuple[float, ...]
    observed: tuple[float, ...]
    expected: tuple[float, ...]


@dataclass(frozen=True)
class PairwiseResult:
    """One pair of :func:`pairwise_logrank`: unadjusted and Holm-adjusted p-values."""

    group_a: Any
    group_b: Any
    statistic: float
    p_value: float
    p_holm: float


def _labels(values: ArrayLike, what: str, n: int) -> NDArray:
    arr = np.asarray(values).ravel()
    if arr.dtype.kind not in "iubUS":
        arr = arr.astype(object) if arr.dtype.kind != "f" else arr
    if arr.size != n:
        raise InvalidParameterError(
            f"{what} has {arr.size} values but time has {n}: give one per subject"
        )
    if arr.dtype.kind == "f":
        bad = np.isnan(arr)
    elif arr.dtype == object:
        bad = np.array([v is None for v in arr.tolist()], dtype=bool) | (arr != arr)  # None/NaN
    else:
        bad = np.zeros(n, dtype=bool)
    if bad.any():
        raise InvalidParameterError(
            f"{what} is missing at positions {np.flatnonzero(bad)[:5].tolist()}: drop those "
            "subjects first (R drops them with na.action)"
        )
    return arr


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating)


def _as_number(v: Any) -> float | None:
    """The numeric value of a label (a number, or a string such as "2" or "10.5")."""
    if _is_number(v):
        return float(v)
    if isinstance(v, str):
        try:
            x = float(v)
        except ValueError:
            return None
        return x if math.isfinite(x) else None
    return None


def natural_order(labels: Iterable[Any]) -> tuple[list[Any], str]:
    """Default order of group labels, and what that order rests on.

    Returns ``(levels, kind)`` with ``kind`` one of

    - ``"numeric"``: all labels are numbers or numeric strings ("2", "10"); sorted by
      value (not as text, where "10" < "2");
    - ``"fraction_category"``: all labels are fraction-count categories (``"<10"``,
      ``"10-24"``, ``">24"``); in clinical order (as text, "10-24" < "<10" < ">24");
    - ``"unordered"``: anything else; sorted as text, an order without meaning.

    Examples
    --------
    >>> natural_order([">24", "<10", "10-24"])
    (['<10', '10-24', '>24'], 'fraction_category')
    >>> natural_order(["10", "2", "1"])
    (['1', '2', '10'], 'numeric')
    >>> natural_order(["b", "a"])
    (['a', 'b'], 'unordered')
    """
    present = list(dict.fromkeys(labels))
    values = [_as_number(v) for v in present]
    if present and all(x is not None for x in values):
        order = sorted(range(len(present)), key=lambda i: (values[i], str(present[i])))
        return [present[i] for i in order], "numeric"
    if present and all(isinstance(v, str) and v in FRACTION_CATEGORY_SCORES for v in present):
        return sorted(present, key=FRACTION_CATEGORY_SCORES.__getitem__), "fraction_category"
    try:
        return sorted(present), "unordered"
    except TypeError:
        return sorted(present, key=str), "unordered"


def _codes(arr: NDArray, levels: Sequence[Any] | None = None) -> tuple[list[Any], NDArray]:
    if arr.dtype == object:
        present = set(arr.tolist())
    else:
        present = set(np.unique(arr).tolist())
    if levels is None:
        levels, _ = natural_order(present)
    else:
        levels = list(levels)
        if len(set(levels)) != len(levels):
            raise InvalidParameterError(f"levels must be distinct, got {levels}")
        unknown = sorted(present - set(levels), key=str)
        if unknown:
            raise InvalidParameterError(
                f"groups {unknown} are not in levels {levels}: add them or drop those subjects"
            )
    if len(levels) <= 64:
        codes = np.zeros(arr.size, dtype=np.int64)
        for i, lv in enumerate(levels[1:], start=1):
            codes[arr == lv] = i
        return levels, codes
    index = {lv: i for i, lv in enumerate(levels)}
    return levels, np.fromiter((index[v] for v in arr.tolist()), dtype=np.int64, count=arr.size)


def _survdiff(
    time: NDArray, event: NDArray, gidx: NDArray, k: int, sidx: NDArray | None, rho: float
) -> tuple[NDArray, NDArray, NDArray]:
    """Observed, expected and variance summed over strata (R ``survdiff.fit``)."""
    obs = np.zeros(k)
    exp = np.zeros(k)
    var = np.zeros((k, k))
    strata = [np.arange(time.size)] if sidx is None else [
        np.flatnonzero(sidx == s) for s in np.unique(sidx)
    ]
    for sel in strata:
        t, e, g = time[sel], event[sel], gidx[sel]
        ut, _ = _distinct_sorted(np.sort(t))
        m = ut.size
        cnt = np.zeros((m, k))
        dth = np.zeros((m, k))
        ev = e == 1
        for j in range(k):
            in_j = g == j
            cnt[:, j] = _count_at(ut, t[in_j])
            dth[:, j] = _count_at(ut, t[in_j & ev])
        nrisk = cnt[::-1].cumsum(axis=0)[::-1]
        n = nrisk.sum(axis=1)
        d = dth.sum(axis=1)
        if rho != 0:
            km = np.cumprod((n - d) / n)
            w = np.concatenate(([1.0], km[:-1])) ** rho
        else:
            w = np.ones(m)
        has = d > 0
        w, d, n, nrisk, dth = w[has], d[has], n[has], nrisk[has], dth[has]
        frac = nrisk / n[:, None]
        obs += (w[:, None] * dth).sum(axis=0)
        exp += ((w * d)[:, None] * frac).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            kk = np.where(n > 1, w * w * d * (n - d) / (n - 1), 0.0)
        var += np.diag((kk[:, None] * frac).sum(axis=0)) - (kk[:, None] * frac).T @ frac
    return obs, exp, var


def _chisq(obs: NDArray, exp: NDArray, var: NDArray) -> tuple[float, int]:
    use = np.flatnonzero(exp > 0)
    if use.size < 2:
        return 0.0, 0
    diff = (obs - exp)[use][1:]
    vv = var[np.ix_(use, use)][1:, 1:]
    try:
        sol = np.linalg.solve(vv, diff)
    except np.linalg.LinAlgError:
        sol = np.linalg.pinv(vv) @ diff
    return float(sol @ diff), int(use.size - 1)


def logrank(
    time: ArrayLike,
    event: ArrayLike,
    group: ArrayLike,
    strata: ArrayLike | None = None,
    rho: float = 0,
    *,
    levels: Sequence[Any] | None = None,
) -> LogrankResult:
    """Log-rank test (k groups, optionally stratified, G-rho family weights).

    Parameters
    ----------
    time : array_like of float, shape (n,)
        Follow-up time (any unit).
    event : array_like of {0, 1}, shape (n,)
        1 = event, 0 = censored.
    group : array_like, shape (n,)
        Group label per subject (2 or more distinct labels).
    strata : array_like, shape (n,), optional
        Stratum label per subject: O, E and V are summed over strata.
    rho : float
        Weight exponent: events at t weigh S(t-)^rho (pooled Kaplan-Meier within
        stratum). 0 = log-rank, 1 = Peto & Peto modification of Gehan-Wilcoxon.
    levels : sequence, optional
        Order of the groups in the result (default: :func:`natural_order`: numeric
        labels by value, fraction categories in clinical order, else sorted as text).

    Returns
    -------
    LogrankResult
        ``statistic`` (chi-square), ``df`` (groups with E > 0, minus 1), ``p_value``.

    Notes
    -----
    chi2 = (O - E)' V^- (O - E) over all groups but the first, with the
    hypergeometric variance V_jk = sum_t w^2 d (n - d) / (n - 1) (n_j/n)(delta_jk - n_k/n).

    References
    ----------
    Mantel N. Cancer Chemother Rep 1966;50:163-170. Harrington DP, Fleming TR.
    Biometrika 1982;69:553-566. R ``survival::survdiff``.

    Examples
    --------
    >>> r = logrank([6, 7, 10, 15, 19, 25], [1, 0, 1, 1, 0, 1], ["a", "b", "a", "b", "a", "b"])
    >>> round(r.statistic, 4), r.df
    (0.6154, 1)
    """
    t, e = _as_time_event(time, event)
    levels, g = _codes(_labels(group, "group", t.size), levels)
    if len(levels) < 2:
        raise InvalidParameterError(
            f"log-rank needs at least 2 groups, got {len(levels)} ({levels}): check the "
            "grouping column"
        )
    sidx = None
    if strata is not None:
        _, sidx = _codes(_labels(strata, "strata", t.size))
    if not math.isfinite(rho) or rho < 0:
        raise InvalidParameterError(f"rho must be a finite number >= 0, got {rho!r}")
    obs, exp, var = _survdiff(t, e, g, len(levels), sidx, float(rho))
    chi, df = _chisq(obs, exp, var)
    p = float(stats.chi2.sf(chi, df)) if df > 0 else math.nan
    return LogrankResult(
        statistic=chi,
        df=df,
        p_value=p,
        groups=tuple(levels),
        n=tuple(int(c) for c in np.bincount(g, minlength=len(levels))),
        observed=tuple(obs.tolist()),
        expected=tuple(exp.tolist()),
        variance=tuple(tuple(r) for r in var.tolist()),
        rho=float(rho),
    )


def logrank_trend(
    time: ArrayLike,
    event: ArrayLike,
    group: ArrayLike,
    scores: Mapping[Any, float] | Sequence[float] | None = None,
    strata: ArrayLike | None = None,
    *,
    levels: Sequence[Any] | None = None,
) -> TrendResult:
    """Log-rank test for trend across ordered groups.

    Parameters
    ----------
    time, event
        As in :func:`logrank`.
    group : array_like, shape (n,)
        Group label per subject.
    scores : mapping or sequence of float, optional
        Score per group: a mapping label -> score, or a sequence aligned with the
        group order (``levels``, or the default order of :func:`natural_order`).
        Default, by kind of label:

        - numbers or numeric strings ("1", "2", "10"): the values themselves;
        - fraction-count categories ``"<10"``, ``"10-24"``, ``">24"``: 0, 1, 2 (their
          clinical order, ``rtplan.outcomes.categories.FRACTION_CATEGORY_SCORES``);
        - with ``levels`` given (non-numeric labels): 0, 1, ..., k-1 in that order;
        - other labels without ``levels`` have no order:
          :class:`~rtplan.errors.InvalidParameterError` (give a mapping).
    strata : array_like, optional
        Stratum labels; O, E and V are summed over strata.
    levels : sequence, optional
        Order of the groups (default: :func:`natural_order`).

    Returns
    -------
    TrendResult
        ``statistic`` = U^2 / V with U = w'(O - E), V = w' Var(O - E) w, ``df`` = 1.

    Raises
    ------
    InvalidParameterError
        Labels without a natural order (e.g. "yes"/"no", "<60"/"60-69") and neither a
        score mapping nor ``levels``; a score missing for a group; wrong number of
        sequence scores.

    References
    ----------
    Collett D. Modelling Survival Data in Medical Research, 3rd ed., 2015, sec. 2.6.4.
    Equal to the score test of a Cox model with the score as covariate (exact ties).

    Examples
    --------
    Fraction categories are scored in clinical order (<10 = 0, 10-24 = 1, >24 = 2),
    not as text (where "10-24" sorts before "<10"):

    >>> r = logrank_trend([1, 2, 3, 4, 5, 6], [1, 1, 1, 1, 1, 1], ["<10", "<10", "10-24",
    ...                   "10-24", ">24", ">24"])
    >>> r.groups, r.scores, r.z < 0
    (('<10', '10-24', '>24'), (0.0, 1.0, 2.0), True)
    >>> logrank_trend([1, 2, 3, 4], [1, 1, 1, 1], ["a", "b", "a", "b"])
    Traceback (most recent call last):
    ...
    rtplan.errors.InvalidParameterError: the trend test needs ordered groups, ...
    """
    t, e = _as_time_event(time, event)
    explicit_levels = levels is not None
    levels, g = _codes(_labels(group, "group", t.size), levels)
    k = len(levels)
    if k < 2:
        raise InvalidParameterError(f"the trend test needs >= 2 groups, got {levels}")
    _, kind = natural_order(levels)
    if scores is None or not isinstance(scores, Mapping):
        if kind == "unordered" and not explicit_levels:
            raise InvalidParameterError(
                f"the trend test needs ordered groups, but the labels {levels} have no "
                "natural order (sorting them as text would give an arbitrary order): give "
                "scores as a mapping label -> score, e.g. scores="
                f"{ {lv: i for i, lv in enumerate(levels)} }, or the order as levels=[...]"
            )
    if scores is None:
        if kind == "numeric":
            w = np.asarray([_as_number(v) for v in levels], dtype=float)
        elif kind == "fraction_category" and not explicit_levels:
            w = np.asarray([FRACTION_CATEGORY_SCORES[v] for v in levels], dtype=float)
        else:
            w = np.arange(k, dtype=float)
    elif isinstance(scores, Mapping):
        missing = [lv for lv in levels if lv not in scores]
        if missing:
            raise InvalidParameterError(
                f"scores give no value for groups {missing}: give a score for each of {levels}"
            )
        w = np.asarray([float(scores[lv]) for lv in levels])
    else:
        w = np.asarray(list(scores), dtype=float)
        if w.size != k:
            raise InvalidParameterError(
                f"{w.size} scores for {k} groups {levels}: give one score per group, in "
                "that order, or a mapping label -> score"
            )
    sidx = None
    if strata is not None:
        _, sidx = _codes(_labels(strata, "strata", t.size))
    obs, exp, var = _survdiff(t, e, g, k, sidx, 0.0)
    u = float(w @ (obs - exp))
    v = float(w @ var @ w)
    chi = u * u / v if v > 0 else math.nan
    return TrendResult(
        statistic=chi,
        df=1,
        p_value=float(stats.chi2.sf(chi, 1)) if v > 0 else math.nan,
        u=u,
        v=v,
        z=u / math.sqrt(v) if v > 0 else math.nan,
        groups=tuple(levels),
        scores=tuple(w.tolist()),
        observed=tuple(obs.tolist()),
        expected=tuple(exp.tolist()),
    )


def holm(p_values: ArrayLike) -> NDArray:
    """Holm step-down adjusted p-values (R ``p.adjust(method="holm")``).

    Missing p-values (NaN) stay NaN and do not count: m is the number of non-missing
    values, as in R, where ``p.adjust(c(0.01, NA, 0.02), "holm")`` gives 0.02, NA, 0.02.

    Parameters
    ----------
    p_values : array_like of float
        Unadjusted p-values in [0, 1]; NaN = missing.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values, same order; NaN where the input was NaN.

    Notes
    -----
    With the m non-missing values sorted, p_(i) -> min(1, max_{j <= i} (m - j + 1) p_(j)).

    References
    ----------
    Holm S. A simple sequentially rejective multiple test procedure. Scand J Stat
    1979;6:65-70. R ``stats::p.adjust``.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03]).round(4).tolist()
    [0.03, 0.06, 0.06]
    >>> holm([0.01, float("nan"), 0.02]).round(4).tolist()
    [0.02, nan, 0.02]
    """
    p = np.asarray(p_values, dtype=float).ravel()
    out = np.full(p.size, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = ok.size
    if m == 0:
        return out
    q = p[ok]
    order = np.argsort(q, kind="stable")
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * q[order]))
    out[ok[order]] = adj
    return out


def pairwise_logrank(
    time: ArrayLike,
    event: ArrayLike,
    group: ArrayLike,
    strata: ArrayLike | None = None,
    rho: float = 0,
    *,
    levels: Sequence[Any] | None = None,
) -> list[PairwiseResult]:
    """Log-rank test for every pair of groups, with unadjusted and Holm p-values.

    Each pair is tested on its own subjects (as ``survminer::pairwise_survdiff``).
    Pairs follow the group order (``levels``, default :func:`natural_order`: fraction
    categories in clinical order). A pair whose test is not computable (no events:
    p-value NaN) keeps NaN and is left out of the Holm adjustment, as R does.

    Examples
    --------
    >>> res = pairwise_logrank([1, 2, 3, 4, 5, 6], [1, 1, 1, 1, 1, 1], list("aabbcc"))
    >>> [(r.group_a, r.group_b) for r in res]
    [('a', 'b'), ('a', 'c'), ('b', 'c')]
    """
    t, e = _as_time_event(time, event)
    g = _labels(group, "group", t.size)
    s = None if strata is None else _labels(strata, "strata", t.size)
    levels, codes = _codes(g, levels)
    pairs = []
    for i, j in itertools.combinations(range(len(levels)), 2):
        sel = (codes == i) | (codes == j)
        if not sel.any() or len(set(codes[sel].tolist())) < 2:
            continue
        r = logrank(t[sel], e[sel], g[sel], None if s is None else s[sel], rho,
                    levels=[levels[i], levels[j]])
        pairs.append((levels[i], levels[j], r.statistic, r.p_value))
    adj = holm([p[3] for p in pairs])
    return [
        PairwiseResult(a, b, st, p, float(h))
        for (a, b, st, p), h in zip(pairs, adj, strict=True)
    ]
