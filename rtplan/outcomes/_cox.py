"""Cox proportional-hazards regression, matched to R's ``survival::coxph`` (3.5-3).

Needs the ``stats`` extra (statsmodels): the partial log-likelihood, its gradient and
Hessian (Efron or Breslow ties, strata) come from :class:`statsmodels.duration.
hazard_regression.PHReg`. The Newton-Raphson iteration around them is R's
``coxph.fit`` scheme (start at beta = 0, step halving when the log-likelihood drops,
stop when it changes by less than 1e-9 relatively, at most 20 iterations), so the
coefficients, their information-based standard errors and the score test at beta = 0
are those R reports. Harrell's concordance and its standard error follow R's
``concordancefit`` as ``coxph`` calls it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from rtplan._shared.optional import import_optional
from rtplan.errors import ComputationError, InvalidParameterError
from rtplan.outcomes._km import _as_time_event
from rtplan.outcomes._logrank import _codes, _labels

__all__ = ["COX_TIES", "CoxResult", "CoxTerm", "CoxTest", "cox_ph"]

Ties = Literal["efron", "breslow"]
#: Tie-handling methods (R's ``coxph(ties=)``; "exact" is not offered).
COX_TIES: tuple[str, ...] = ("efron", "breslow")

#: R ``coxph.control()`` defaults: eps, iter.max, toler.chol, toler.inf.
_EPS = 1e-9
_ITER_MAX = 20
_TOLER_CHOL = float(np.finfo(float).eps) ** 0.75
_TOLER_INF = math.sqrt(_EPS)


@dataclass(frozen=True)
class CoxTest:
    """A chi-square test of a Cox model: ``statistic``, ``df``, ``p_value``."""

    statistic: float
    df: int
    p_value: float


@dataclass(frozen=True)
class CoxTerm:
    """One covariate of a :class:`CoxResult` (hazard ratio per unit of the covariate)."""

    name: str
    coef: float
    se: float
    hazard_ratio: float
    z: float
    p_value: float
    hr_lower: float
    hr_upper: float


@dataclass(frozen=True)
class CoxResult:
    """Result of :func:`cox_ph`; per-term tuples are aligned with ``names``.

    ``coef`` are log hazard ratios per unit of each covariate, ``se`` their standard
    errors (inverse information), ``hazard_ratio`` = exp(coef) with the Wald interval
    ``hr_lower``-``hr_upper`` at ``conf_level``, ``z`` = coef / se and ``p_value`` its
    two-sided normal p. ``variance`` is the covariance matrix of ``coef``.
    ``loglik_null`` and ``loglik`` are the partial log-likelihoods at beta = 0 and at
    the estimate; ``lr_test``, ``wald_test`` and ``score_test`` (at beta = 0) are the
    global tests; ``concordance`` is Harrell's C with its standard error
    ``concordance_se``. ``n`` subjects, ``n_events`` events, ``ties`` the method,
    ``iterations`` Newton-Raphson steps taken.
    """

    names: tuple[str, ...]
    coef: tuple[float, ...]
    se: tuple[float, ...]
    hazard_ratio: tuple[float, ...]
    z: tuple[float, ...]
    p_value: tuple[float, ...]
    hr_lower: tuple[float, ...]
    hr_upper: tuple[float, ...]
    variance: tuple[tuple[float, ...], ...]
    conf_level: float
    loglik_null: float
    loglik: float
    lr_test: CoxTest
    wald_test: CoxTest
    score_test: CoxTest
    concordance: float
    concordance_se: float
    n: int
    n_events: int
    ties: str
    iterations: int

    def term(self, name: str) -> CoxTerm:
        """The estimates of one covariate, by name."""
        if name not in self.names:
            raise InvalidParameterError(
                f"no covariate {name!r} in this model: choose one of {list(self.names)}"
            )
        i = self.names.index(name)
        return CoxTerm(name, self.coef[i], self.se[i], self.hazard_ratio[i], self.z[i],
                       self.p_value[i], self.hr_lower[i], self.hr_upper[i])


# ---------------------------------------------------------------------- input checks


def _design(
    covariates: ArrayLike | Mapping[str, ArrayLike], names: Sequence[str] | None, n: int
) -> tuple[NDArray, list[str]]:
    if isinstance(covariates, Mapping):
        if names is not None and list(names) != list(covariates):
            raise InvalidParameterError(
                f"names {list(names)} differ from the covariate keys {list(covariates)}: "
                "give one or the other"
            )
        names = [str(k) for k in covariates]
        cols = [np.asarray(v).ravel() for v in covariates.values()]
        for nm, c in zip(names, cols, strict=True):
            if c.size != n:
                raise InvalidParameterError(
                    f"covariate {nm!r} has {c.size} values but time has {n}: give one per "
                    "subject"
                )
        if not cols:
            raise InvalidParameterError("no covariates: give at least one column")
        raw = np.column_stack(cols)
    else:
        raw = np.asarray(covariates)
        if raw.ndim == 1:
            raw = raw[:, None]
        if raw.ndim != 2 or raw.shape[0] != n or raw.shape[1] == 0:
            raise InvalidParameterError(
                f"covariates must have shape (n,) or (n, p) with n = {n} subjects and "
                f"p >= 1, got shape {np.shape(covariates)}"
            )
    p = raw.shape[1]
    if names is None:
        names = ["x"] if p == 1 else [f"x{j + 1}" for j in range(p)]
    names = [str(s) for s in names]
    if len(names) != p:
        raise InvalidParameterError(f"{len(names)} names {names} for {p} covariate columns")
    if len(set(names)) != p:
        raise InvalidParameterError(f"covariate names must be distinct, got {names}")
    try:
        x = raw.astype(float)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(
            f"covariates must be numeric (code categories as 0/1 indicator columns): {exc}"
        ) from None
    bad = ~np.isfinite(x)
    if bad.any():
        j = int(np.flatnonzero(bad.any(axis=0))[0])
        rows = np.flatnonzero(bad[:, j])[:5].tolist()
        raise InvalidParameterError(
            f"covariate {names[j]!r} is missing or infinite at positions {rows}: drop "
            "those subjects first (R drops them with na.action)"
        )
    return x, names


def _check_identifiable(x: NDArray, names: list[str], sidx: NDArray | None) -> None:
    """Refuse constant and collinear covariates (within strata), naming them."""
    xc = x - x.mean(axis=0)
    if sidx is not None:
        for s in np.unique(sidx):
            sel = sidx == s
            xc[sel] = x[sel] - x[sel].mean(axis=0)
    scale = np.maximum(np.abs(x).max(axis=0), 1.0)
    norms = np.sqrt((xc**2).sum(axis=0))
    where = " within every stratum" if sidx is not None else ""
    for j, nm in enumerate(names):
        if np.abs(xc[:, j]).max() <= 1e-12 * scale[j]:
            raise ComputationError(
                f"covariate {nm!r} is constant{where} (value {float(x[0, j])!r}): its hazard ratio "
                "cannot be estimated; drop it from the model"
            )
    kept: list[int] = []
    for j, nm in enumerate(names):
        if kept:
            a = xc[:, kept]
            coef, *_ = np.linalg.lstsq(a, xc[:, j], rcond=None)
            resid = xc[:, j] - a @ coef
            if np.sqrt(resid @ resid) <= 1e-9 * norms[j]:
                partners = [names[k] for k, c in zip(kept, coef, strict=True)
                            if abs(c) > 1e-9]
                raise ComputationError(
                    f"covariate {nm!r} is collinear with {partners}{where}: it is a linear "
                    "combination of them (e.g. indicator columns for every level of a "
                    "factor); drop one of them"
                )
        kept.append(j)


def _first_singular(info: NDArray) -> int | None:
    """Index of the first pivot that R's ``cholesky2`` would call singular, else None."""
    a = np.array(info, dtype=float)
    p = a.shape[0]
    diag = np.abs(np.diag(a))
    eps = (diag.max() if diag.size and diag.max() > 0 else 1.0) * _TOLER_CHOL
    for i in range(p):
        piv = a[i, i]
        if not np.isfinite(piv) or piv < eps:
            return i
        col = a[i + 1:, i] / piv
        a[i + 1:, i + 1:] -= np.outer(col, col) * piv
    return None


# ---------------------------------------------------------------------- concordance


def _count_earlier_lower(rank: NDArray, weight: NDArray) -> NDArray:
    """For each position p: the sum of ``weight[q]`` over q < p with rank[q] < rank[p].

    Bottom-up merge counting, vectorised per level: O(n log^2 n) in numpy.
    """
    n = rank.size
    out = np.zeros(n)
    r = rank.astype(np.int64)
    w = weight.astype(float)
    orig = np.arange(n)
    big = int(r.max()) + 2 if n else 2
    pos = np.arange(n)
    size = 1
    while size < n:
        blk = pos // (2 * size)
        right = (pos // size) % 2 == 1
        left = ~right
        lkeys = blk[left] * big + r[left]
        cum = np.concatenate(([0.0], np.cumsum(w[left])))
        rb = blk[right] * big
        hi = np.searchsorted(lkeys, rb + r[right], side="left")
        lo = np.searchsorted(lkeys, rb, side="left")
        out[orig[right]] += cum[hi] - cum[lo]
        order = np.argsort(blk * big + r, kind="stable")
        r, w, orig = r[order], w[order], orig[order]
        size *= 2
    return out


def _dominated(key: NDArray, rank: NDArray, weight: NDArray) -> NDArray:
    """For each i: the sum of ``weight[j]`` over j with key[j] > key[i], rank[j] < rank[i]."""
    order = np.lexsort((-rank, -key))  # key descending; equal keys never count each other
    out = np.empty(key.size)
    out[order] = _count_earlier_lower(rank[order] - rank.min(), weight[order])
    return out


def _concordance(
    time: NDArray, event: NDArray, lp: NDArray, sidx: NDArray | None
) -> tuple[float, float]:
    """Harrell's C of the linear predictor and its standard error, as R ``coxph``.

    A pair is comparable when the earlier time is an event and the other subject's time
    is later (or equal and censored), within a stratum; concordant when the event has
    the higher risk score; ties in the score count 1/2; tied event times are not
    compared. The variance is R's infinitesimal jackknife of Somers' d
    (``concordancefit``, ``timewt = "n"``): var(C) = sum(dfbeta^2) / 4.
    """
    n = time.size
    conc = np.zeros(n)
    disc = np.zeros(n)
    tied = np.zeros(n)
    groups = [np.arange(n)] if sidx is None else [np.flatnonzero(sidx == s)
                                                 for s in np.unique(sidx)]
    for sel in groups:
        t, e, x = time[sel], event[sel], lp[sel]
        ev = e == 1
        if not ev.any():
            continue
        # censored subjects sort after events at the same time (they are still at risk)
        key = 2 * np.searchsorted(np.unique(t), t) + (~ev).astype(np.int64)
        rank = np.searchsorted(np.unique(x), x)
        ones = np.ones(t.size)
        skey = np.sort(key)
        later = t.size - np.searchsorted(skey, key, side="right")
        # i as the event: comparable subjects j later than i
        a_lo = _dominated(key, rank, ones)  # lp_j < lp_i: concordant
        a_hi = _dominated(key, -rank, ones)  # lp_j > lp_i: discordant
        a_eq = later - a_lo - a_hi
        # j as the later subject: events i earlier than j
        evw = ev.astype(float)
        b_lo = _dominated(-key, rank, evw)  # lp_i < lp_j: discordant
        b_hi = _dominated(-key, -rank, evw)  # lp_i > lp_j: concordant
        earlier_events = np.searchsorted(np.sort(key[ev]), key, side="left")
        b_eq = earlier_events - b_lo - b_hi
        conc[sel] = np.where(ev, a_lo, 0.0) + b_hi
        disc[sel] = np.where(ev, a_hi, 0.0) + b_lo
        tied[sel] = np.where(ev, a_eq, 0.0) + b_eq
    c_tot, d_tot, t_tot = conc.sum() / 2, disc.sum() / 2, tied.sum() / 2
    npair = c_tot + d_tot + t_tot
    if npair == 0:
        return math.nan, math.nan
    somers = (c_tot - d_tot) / npair
    dfbeta = (conc - disc) / npair - somers / npair * (conc + disc + tied)
    return float((somers + 1) / 2), float(math.sqrt((dfbeta @ dfbeta) / 4))


# ---------------------------------------------------------------------- the model


def _evaluate(model: Any, b: NDArray) -> tuple[float, NDArray, NDArray]:
    """Partial log-likelihood, score and information (minus the Hessian) at ``b``."""
    p = b.size
    ll = float(model.loglike(b))
    if not math.isfinite(ll):
        return ll, np.full(p, np.nan), np.full((p, p), np.nan)
    return ll, np.asarray(model.score(b), float), -np.asarray(model.hessian(b), float)


def _newton(
    model: Any, ll0: float, u0: NDArray, info0: NDArray, names: list[str]
) -> tuple[NDArray, float, NDArray, NDArray, int]:
    """R's ``coxfit6`` Newton-Raphson from beta = 0, with step halving.

    Returns the estimate, its log-likelihood, score and information, and the number of
    iterations.
    """
    beta = np.zeros(u0.size)
    best_ll, u, info = ll0, u0, info0
    new = beta + _solve(info0, u0)
    halving = 0
    for it in range(1, _ITER_MAX + 1):
        new_ll, new_u, new_info = _evaluate(model, new)
        finite = math.isfinite(new_ll) and np.all(np.isfinite(new_u)) and np.all(
            np.isfinite(new_info))
        if finite and abs(1.0 - best_ll / new_ll) <= _EPS:
            return new, new_ll, new_u, new_info, it
        if not finite or new_ll < best_ll:
            halving += 1
            new = (new + halving * beta) / (halving + 1.0)
        else:
            halving = 0
            best_ll, u, info = new_ll, new_u, new_info
            beta = new
            new = beta + _solve(info, u)
    step = np.abs(_solve(info, u))
    moving = [nm for nm, st, b in zip(names, step, beta, strict=True)
              if st > _EPS and st > _TOLER_INF * abs(b)]
    raise ComputationError(
        f"the Cox model did not converge in {_ITER_MAX} Newton-Raphson iterations "
        f"(coefficients {np.round(beta, 3).tolist()}; R's coxph stops the same way): the "
        f"coefficient of {moving or names} may be infinite (monotone likelihood), e.g. a "
        "group with no events or a covariate that separates events from non-events; merge "
        "groups or drop the covariate"
    )


def _solve(info: NDArray, u: NDArray) -> NDArray:
    try:
        return np.linalg.solve(info, u)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(info) @ u


def cox_ph(
    time: ArrayLike,
    event: ArrayLike,
    covariates: ArrayLike | Mapping[str, ArrayLike],
    *,
    names: Sequence[str] | None = None,
    ties: Ties = "efron",
    conf_level: float = 0.95,
    strata: ArrayLike | None = None,
) -> CoxResult:
    """Fit a Cox proportional-hazards model (R ``coxph``), with hazard ratios and tests.

    Needs the optional ``stats`` extra (``pip install 'rtplan[stats]'``: statsmodels).

    Parameters
    ----------
    time : array_like of float, shape (n,)
        Follow-up time, >= 0, in any unit (the cohort tools use months); hazard ratios
        do not depend on it.
    event : array_like of {0, 1}, shape (n,)
        1 = event, 0 = censored.
    covariates : array_like, shape (n,) or (n, p), or mapping name -> array_like
        Numeric covariates, one row per subject (code a k-level factor as k - 1
        indicator columns; the omitted level is the reference). A mapping gives the
        names.
    names : sequence of str, optional
        Covariate names (default ``x`` or ``x1, x2, ...``).
    ties : {"efron", "breslow"}
        Approximation for tied event times (R's default is Efron).
    conf_level : float
        Level of the hazard-ratio confidence intervals, in (0, 1).
    strata : array_like, shape (n,), optional
        Stratum labels: a separate baseline hazard per stratum (R ``strata()``).

    Returns
    -------
    CoxResult
        Coefficients, standard errors, hazard ratios with Wald confidence intervals,
        z and p per covariate; log-likelihoods; likelihood-ratio, Wald and score tests;
        concordance and its standard error.

    Raises
    ------
    MissingDependencyError
        statsmodels is not installed.
    InvalidParameterError
        Mismatched lengths, missing/infinite values, negative times, event not 0/1, no
        events, unknown ``ties`` or ``conf_level`` outside (0, 1).
    ComputationError
        A covariate is constant or collinear with others (it is named), the
        information matrix is singular, a coefficient diverges (monotone likelihood,
        e.g. a group without events; R warns "coefficient may be infinite") or the
        iteration does not converge.

    Notes
    -----
    Newton-Raphson from beta = 0 as R's ``coxph.fit``; the variance is the inverse of
    the observed information I(beta) at the estimate. Tests (df = p): likelihood ratio
    2 (l(beta) - l(0)); Wald beta' I(beta) beta; score U(0)' I(0)^-1 U(0), which with
    one binary covariate is the log-rank test (exactly so without tied event times).
    Concordance: Harrell's C over comparable pairs within strata (ties in the risk score
    count 1/2, tied event times are not compared), standard error by R's infinitesimal
    jackknife. R merges times that differ by less than sqrt(machine eps) first
    (``timefix``); here times are compared exactly.

    References
    ----------
    Cox DR. J R Stat Soc B 1972;34:187-220. Efron B. JASA 1977;72:557-565. Therneau TM,
    Grambsch PM. Modeling Survival Data: Extending the Cox Model. Springer, 2000.
    Therneau T. The concordance statistic (R survival vignette).

    Examples
    --------
    Eight patients (months), a high-dose indicator; R ``coxph(Surv(t, e) ~ high_dose)``
    prints HR 0.1055 (0.01059-1.051), score (log-rank) test 5.28 on 1 df:

    >>> r = cox_ph([5, 8, 12, 3, 9, 15, 2, 7], [1, 1, 0, 1, 1, 0, 1, 1],
    ...            {"high_dose": [1, 1, 1, 0, 1, 1, 0, 0]})
    >>> t = r.term("high_dose")
    >>> round(t.hazard_ratio, 4), round(t.hr_lower, 5), round(t.hr_upper, 3)
    (0.1055, 0.01059, 1.051)
    >>> round(r.score_test.statistic, 2), r.score_test.df, round(r.concordance, 3)
    (5.28, 1, 0.741)
    """
    t, e = _as_time_event(time, event)
    n = t.size
    if ties not in COX_TIES:
        raise InvalidParameterError(
            f"ties must be one of {list(COX_TIES)}, got {ties!r} (the exact partial "
            "likelihood is not offered)"
        )
    if not (isinstance(conf_level, int | float) and 0.0 < conf_level < 1.0):
        raise InvalidParameterError(f"conf_level must be in (0, 1), got {conf_level!r}")
    x, names = _design(covariates, names, n)
    sidx = None
    if strata is not None:
        _, sidx = _codes(_labels(strata, "strata", n))
    n_events = int(e.sum())
    if n_events == 0:
        raise InvalidParameterError(
            f"no events among {n} subjects: a Cox model needs at least one event (event = 1)"
        )
    _check_identifiable(x, names, sidx)
    p = x.shape[1]
    phreg = import_optional("statsmodels.duration.hazard_regression",
                            feature="Cox proportional hazards")
    means = x.mean(axis=0)
    xc = x - means  # as R: centring leaves the coefficients unchanged, helps conditioning
    with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore",
                                                divide="ignore"):
        warnings.simplefilter("ignore")  # convergence and finiteness are checked below
        model = phreg.PHReg(t, xc, status=e, strata=sidx, ties=ties)
        ll0, u0, info0 = _evaluate(model, np.zeros(p))
        if not (math.isfinite(ll0) and np.all(np.isfinite(info0))):
            raise ComputationError(
                f"the partial likelihood is not finite at beta = 0 (log-likelihood {ll0}): "
                "check the covariates for extreme values"
            )
        bad = _first_singular(info0)
        if bad is not None:
            raise ComputationError(
                f"covariate {names[bad]!r} carries no information at the event times "
                "(the information matrix is singular, e.g. it varies only among subjects "
                "censored before the first event or is collinear with others among those "
                "at risk): drop it"
            )
        beta, ll, u, info, iters = _newton(model, ll0, u0, info0, names)
    bad = _first_singular(info)
    if bad is not None:
        raise ComputationError(
            f"the information matrix is singular at the estimate (covariate "
            f"{names[bad]!r}): the coefficient may be infinite; check that every group "
            "has events"
        )
    var = np.linalg.inv(info)
    var = (var + var.T) / 2
    step = np.abs(u @ var)
    infinite = (step > _EPS) & (step > _TOLER_INF * np.abs(beta))
    if infinite.any():
        which = [names[j] for j in np.flatnonzero(infinite)]
        raise ComputationError(
            f"the log-likelihood converged before the coefficient of {which} did: it may be "
            f"infinite (monotone likelihood; coefficients {np.round(beta, 3).tolist()}), "
            "e.g. a group with no events or a covariate that separates events from "
            "non-events; merge groups or drop the covariate"
        )
    se = np.sqrt(np.diag(var))
    z = beta / se
    zq = float(stats.norm.ppf(1.0 - (1.0 - conf_level) / 2.0))
    lr = 2.0 * (ll - ll0)
    wald = float(beta @ info @ beta)
    score = float(u0 @ _solve(info0, u0))
    conc, conc_se = _concordance(t, e, xc @ beta, sidx)

    def test(stat: float) -> CoxTest:
        return CoxTest(float(stat), p, float(stats.chi2.sf(stat, p)))

    return CoxResult(
        names=tuple(names),
        coef=tuple(beta.tolist()),
        se=tuple(se.tolist()),
        hazard_ratio=tuple(np.exp(beta).tolist()),
        z=tuple(z.tolist()),
        p_value=tuple((2.0 * stats.norm.sf(np.abs(z))).tolist()),
        hr_lower=tuple(np.exp(beta - zq * se).tolist()),
        hr_upper=tuple(np.exp(beta + zq * se).tolist()),
        variance=tuple(tuple(r) for r in var.tolist()),
        conf_level=float(conf_level),
        loglik_null=float(ll0),
        loglik=float(ll),
        lr_test=test(lr),
        wald_test=test(wald),
        score_test=test(score),
        concordance=conc,
        concordance_se=conc_se,
        n=n,
        n_events=n_events,
        ties=ties,
        iterations=iters,
    )
