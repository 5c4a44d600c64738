"""Kaplan-Meier curves, log-rank tests, reverse-KM follow-up and restricted mean survival.

Plain vectorised NumPy (one sort per fit, then bincounts and cumulative sums), checked
against R's survival package in tests/test_km.py (tests/reference/km_reference.R).
Conventions, all R's: at a tied time events come before censorings, so the number at risk
at t counts every subject with duration >= t; confidence intervals are 95% log-log
(survfit(..., conf.type = "log-log"), lifelines' default); medians and their CIs follow
print(survfit) (survmean's rule, including the midpoint when the curve sits exactly at 0.5).
Variance: Greenwood; with non-integer weights (IPTW) the infinitesimal jackknife, which is
what R's survfit(..., weights = w) switches to by default, so weighted CIs match R as well.
Where S = 1 the CI is [1, 1] (R reports NA); where S = 0 it is NaN (R: NA). Past the last
observed time (event or censoring) `at` gives NaN, not S carried forward: R's
summary(survfit, times =, extend = FALSE) returns no row there.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from registry.constants import Z95
from registry.errors import ModelFitError

YEARS_DAYS = (365, 730, 1096, 1461, 1826)
_TOL = float(np.sqrt(np.finfo(float).eps))  # survmean's tolerance for "exactly 0.5"

Floats = np.ndarray  # float64 arrays; left unparametrised to keep numpy stubs quiet
Bounds = tuple[float | None, float | None]


@dataclass(frozen=True)
class KaplanMeier:
    """A fitted Kaplan-Meier curve; one row per distinct time, starting at day 0.

    With weights, at_risk / events / censored are sums of weights; n and total_events
    stay counts of subjects.
    """

    times: Floats
    survival: Floats
    ci_lower: Floats
    ci_upper: Floats
    at_risk: Floats
    events: Floats
    censored: Floats
    n: int
    total_events: int
    median: float | None
    median_ci: Bounds

    def at(self, days: npt.ArrayLike) -> tuple[Floats, Floats, Floats]:
        """Survival and its CI at `days` (step function, right-continuous; 1 before day 0);
        NaN past the last observed time, as R's summary(survfit, times =, extend = FALSE)
        drops those times and as the cumulative incidence's `at` does."""
        when = np.asarray(days, dtype=float)
        idx = np.searchsorted(self.times, when, side="right") - 1
        before, safe = idx < 0, np.maximum(idx, 0)
        beyond = when > self.times[-1]
        survival, lower, upper = (
            np.where(beyond, np.nan, np.where(before, 1.0, curve[safe]))
            for curve in (self.survival, self.ci_lower, self.ci_upper)
        )
        return survival, lower, upper


@dataclass(frozen=True)
class LogRank:
    """A (possibly stratified) log-rank test: chi-square statistic, degrees of freedom, p."""

    statistic: float
    df: int
    p: float


@dataclass(frozen=True)
class RMSTDifference:
    """Restricted mean survival to tau per group and the difference (second minus first)."""

    tau: float
    rmst_by_group: dict[Any, float]
    se_by_group: dict[Any, float]
    difference: float
    ci_lower: float
    ci_upper: float
    p: float


@dataclass(frozen=True)
class _RiskTable:
    """Counts per distinct time, and each subject's row in it."""

    times: Floats
    row: npt.NDArray[np.intp]
    at_risk: Floats
    events: Floats
    censored: Floats


def _as_arrays(
    duration: npt.ArrayLike, event: npt.ArrayLike, weights: npt.ArrayLike | None = None
) -> tuple[Floats, npt.NDArray[np.bool_], Floats]:
    """Validated float durations, boolean events and float weights (ones if none)."""
    d = np.asarray(duration, dtype=float)
    e = np.asarray(event).astype(bool)
    w = np.ones_like(d) if weights is None else np.asarray(weights, dtype=float)
    if not d.shape == e.shape == w.shape or d.ndim != 1:
        raise ModelFitError(
            f"duration, event and weights differ in length: {d.size}, {e.size}, {w.size}"
        )
    if np.isnan(d).any() or (d < 0).any():
        raise ModelFitError(f"{int((np.isnan(d) | (d < 0)).sum())} durations are missing or < 0")
    if not (np.isfinite(w).all() and (w >= 0).all()):
        raise ModelFitError("weights must be finite and >= 0; check the propensity model")
    return d, e, w


def _risk_table(d: Floats, e: npt.NDArray[np.bool_], w: Floats) -> _RiskTable:
    """Weighted at-risk, event and censoring totals at each distinct time."""
    times, row = np.unique(d, return_inverse=True)
    events = np.bincount(row, w * e, len(times)).astype(float)
    exits = np.bincount(row, w, len(times)).astype(float)
    at_risk = np.cumsum(exits[::-1])[::-1]
    return _RiskTable(times, row, at_risk, events, exits - events)


def _greenwood(table: _RiskTable) -> Floats:
    """Standard error of log S(t) by Greenwood's formula (weighted counts as in R)."""
    n, d = table.at_risk, table.events
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(d > 0, d / (n * (n - d)), 0.0)
    return np.sqrt(np.cumsum(terms))


def _jackknife(table: _RiskTable, e: npt.NDArray[np.bool_], w: Floats) -> Floats:
    """Standard error of log S(t) by the infinitesimal jackknife, as R's robust survfit.

    Subject i's influence on log S(t) is g(min(t, T_i)) - [event, T_i <= t] / (n - d)(T_i),
    with g the Greenwood increments summed; var(t) sums w_i^2 influence_i(t)^2.
    """
    n, d, row, size = table.at_risk, table.events, table.row, len(table.times)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.cumsum(np.where(d > 0, d / (n * (n - d)), 0.0))
        jump = np.where(e, 1.0 / (n - d)[row], 0.0)
    done = np.cumsum(np.bincount(row, w**2 * (g[row] - jump) ** 2, size))
    still = np.cumsum(np.bincount(row, w**2, size)[::-1])[::-1]
    return np.sqrt(done + g**2 * np.append(still[1:], 0.0))


def _loglog_ci(survival: Floats, se: Floats) -> tuple[Floats, Floats]:
    """95% log-log limits; 1 where S = 1 (R gives NA there), NaN where S = 0."""
    inner = (survival > 0) & (survival < 1)
    s = np.where(inner, survival, 0.5)
    half = Z95 * se / np.log(s)
    lower = np.exp(-np.exp(np.log(-np.log(s)) - half))
    upper = np.exp(-np.exp(np.log(-np.log(s)) + half))
    fill = np.where(survival >= 1, 1.0, np.nan)
    return np.where(inner, lower, fill), np.where(inner, upper, fill)


def _first_below_half(curve: Floats, times: Floats) -> float | None:
    """survmean's median rule: first time the curve is <= 0.5 (midpoint if exactly 0.5)."""
    keep = ~np.isnan(curve) & (curve < 0.5 + _TOL)
    y, x = curve[keep], times[keep]
    if y.size == 0:
        return None
    lower = np.flatnonzero(y < y[0])
    if abs(y[0] - 0.5) < _TOL and lower.size:
        return float((x[0] + x[lower[0]]) / 2)
    return float(x[0])


def fit_km(
    duration: npt.ArrayLike, event: npt.ArrayLike, *, weights: npt.ArrayLike | None = None
) -> KaplanMeier:
    """Kaplan-Meier curve with log-log 95% CI; weights give an IPTW-weighted curve."""
    d, e, w = _as_arrays(duration, event, weights)
    table = _risk_table(d, e, w)
    with np.errstate(divide="ignore", invalid="ignore"):
        survival = np.cumprod(1.0 - table.events / table.at_risk)
    # R's survfit switches to the robust (jackknife) variance for non-integer case weights.
    robust = weights is not None and bool((w != np.floor(w)).any())
    lower, upper = _loglog_ci(survival, _jackknife(table, e, w) if robust else _greenwood(table))
    km = KaplanMeier(
        times=table.times,
        survival=survival,
        ci_lower=lower,
        ci_upper=upper,
        at_risk=table.at_risk,
        events=table.events,
        censored=table.censored,
        n=int(d.size),
        total_events=int(e.sum()),
        median=_first_below_half(survival, table.times),
        median_ci=(_first_below_half(lower, table.times), _first_below_half(upper, table.times)),
    )
    return _with_origin(km, float(w.sum()))


def _with_origin(km: KaplanMeier, total_weight: float) -> KaplanMeier:
    """Prepend the day-0 row (S = 1, everyone at risk) unless day 0 is already a time."""
    if km.times.size and km.times[0] == 0:
        return km
    return replace(
        km,
        times=np.insert(km.times, 0, 0.0),
        survival=np.insert(km.survival, 0, 1.0),
        ci_lower=np.insert(km.ci_lower, 0, 1.0),
        ci_upper=np.insert(km.ci_upper, 0, 1.0),
        at_risk=np.insert(km.at_risk, 0, total_weight),
        events=np.insert(km.events, 0, 0.0),
        censored=np.insert(km.censored, 0, 0.0),
    )


def median_follow_up(
    duration: npt.ArrayLike, event: npt.ArrayLike
) -> tuple[float | None, float | None, float | None]:
    """Median follow-up by reverse KM (censoring is the event), with its log-log 95% CI."""
    d, e, _ = _as_arrays(duration, event)
    km = fit_km(d, ~e)
    return km.median, km.median_ci[0], km.median_ci[1]


def _codes(values: npt.ArrayLike) -> tuple[np.ndarray, npt.NDArray[np.intp]]:
    """Sorted distinct values and each element's index into them."""
    levels, codes = np.unique(np.asarray(values), return_inverse=True)
    return levels, codes.reshape(-1)


def logrank(
    duration: npt.ArrayLike,
    event: npt.ArrayLike,
    group: npt.ArrayLike,
    *,
    strata: npt.ArrayLike | None = None,
) -> LogRank:
    """Log-rank test across groups, optionally stratified (R's survdiff)."""
    d, e, _ = _as_arrays(duration, event)
    _, g = _codes(group)
    _, s = _codes(np.zeros(d.size) if strata is None else strata)
    if g.size != d.size or s.size != d.size:
        raise ModelFitError(f"group / strata lengths ({g.size}, {s.size}) differ from {d.size}")
    observed_minus_expected, variance, expected = _logrank_sums(d, e, g, s)
    return _chi_square(observed_minus_expected, variance, expected)


def _logrank_sums(
    d: Floats, e: npt.NDArray[np.bool_], g: npt.NDArray[np.intp], s: npt.NDArray[np.intp]
) -> tuple[Floats, Floats, Floats]:
    """O - E, its variance matrix and E per group, summed over strata."""
    k = int(g.max(initial=0)) + 1
    _, t = _codes(d)
    width = int(t.max(initial=0)) + 1
    cell, row = _codes(s.astype(np.int64) * width + t)  # rows sorted by stratum, then time
    counts = row * k + g
    events = np.bincount(counts, e, cell.size * k).reshape(-1, k)
    exits = np.bincount(counts, minlength=cell.size * k).reshape(-1, k).astype(float)
    at_risk = _within_stratum_at_risk(exits, cell // width)
    return _hypergeometric(events, at_risk)


def _within_stratum_at_risk(exits: Floats, stratum: np.ndarray) -> Floats:
    """Reverse cumulative sum of exits restarted at each stratum (rows sorted by stratum)."""
    tail = np.cumsum(exits[::-1], axis=0)[::-1]
    last = np.searchsorted(stratum, stratum, side="right")  # first row of the next stratum
    after = np.vstack([tail, np.zeros((1, exits.shape[1]))])[last]
    return tail - after


def _hypergeometric(events: Floats, at_risk: Floats) -> tuple[Floats, Floats, Floats]:
    """Sum over event times of O - E, the hypergeometric covariance and E."""
    keep = events.sum(axis=1) > 0
    o, r = events[keep], at_risk[keep]
    n, dead = r.sum(axis=1), o.sum(axis=1)
    share = r / n[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.where(n > 1, dead * (n - dead) / (n - 1), 0.0)
    expected = (dead[:, None] * share).sum(axis=0)
    variance = np.diag((spread[:, None] * share).sum(axis=0)) - np.einsum(
        "t,tg,th->gh", spread, share, share
    )
    return o.sum(axis=0) - expected, variance, expected


def _chi_square(diff: Floats, variance: Floats, expected: Floats) -> LogRank:
    """Quadratic form over the groups with E > 0, dropping one (as print.survdiff)."""
    used = np.flatnonzero(expected > 0)[:-1]
    if used.size == 0:
        return LogRank(statistic=float("nan"), df=0, p=float("nan"))  # fewer than 2 groups at risk
    sub = diff[used]
    statistic = float(sub @ np.linalg.solve(variance[np.ix_(used, used)], sub))
    return LogRank(
        statistic=statistic, df=int(used.size), p=float(stats.chi2.sf(statistic, used.size))
    )


def restricted_mean(km: KaplanMeier, tau: float) -> tuple[float, float]:
    """Area under the curve from 0 to tau and its SE (R: summary(fit, rmean=tau)$table)."""
    keep = km.times <= tau
    times = np.append(km.times[keep], tau)
    surv = np.append(km.survival[keep], km.survival[keep][-1] if keep.any() else 1.0)
    rectangles = np.diff(np.concatenate([[0.0], times])) * np.concatenate([[1.0], surv[:-1]])
    n, d = km.at_risk[keep], km.events[keep]
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard_var = np.where(n - d > 0, d / (n * (n - d)), 0.0)
    area_after = rectangles.sum() - np.cumsum(rectangles)[:-1]  # from each time to tau
    return float(rectangles.sum()), float(np.sqrt(np.sum(area_after**2 * hazard_var)))


def rmst_difference(
    duration: npt.ArrayLike, event: npt.ArrayLike, group: npt.ArrayLike, *, tau: float
) -> RMSTDifference:
    """RMST to tau per group and the difference (second level minus first), normal 95% CI."""
    d, e, _ = _as_arrays(duration, event)
    levels, g = _codes(group)
    if levels.size != 2:
        raise ModelFitError(f"rmst_difference needs exactly 2 groups, found {levels.size}")
    fits = [restricted_mean(fit_km(d[g == i], e[g == i]), tau) for i in range(2)]
    (m0, se0), (m1, se1) = fits
    se = float(np.hypot(se0, se1))
    diff = m1 - m0
    keys = [level.item() if hasattr(level, "item") else level for level in levels]
    return RMSTDifference(
        tau=float(tau),
        rmst_by_group={keys[0]: m0, keys[1]: m1},
        se_by_group={keys[0]: se0, keys[1]: se1},
        difference=diff,
        ci_lower=diff - Z95 * se,
        ci_upper=diff + Z95 * se,
        p=float(2 * stats.norm.sf(abs(diff) / se)) if se > 0 else float("nan"),
    )
