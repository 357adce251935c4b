"""Kaplan-Meier estimation with Greenwood variance, matched to R's ``survival`` package.

The estimator, its variance, the pointwise confidence intervals, the median (and its
confidence interval) and the restricted mean follow ``survfit``/``print.survfit``/
``quantile.survfit`` of R ``survival`` 3.5 (Therneau), so results agree with R to
floating-point rounding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from rtplan.errors import InvalidParameterError

__all__ = [
    "CONF_TYPES",
    "KaplanMeier",
    "LandmarkRate",
    "kaplan_meier",
    "median_follow_up",
]

ConfType = Literal["log", "log-log", "plain"]
#: Confidence-interval transformations, as R's ``survfit(conf.type=)``.
CONF_TYPES: tuple[str, ...] = ("log", "log-log", "plain")

#: R's tolerance for "exactly 0.5" (``.Machine$double.eps^0.5``).
_TOL = math.sqrt(np.finfo(float).eps)


def _as_time_event(time: ArrayLike, event: ArrayLike) -> tuple[NDArray, NDArray]:
    """Validate and convert survival data to float times and 0/1 float events."""
    t = np.asarray(time, dtype=float).ravel()
    e_raw = np.asarray(event).ravel()
    if t.size == 0:
        raise InvalidParameterError("no subjects: time is empty; give at least one subject")
    if e_raw.size != t.size:
        raise InvalidParameterError(
            f"time has {t.size} values but event has {e_raw.size}: give one event flag "
            "(1 = event, 0 = censored) per time"
        )
    if not np.all(np.isfinite(t)):
        bad = np.flatnonzero(~np.isfinite(t))[:5].tolist()
        raise InvalidParameterError(
            f"time must be finite; positions {bad} are NaN or infinite: drop or fix them"
        )
    if np.any(t < 0):
        bad = np.flatnonzero(t < 0)[:5].tolist()
        raise InvalidParameterError(
            f"time must be >= 0; positions {bad} are negative (e.g. {t[bad[0]]!r}): "
            "check the start and end dates"
        )
    e = e_raw.astype(float)
    if not np.all((e == 0) | (e == 1)):
        bad = np.flatnonzero(~((e == 0) | (e == 1)))[:5].tolist()
        raise InvalidParameterError(
            f"event must be 0 (censored) or 1 (event); positions {bad} hold "
            f"{e_raw[bad[0]]!r}: recode the event column"
        )
    return t, e


def _distinct_sorted(ts: NDArray) -> tuple[NDArray, NDArray]:
    """Distinct values and their counts of an already sorted array."""
    if ts.size == 0:
        return ts, np.zeros(0, dtype=np.int64)
    new = np.empty(ts.size, dtype=bool)
    new[0] = True
    np.not_equal(ts[1:], ts[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    return ts[starts], np.diff(np.append(starts, ts.size))


def _count_at(ut: NDArray, values: NDArray) -> NDArray:
    """How many ``values`` equal each of the sorted distinct times ``ut`` (a subset)."""
    u, c = _distinct_sorted(np.sort(values))
    out = np.zeros(ut.size, dtype=np.int64)
    out[np.searchsorted(ut, u)] = c
    return out


def _check_conf(conf_type: str, conf_level: float) -> float:
    if conf_type not in CONF_TYPES:
        raise InvalidParameterError(
            f"conf_type must be one of {list(CONF_TYPES)}, got {conf_type!r}"
        )
    if not 0.0 < conf_level < 1.0:
        raise InvalidParameterError(f"conf_level must be in (0, 1), got {conf_level!r}")
    return float(stats.norm.ppf(1.0 - (1.0 - conf_level) / 2.0))


def _conf_band(
    surv: NDArray, se_log: NDArray, conf_type: str, z: float
) -> tuple[NDArray, NDArray]:
    """Pointwise CI of S from the standard error of log S (R's ``survfit_confint``)."""
    surv = np.asarray(surv, dtype=float)
    se_log = np.asarray(se_log, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if conf_type == "plain":
            half = se_log * surv * z
            lower = np.maximum(surv - half, 0.0)
            upper = np.minimum(surv + half, 1.0)
            bad = ~np.isfinite(half)
            lower[bad] = np.nan
            upper[bad] = np.nan
        elif conf_type == "log":
            xx = np.where(surv == 0, np.nan, surv)
            lower = np.exp(np.log(xx) - z * se_log)
            upper = np.minimum(np.exp(np.log(xx) + z * se_log), 1.0)
            upper[np.isnan(lower)] = np.nan
        else:  # log-log
            xx = np.where((surv == 0) | (surv == 1), np.nan, surv)
            se2 = z * se_log / np.log(xx)
            lower = np.exp(-np.exp(np.log(-np.log(xx)) - se2))
            upper = np.exp(-np.exp(np.log(-np.log(xx)) + se2))
    return lower, upper


def _minmin(y: NDArray, x: NDArray) -> float:
    """First x where y <= 0.5 (midpoint rule on an exact 0.5 plateau); R ``survmean``."""
    keep = ~np.isnan(y) & (y < 0.5 + _TOL)
    if not np.any(keep):
        return math.nan
    xk, yk = x[keep], y[keep]
    if abs(yk[0] - 0.5) < _TOL and np.any(yk < yk[0]):
        return float((xk[0] + xk[np.flatnonzero(yk < yk[0])[0]]) / 2.0)
    return float(xk[0])


def _findq(x: NDArray, y: NDArray, probs: NDArray) -> NDArray:
    """Quantiles of a CDF step curve (R ``quantile.survfit`` helper ``findq``).

    ``x`` are jump times with a leading start time, ``y = 1 - S`` (may hold NaN).
    """
    out = np.full(probs.shape, np.nan)
    if np.all(np.isnan(y)) or np.nanmax(y) < probs.min():
        return out
    xmax = x[-1]
    # drop duplicated y (R's duplicated(): NaN duplicates NaN), keep first occurrences
    keep = np.zeros(y.size, dtype=bool)
    fin_idx = np.flatnonzero(~np.isnan(y))
    keep[fin_idx[np.unique(y[fin_idx], return_index=True)[1]]] = True
    nan_idx = np.flatnonzero(np.isnan(y))
    if nan_idx.size:
        keep[nan_idx[0]] = True
    x, y = x[keep], y[keep]
    n = y.size
    # R approx(y, 1:n, p, method="constant", f=1, rule=1) drops NA and sorts by y
    # (the confidence limits need not be monotone); it returns the index of the first
    # sorted y >= p, NA outside [min y, max y].
    finite = np.flatnonzero(~np.isnan(y))
    order = finite[np.argsort(y[finite], kind="stable")]
    ys = y[order]

    def first_at_least(vals: NDArray, p: float) -> int | None:
        if p < vals[0] or p > vals[-1]:
            return None
        return int(order[np.flatnonzero(vals >= p)[0]])

    for k, p in enumerate(probs):
        if p == 0:
            out[k] = x[0]
            continue
        i1 = first_at_least(ys + _TOL, p)
        i2 = first_at_least(ys - _TOL, p)
        q = math.nan if (i1 is None or i2 is None) else (x[i1] + x[i2]) / 2.0
        if not np.isnan(y[n - 1]) and abs(p - y[n - 1]) < _TOL:
            q = math.nan if i1 is None else (x[i1] + xmax) / 2.0
        out[k] = q
    return out


@dataclass(frozen=True)
class LandmarkRate:
    """Survival at a landmark time with its confidence interval.

    ``beyond_follow_up`` is True when the landmark lies after the last follow-up time
    while the curve is still above 0; the rate is then unknown and given as NaN.
    """

    time: float
    rate: float
    lower: float
    upper: float
    n_at_risk: int
    beyond_follow_up: bool


class KaplanMeier:
    """A fitted Kaplan-Meier curve; build it with :func:`kaplan_meier`.

    Attributes
    ----------
    time : ndarray
        Distinct observed times (events and censorings), ascending, in the input unit.
    n_risk, n_event, n_censor : ndarray
        Subjects at risk just before, events at, and censorings at each time.
    surv : ndarray
        Kaplan-Meier survival just after each time.
    se_log_surv : ndarray
        Greenwood standard error of log S (R's ``std.err``); ``inf`` once S = 0.
    lower, upper : ndarray
        Pointwise confidence limits (NaN where R gives NA).
    """

    def __init__(
        self,
        time: NDArray,
        event: NDArray,
        conf_type: str,
        conf_level: float,
    ) -> None:
        self.conf_type = conf_type
        self.conf_level = conf_level
        self._z = _check_conf(conf_type, conf_level)
        self.n = int(time.size)
        # two plain sorts (all times, event times) are faster than one argsort
        self._sorted_time = np.sort(time)
        ut, counts = _distinct_sorted(self._sorted_time)
        d = _count_at(ut, time[event == 1]).astype(float)
        n_risk = self.n - np.concatenate(([0], np.cumsum(counts)[:-1]))
        self.time = ut
        self.n_risk = n_risk.astype(np.int64)
        self.n_event = d.astype(np.int64)
        self.n_censor = (counts - d).astype(np.int64)
        self.surv = np.cumprod((n_risk - d) / n_risk)
        with np.errstate(divide="ignore", invalid="ignore"):
            term = np.where(d > 0, d / (n_risk * (n_risk - d)), 0.0)
        self.se_log_surv = np.sqrt(np.cumsum(term))
        self.lower, self.upper = _conf_band(self.surv, self.se_log_surv, conf_type, self._z)

    # ---------------------------------------------------------------- evaluation
    def _index(self, times: ArrayLike) -> tuple[NDArray, NDArray]:
        t = np.atleast_1d(np.asarray(times, dtype=float))
        if np.any(np.isnan(t)):
            raise InvalidParameterError("times must not contain NaN")
        return t, np.searchsorted(self.time, t, side="right") - 1

    def survival_at(self, times: ArrayLike) -> NDArray:
        """Survival probability S(t) at ``times`` (step function, right-continuous).

        Past the last observed time the curve is carried forward, as R's
        ``summary(fit, times, extend=TRUE)``; use :meth:`landmark` for rates that are
        NaN beyond follow-up.

        Examples
        --------
        >>> km = kaplan_meier([1, 2, 3, 4], [1, 1, 0, 1])
        >>> km.survival_at([0, 1, 2.5, 10]).round(4).tolist()
        [1.0, 0.75, 0.5, 0.0]
        """
        _, idx = self._index(times)
        s = np.where(idx < 0, 1.0, self.surv[np.maximum(idx, 0)])
        return s

    def se_log_at(self, times: ArrayLike) -> NDArray:
        """Greenwood standard error of log S(t) at ``times`` (0 before the first time)."""
        _, idx = self._index(times)
        return np.where(idx < 0, 0.0, self.se_log_surv[np.maximum(idx, 0)])

    def std_err_at(self, times: ArrayLike) -> NDArray:
        """Standard error of S(t) (Greenwood, R's ``summary()$std.err``); NaN once S = 0."""
        s = self.survival_at(times)
        se = self.se_log_at(times)
        with np.errstate(invalid="ignore"):
            out = s * se
        out[~np.isfinite(se)] = np.nan
        return out

    def ci_at(self, times: ArrayLike) -> tuple[NDArray, NDArray]:
        """Pointwise (lower, upper) confidence limits of S(t) at ``times``.

        Examples
        --------
        >>> km = kaplan_meier([1, 2, 3, 4], [1, 1, 0, 1])
        >>> lo, hi = km.ci_at([2])
        >>> float(lo[0].round(4)), float(hi[0])
        (0.1877, 1.0)
        """
        return _conf_band(
            self.survival_at(times), self.se_log_at(times), self.conf_type, self._z
        )

    def at_risk(self, times: ArrayLike) -> NDArray:
        """Number of subjects at risk (time >= t) at ``times``.

        Examples
        --------
        >>> kaplan_meier([1, 2, 3, 4], [1, 1, 0, 1]).at_risk([0, 2, 2.5, 5]).tolist()
        [4, 3, 2, 0]
        """
        t, _ = self._index(times)
        return (self.n - np.searchsorted(self._sorted_time, t, side="left")).astype(np.int64)

    def events_between(self, start: float, stop: float) -> int:
        """Number of events in the interval (start, stop]."""
        sel = (self.time > start) & (self.time <= stop)
        return int(self.n_event[sel].sum())

    @property
    def last_time(self) -> float:
        """Largest observed time (event or censoring)."""
        return float(self.time[-1])

    def landmark(self, time: float) -> LandmarkRate:
        """Rate at a landmark time (e.g. 24 months), NaN with a flag beyond follow-up.

        Examples
        --------
        >>> km = kaplan_meier([5, 10, 20, 30], [1, 0, 1, 0])
        >>> km.landmark(24).rate, km.landmark(40).beyond_follow_up
        (0.375, True)
        """
        t = float(time)
        s = float(self.survival_at([t])[0])
        lo, hi = self.ci_at([t])
        beyond = t > self.last_time and s > 0.0
        if beyond:
            return LandmarkRate(t, math.nan, math.nan, math.nan, 0, True)
        return LandmarkRate(t, s, float(lo[0]), float(hi[0]), int(self.at_risk([t])[0]), False)

    # ---------------------------------------------------------------- summaries
    @property
    def median(self) -> float:
        """Median survival time by R's printed-table rule (NaN if not reached).

        The first time with S <= 0.5; when S equals 0.5 (within sqrt(machine eps)) on
        a plateau that is followed by a drop, the midpoint of that time and the next
        time with a lower S.

        Examples
        --------
        >>> kaplan_meier([1, 2, 3, 4], [1, 1, 1, 1]).median
        2.5
        """
        return _minmin(self.surv, self.time)

    @property
    def median_ci(self) -> tuple[float, float]:
        """(lower, upper) confidence limits of the median, R's printed-table rule.

        The lower limit is where the lower pointwise band crosses 0.5, the upper where
        the upper band does; NaN where it never does.

        Examples
        --------
        >>> kaplan_meier([1, 2, 3, 4], [1, 1, 1, 1]).median_ci
        (1.0, nan)
        """
        return (_minmin(self.lower, self.time), _minmin(self.upper, self.time))

    def quantile(self, probs: Sequence[float] | ArrayLike = (0.25, 0.5, 0.75)) -> tuple[
        NDArray, NDArray, NDArray
    ]:
        """Quantiles of the event-time distribution with CIs (R ``quantile.survfit``).

        Returns ``(quantile, lower, upper)`` arrays, where ``p`` is the probability of
        having had the event (the median is ``p = 0.5``). Differs from :attr:`median`
        only when the curve ends exactly at ``1 - p``.

        Examples
        --------
        >>> q, lo, hi = kaplan_meier([1, 2, 3, 4], [1, 1, 0, 0]).quantile([0.5])
        >>> float(q[0])
        3.0
        """
        p = np.atleast_1d(np.asarray(probs, dtype=float))
        if np.any((p < 0) | (p > 1)) or np.any(np.isnan(p)):
            raise InvalidParameterError(f"probs must be in [0, 1], got {p.tolist()}")
        x = np.concatenate(([0.0], self.time))
        q = _findq(x, np.concatenate(([0.0], 1.0 - self.surv)), p)
        lo = _findq(x, np.concatenate(([0.0], 1.0 - self.lower)), p)
        hi = _findq(x, np.concatenate(([0.0], 1.0 - self.upper)), p)
        return q, lo, hi

    def restricted_mean(self, end_time: float | None = None) -> tuple[float, float]:
        """Restricted mean survival time up to ``end_time`` and its standard error.

        Default ``end_time`` is the last observed time (R's ``rmean``; for several
        curves R uses the largest last time of all curves, pass it explicitly).

        Examples
        --------
        >>> kaplan_meier([1, 2, 3, 4], [1, 1, 1, 1]).restricted_mean()[0]
        2.5
        """
        end = self.last_time if end_time is None else float(end_time)
        start = min(0.0, float(self.time[0]))
        n, d = self.n_risk.astype(float), self.n_event.astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            hh = np.where(n - d == 0, 0.0, d / (n * (n - d)))
        keep = np.flatnonzero(self.time <= end)
        if keep.size == 0:
            ttime, tsurv, hh = np.array([end]), np.array([1.0]), np.array([0.0])
        else:
            ttime = np.concatenate((self.time[keep], [end]))
            tsurv = np.concatenate((self.surv[keep], [self.surv[keep[-1]]]))
            hh = np.concatenate((hh[keep], [0.0]))
        delta = np.diff(np.concatenate(([start], ttime)))
        rect = delta * np.concatenate(([1.0], tsurv[:-1]))
        varmean = float(np.sum(np.cumsum(rect[1:][::-1]) ** 2 * hh[::-1][1:]))
        return float(rect.sum() + start), math.sqrt(varmean)

    def __repr__(self) -> str:
        return (
            f"KaplanMeier(n={self.n}, events={int(self.n_event.sum())}, "
            f"median={self.median:g}, conf_type={self.conf_type!r})"
        )


def kaplan_meier(
    time: ArrayLike,
    event: ArrayLike,
    conf_type: ConfType | str = "log",
    conf_level: float = 0.95,
) -> KaplanMeier:
    """Fit a Kaplan-Meier survival curve with Greenwood variance.

    Parameters
    ----------
    time : array_like of float, shape (n,)
        Follow-up time of each subject (any unit, e.g. months), >= 0.
    event : array_like of {0, 1}, shape (n,)
        1 = event (death, failure), 0 = censored at ``time``.
    conf_type : {"log", "log-log", "plain"}
        Transformation for the pointwise confidence interval: ``log`` (R's default,
        S exp(+-z se)), ``log-log`` (exponential Greenwood) or ``plain`` (linear,
        clipped to [0, 1]).
    conf_level : float
        Confidence level, e.g. 0.95.

    Returns
    -------
    KaplanMeier
        With ``survival_at``, ``ci_at``, ``at_risk``, ``landmark``, ``median``,
        ``median_ci``, ``quantile`` and ``restricted_mean``.

    Raises
    ------
    InvalidParameterError
        Empty input, mismatched lengths, negative or non-finite times, event flags
        other than 0/1, unknown ``conf_type``.

    Notes
    -----
    S(t) = prod_{t_i <= t} (1 - d_i / n_i); Var(log S) = sum d_i / (n_i (n_i - d_i))
    (Greenwood). Median and its CI follow R's ``print.survfit`` table.

    References
    ----------
    Kaplan EL, Meier P. J Am Stat Assoc 1958;53:457-481. Greenwood M. Reports on Public
    Health and Medical Subjects 33, 1926. Therneau T. A Package for Survival Analysis in
    R, version 3.5-3 (``survfit``).

    Examples
    --------
    >>> km = kaplan_meier([6, 6, 6, 7, 10, 13, 16], [1, 1, 1, 1, 0, 1, 1])
    >>> km.survival_at([6, 12]).round(4).tolist()
    [0.5714, 0.4286]
    >>> km.median
    7.0
    """
    t, e = _as_time_event(time, event)
    return KaplanMeier(t, e, str(conf_type), float(conf_level))


def median_follow_up(
    time: ArrayLike, event: ArrayLike, conf_type: ConfType | str = "log", conf_level: float = 0.95
) -> tuple[float, float, float]:
    """Median follow-up by the reverse Kaplan-Meier method, with its CI.

    Censoring is treated as the event and events as censoring (Schemper & Smith 1996),
    so deaths do not shorten the follow-up estimate.

    Parameters
    ----------
    time : array_like of float
        Follow-up time of each subject (e.g. months).
    event : array_like of {0, 1}
        1 = event, 0 = censored.
    conf_type, conf_level
        As in :func:`kaplan_meier`.

    Returns
    -------
    (median, lower, upper) : tuple of float
        NaN where not reached.

    References
    ----------
    Schemper M, Smith TL. Control Clin Trials 1996;17:343-346.

    Examples
    --------
    >>> median_follow_up([2, 4, 6, 8, 10], [1, 0, 0, 1, 0])[0]
    8.0
    """
    t, e = _as_time_event(time, event)
    km = KaplanMeier(t, 1.0 - e, str(conf_type), float(conf_level))
    lo, hi = km.median_ci
    return km.median, lo, hi
