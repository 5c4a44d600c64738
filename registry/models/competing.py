"""Competing risks without jitter: Aalen–Johansen cumulative incidence, Gray's test and the
Fine–Gray model in NumPy, matching R's cmprsk 2.2-11 (cuminc, timepoints, crr).

Data convention: `time` in days (> 0); `status` 0 censored, 1 the event of interest, 2 (any
other positive code) a competing event such as death. Every estimator is a sort plus
cumulative sums over distinct times, so tied times are handled exactly (lifelines'
AalenJohansenFitter jitters them at random) and a million subjects take seconds (R's crr is
quadratic in n). Golden values: tests/reference/competing_reference.R.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from registry.errors import ModelFitError

Array = NDArray[np.float64]
Ints = NDArray[np.int64]
Bools = NDArray[np.bool_]
Z95 = float(stats.norm.ppf(0.975))


@dataclass(frozen=True)
class CumulativeIncidence:
    """Aalen–Johansen cumulative incidence of one cause in one group (cmprsk::cuminc)."""

    cause: int
    times: Array  # 0, then each distinct time with an event of this cause (where cif steps)
    cif: Array
    variance: Array  # cuminc's delta-method variance (its Fortran `cinc`), same steps
    ci_lower: Array  # 95 % pointwise, log(-log) scale: cif ** exp(±1.96 se / (cif log cif))
    ci_upper: Array
    max_time: float  # largest follow-up time; `at` is NaN after it, as in cmprsk::timepoints

    def at(self, days: Sequence[float]) -> Array:
        """Cumulative incidence at each day (right-continuous steps), like cmprsk::timepoints."""
        return self._lookup(self.cif, days)

    def variance_at(self, days: Sequence[float]) -> Array:
        """Variance at each day, like the `var` of cmprsk::timepoints."""
        return self._lookup(self.variance, days)

    def _lookup(self, values: Array, days: Sequence[float]) -> Array:
        """Step-function lookup; NaN before 0 and after the last follow-up time."""
        when = np.asarray(days, dtype=np.float64)
        index = np.searchsorted(self.times, when, side="right") - 1
        inside = (when >= 0) & (when <= self.max_time)
        return np.where(inside, values[np.clip(index, 0, None)], np.nan)


@dataclass(frozen=True)
class FineGrayFit:
    """Fine–Gray subdistribution hazards model (cmprsk::crr, failcode = cause, cencode = 0)."""

    names: tuple[str, ...]
    coef: Array
    se: Array  # square roots of the diagonal of crr's sandwich variance `$var`
    p: Array  # two-sided Wald p-values, as summary.crr
    var: Array
    loglik: float  # log pseudo partial likelihood at coef (crr's $loglik)
    n: int
    events: int  # events of the cause of interest
    converged: bool

    def hr(self) -> Array:
        """Subdistribution hazard ratios exp(coef)."""
        return np.exp(self.coef)

    def ci(self, level: float = 0.95) -> Array:
        """Wald confidence limits of the hazard ratios, one (lower, upper) row per covariate."""
        z = float(stats.norm.ppf(0.5 + level / 2))
        return np.exp(np.column_stack((self.coef - z * self.se, self.coef + z * self.se)))


def cumulative_incidence(
    time: ArrayLike, status: ArrayLike, *, cause: int = 1, weights: ArrayLike | None = None
) -> CumulativeIncidence:
    """Aalen–Johansen cumulative incidence of `cause` with exact ties, as cmprsk::cuminc."""
    # Weights are frequency weights: weight 2 is the row twice, variance included. For
    # estimated (propensity) weights that variance is too small: bootstrap instead.
    t, s, w = _inputs(time, status, weights, cause)
    times, at_risk, own, other = _event_table(t, s, w, cause)
    before, after = _overall_km(at_risk, own + other)
    cif = np.cumsum(before * own / at_risk)
    variance = _cinc_variance(at_risk, own, other, before, after, cif)
    step = own > 0
    cif, variance = _with_origin(cif[step]), _with_origin(variance[step])
    lower, upper = _loglog_ci(cif, variance)
    max_time = float(times[-1]) if times.size else 0.0
    return CumulativeIncidence(
        cause, _with_origin(times[step]), cif, variance, lower, upper, max_time
    )


def gray_test(
    time: ArrayLike, status: ArrayLike, group: ArrayLike, *, cause: int = 1
) -> tuple[float, int, float]:
    """Gray's test (rho = 0) of equal CIFs across groups: (statistic, df, p), cuminc's $Tests."""
    t, s, _ = _inputs(time, status, None, cause)
    labels, g = np.unique(np.asarray(group).ravel(), return_inverse=True)
    if g.size != t.size:
        raise ModelFitError(f"group has {g.size:,} values but time has {t.size:,}.")
    if labels.size < 2:
        raise ModelFitError("Gray's test needs at least two groups; group has one value.")
    df = labels.size - 1
    at_risk, own, other = _group_table(t, s, g, labels.size, cause)
    if own.sum() == 0:
        return float("nan"), df, float("nan")  # cuminc reports -1: no events, no test
    with np.errstate(divide="ignore", invalid="ignore"):
        score, var = _gray_score(at_risk, own, other)
    score, var = score[:df], var[:df, :df]
    if np.linalg.matrix_rank(var) < df:
        return float("nan"), df, float("nan")  # cuminc reports -1 for a singular variance
    stat = float(score @ np.linalg.solve(var, score))
    return stat, df, float(stats.chi2.sf(stat, df))


def fit_fine_gray(
    time: ArrayLike,
    status: ArrayLike,
    X: ArrayLike,
    *,
    cause: int = 1,
    names: Sequence[str] | None = None,
    gtol: float = 1e-6,
    max_iter: int = 10,
) -> FineGrayFit:
    """Fine–Gray model by crr's Newton–Raphson (same start, steps and stop), sandwich variance."""
    t, s, _ = _inputs(time, status, None, cause)
    x = _covariates(X, t.size)
    labels = _names(X, x.shape[1], names)
    if len(labels) != x.shape[1]:
        raise ModelFitError(f"{len(labels)} names given for {x.shape[1]} covariates.")
    if not np.any(s == cause):
        raise ModelFitError(f"No events of cause {cause} among {t.size:,} rows: nothing to fit.")
    risk = _risk_sets(t, s, x, cause)
    beta, lik, converged = _newton(risk, gtol, max_iter)
    var = _sandwich(risk, beta)
    se = np.sqrt(np.diag(var))
    p = 2 * stats.norm.sf(np.abs(beta / se))
    events = int(np.sum(s == cause))
    return FineGrayFit(labels, beta, se, p, var, -lik, t.size, events, converged)


# --- inputs -----------------------------------------------------------------------------------


def _inputs(
    time: ArrayLike, status: ArrayLike, weights: ArrayLike | None, cause: int
) -> tuple[Array, Ints, Array]:
    """Validated time, status and weights; rows of weight 0 are dropped."""
    t = np.asarray(time, dtype=np.float64).ravel()
    raw = np.asarray(status).ravel()
    w = np.ones_like(t) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if raw.size != t.size or w.size != t.size:
        raise ModelFitError(
            f"time, status and weights differ in length ({t.size:,}, {raw.size:,}, {w.size:,})."
        )
    _require(np.isfinite(t) & (t > 0), "time must be finite and > 0")
    _require(np.isfinite(w) & (w >= 0), "weights must be finite and >= 0")
    numeric = raw.astype(np.float64)
    _require((numeric >= 0) & (numeric == np.round(numeric)), "status must be 0, 1, 2, ...")
    if cause < 1:
        raise ModelFitError(f"cause must be a positive status code, not {cause} (0 = censored).")
    keep = w > 0
    return t[keep], numeric[keep].astype(np.int64), w[keep]


def _require(ok: ArrayLike, what: str) -> None:
    """Raise ModelFitError naming how many rows break a rule and the first of them."""
    rows = np.asarray(ok, dtype=np.bool_)
    bad = np.flatnonzero(~rows)
    if bad.size:
        raise ModelFitError(
            f"{what}: {bad.size:,} of {rows.size:,} rows are not (first at row {bad[0]})."
        )


def _names(X: ArrayLike, p: int, names: Sequence[str] | None) -> tuple[str, ...]:
    """Names given, else a data frame's column names, else x1, x2, ..."""
    if names is not None:
        return tuple(names)
    columns = getattr(X, "columns", None)
    return tuple(map(str, columns)) if columns is not None else tuple(f"x{j + 1}" for j in range(p))


def _covariates(X: ArrayLike, n: int) -> Array:
    """Covariates as a finite (n, p) float matrix."""
    x = np.asarray(X, dtype=np.float64)
    x = x.reshape(-1, 1) if x.ndim == 1 else x
    if x.ndim != 2 or x.shape[0] != n or x.shape[1] == 0:
        raise ModelFitError(f"X must have one row per subject ({n:,}); its shape is {x.shape}.")
    _require(np.all(np.isfinite(x), axis=1), "covariates must be finite")
    return x


# --- cumulative incidence ---------------------------------------------------------------------


def _event_table(
    time: Array, status: Ints, weights: Array, cause: int
) -> tuple[Array, Array, Array, Array]:
    """Distinct times with (weighted) numbers at risk, events of the cause and other events."""
    # Canonical row order, so that weighted sums do not depend on the input's row order.
    order = np.lexsort((weights, status, time))
    t, s, w = time[order], status[order], weights[order]
    times, index = np.unique(t, return_inverse=True)
    own = _sum_by(index, w * (s == cause), times.size)
    other = _sum_by(index, w * ((s != cause) & (s != 0)), times.size)
    at_risk = _tail(_sum_by(index, w, times.size))[:-1]
    return times, at_risk, own, other


def _sum_by(index: Ints, values: ArrayLike | None, size: int) -> Array:
    """Sums of values per index 0..size-1 (bincount, in row order)."""
    return np.asarray(np.bincount(index, values, size), dtype=np.float64)


def _overall_km(at_risk: Array, events: Array) -> tuple[Array, Array]:
    """Overall Kaplan–Meier S(t-) and S(t) at each distinct time."""
    after = np.asarray(np.cumprod((at_risk - events) / at_risk), dtype=np.float64)
    return _shift(after, 1.0), after


def _cinc_variance(
    at_risk: Array, own: Array, other: Array, before: Array, after: Array, cif: Array
) -> Array:
    """Gray's delta-method CIF variance (cmprsk's Fortran `cinc`), vectorised over times."""
    inv_after = np.divide(1.0, after, out=np.zeros_like(after), where=after > 0)
    own_term = _tie_term(before, own, at_risk)
    other_term = np.where(after > 0, _tie_term(before, other, at_risk), 0.0)
    own_slope = 1.0 + inv_after * cif
    other_slope = inv_after * cif
    v1 = np.cumsum(other_slope**2 * other_term + own_slope**2 * own_term)
    v2 = np.cumsum(inv_after * (other_slope * other_term + own_slope * own_term))
    v3 = np.cumsum(inv_after**2 * (other_term + own_term))
    return v1 + cif**2 * v3 - 2 * cif * v2


def _tie_term(before: Array, events: Array, at_risk: Array) -> Array:
    """S(t-)² c d / n² with cuminc's tie factor c = 1 - (d - 1) / (n - 1) when d > 1."""
    spare = np.maximum(at_risk - 1, 1.0)  # d > 1 implies n > 1
    ties = np.where(events > 1, 1 - (events - 1) / spare, 1.0)
    return before * before * ties * events / (at_risk * at_risk)


def _loglog_ci(cif: Array, variance: Array) -> tuple[Array, Array]:
    """95 % limits on the log(-log) scale (inside [0, 1]); collapsed where cif is 0 or 1."""
    inner = (cif > 0) & (cif < 1)
    safe = np.where(inner, cif, 0.5)
    spread = Z95 * np.sqrt(np.maximum(variance, 0.0)) / (safe * -np.log(safe))
    lower = np.where(inner, safe ** np.exp(spread), cif)
    upper = np.where(inner, safe ** np.exp(-spread), cif)
    return lower, upper


def _with_origin(values: Array) -> Array:
    """Prepend the value 0 at time 0."""
    return np.concatenate(([0.0], values))


def _shift(values: Array, first: float) -> Array:
    """Values one step later along axis 0 (left limits), `first` at the start."""
    head = np.full((1, *values.shape[1:]), first)
    return np.concatenate((head, values[:-1]))


# --- Gray's test ------------------------------------------------------------------------------


def _group_table(
    time: Array, status: Ints, group: Ints, n_groups: int, cause: int
) -> tuple[Array, Array, Array]:
    """At each distinct event time and per group: at risk, events of the cause, other events."""
    times, index = np.unique(time, return_inverse=True)
    kind = np.where(status == cause, 1, np.where(status == 0, 0, 2))
    cell = (index * n_groups + group) * 3 + kind
    counts = _sum_by(cell, None, times.size * n_groups * 3).reshape(times.size, n_groups, 3)
    at_risk = _tail(counts.sum(axis=2))[:-1]
    keep = counts[:, :, 1:].sum(axis=(1, 2)) > 0
    return at_risk[keep], counts[keep, :, 1], counts[keep, :, 2]


def _gray_score(at_risk: Array, own: Array, other: Array) -> tuple[Array, Array]:
    """Score and variance of Gray's test: cmprsk's Fortran `crst`, vectorised over times."""
    risk = at_risk > 0
    n = np.where(risk, at_risk, 1.0)
    factor = np.where(risk, (at_risk - own - other) / n, 1.0)
    skm = np.asarray(np.cumprod(factor, axis=0), dtype=np.float64)
    skmm = _shift(skm, 1.0)
    f1: Array = np.cumsum(np.where(risk, skmm * own / n, 0.0), axis=0)
    f1m = _shift(f1, 0.0)
    t1 = np.where(risk, at_risk / skmm, 0.0)
    tr = t1.sum(axis=1)
    tq = np.where(risk, at_risk * (1 - f1m) / skmm, 0.0).sum(axis=1)
    nd1 = own.sum(axis=1)
    f: Array = np.cumsum(nd1 / tr)
    fm = _shift(f, 0.0)
    a = t1[:, :, None] * (np.eye(t1.shape[1]) - t1[:, None, :] / tr[:, None, None])
    c = np.cumsum(a * (nd1 / (tr * (1 - fm)))[:, None, None], axis=0)
    share = nd1[:, None] * at_risk * (1 - f1m) / (skmm * tq[:, None])
    score = np.where(risk, own - share, 0.0).sum(axis=0)
    return score, _gray_variance(risk, n, skm, skmm, other, nd1, tr, f, a, c)


def _gray_variance(
    risk: Bools,
    n: Array,
    skm: Array,
    skmm: Array,
    other: Array,
    nd1: Array,
    tr: Array,
    f: Array,
    a: Array,
    c: Array,
) -> Array:
    """Variance of Gray's score (the v, v2, v3 sums of `crst`), as sums over event times."""
    t4 = np.where(skm > 0, 1 - (1 - f)[:, None] / skm, 1.0)
    ties = np.where(nd1[:, None] > 1, 1 - (nd1[:, None] - 1) / (tr[:, None] * skmm - 1), 1.0)
    t3 = np.where(risk & (nd1[:, None] > 0), ties * skmm * nd1[:, None] / (tr[:, None] * n), 0.0)
    dev = a - t4[:, None, :] * c
    v3 = (t4**2 * t3).sum(axis=0)
    v2 = np.einsum("eik,ek->ik", dev, t4 * t3)
    v = np.tensordot(dev * t3[:, None, :], dev, axes=([0, 2], [0, 2]))
    hit = (skm > 0) & (other > 0)
    u5 = np.where(other > 1, 1 - (other - 1) / np.maximum(n - 1, 1.0), 1.0)
    u4 = np.where(hit, (1 - f)[:, None] / skm, 0.0)
    w = np.where(hit, u4**2 * u5 * skmm**2 * other / n**2, 0.0)
    v3 += w.sum(axis=0)
    v2 -= np.einsum("eik,ek->ik", c, w)
    v += np.tensordot(c * w[:, None, :], c, axes=([0, 2], [0, 2]))
    last = c[-1]
    return v + (last * v3) @ last.T + last @ v2.T + v2 @ last.T


# --- Fine–Gray --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RiskSets:
    """Rows sorted by time (canonically), centred covariates, and the Fine–Gray risk sets."""

    time: Array
    x: Array  # (n, p), centred: the model is unchanged, exp(x b) safer
    fail: Bools
    comp: Bools
    cens: Bools
    g_before: Array  # G(t_i-): Kaplan–Meier of censoring just before each row's time
    start: Ints  # per distinct failure time: first row with time >= it
    deaths: Array  # failures of the cause per distinct failure time
    g_fail: Array  # G(t-) at each distinct failure time
    x_fail: Array  # sum of x over failures


def _risk_sets(time: Array, status: Ints, x: Array, cause: int) -> _RiskSets:
    """Sort canonically (time, status, covariates) and index the risk sets of crr."""
    order = np.lexsort((*x.T[::-1], status, time))
    t, s, x = time[order], status[order], x[order]
    x = x - x.mean(axis=0)  # mean of the sorted rows: the sum must not depend on row order
    fail, cens = s == cause, s == 0
    times, first, index = np.unique(t, return_index=True, return_inverse=True)
    at_risk = (t.size - first).astype(np.float64)
    _, g_before = _overall_km(at_risk, _sum_by(index, cens, times.size))
    g_before = _shift(g_before, 1.0)[index]  # censoring KM, G(t-)
    fail_times, deaths = np.unique(t[fail], return_counts=True)
    start = np.searchsorted(t, fail_times, side="left")
    comp = ~fail & ~cens
    x_fail = x[fail].sum(axis=0)
    return _RiskSets(
        t, x, fail, comp, cens, g_before, start, deaths.astype(np.float64), g_before[start], x_fail
    )


def _risk_sums(risk: _RiskSets, beta: Array, degree: int) -> Array:
    """Per failure time, S0 (and S1, S2 flattened) over crr's weighted risk set."""
    e = np.exp(risk.x @ beta)
    parts = [e[:, None]]
    if degree > 0:
        parts.append(e[:, None] * risk.x)
    if degree > 1:
        outer = risk.x[:, :, None] * risk.x[:, None, :]
        parts.append(e[:, None] * outer.reshape(len(e), -1))
    terms = np.hstack(parts)
    # At risk: everyone still under observation, plus those with an earlier competing event,
    # weighted G(t-)/G(t_i-).
    later = np.cumsum(terms[::-1], axis=0)[::-1][risk.start]
    before = _head(terms * (risk.comp / risk.g_before)[:, None])[risk.start]
    sums: Array = later + risk.g_fail[:, None] * before
    return sums


def _objective(risk: _RiskSets, beta: Array) -> tuple[float, Array, Array]:
    """crr's minimised objective (minus log pseudo-likelihood), its gradient and Hessian."""
    p = beta.size
    sums = _risk_sums(risk, beta, degree=2)
    s0 = sums[:, 0]
    mean = sums[:, 1 : p + 1] / s0[:, None]
    second = sums[:, p + 1 :].reshape(-1, p, p) / s0[:, None, None]
    lik = float(risk.deaths @ np.log(s0) - risk.x_fail @ beta)
    grad = risk.deaths @ mean - risk.x_fail
    hess = np.einsum("f,fij->ij", risk.deaths, second - mean[:, :, None] * mean[:, None, :])
    return lik, grad, hess


def _neg_loglik(risk: _RiskSets, beta: Array) -> float:
    """Minus the log pseudo partial likelihood (Breslow ties), as crr's Fortran `crrf`."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        s0 = _risk_sums(risk, beta, degree=0)[:, 0]
        return float(risk.deaths @ np.log(s0) - risk.x_fail @ beta)


def _newton(risk: _RiskSets, gtol: float, max_iter: int) -> tuple[Array, float, bool]:
    """crr's iteration: Newton steps from 0, step halving, its convergence rule."""
    beta = np.zeros(risk.x.shape[1])
    for iteration in range(max_iter + 1):
        lik, grad, hess = _objective(risk, beta)
        if np.max(np.abs(grad) * np.maximum(np.abs(beta), 1)) < max(abs(lik), 1) * gtol:
            return beta, lik, True
        if iteration == max_iter:
            break
        step = -_solve(hess, grad)
        accepted = _line_search(risk, beta, step, lik, grad)
        if accepted is None:
            break
        beta = accepted
    return beta, lik, False


def _line_search(
    risk: _RiskSets, beta: Array, step: Array, lik: float, grad: Array
) -> Array | None:
    """Halve the step until crr's sufficient-decrease rule holds (at most 20 halvings)."""
    for _ in range(21):
        value = _neg_loglik(risk, beta + step)
        if not np.isnan(value) and value <= lik + 1e-4 * float(step @ grad):
            return beta + step
        step = step * 0.5
    return None


def _solve(hess: Array, rhs: Array) -> Array:
    """Solve with the Hessian, explaining a singular one."""
    try:
        solved = np.asarray(np.linalg.solve(hess, rhs), dtype=np.float64)
    except np.linalg.LinAlgError as error:
        raise ModelFitError(
            "The Fine–Gray information matrix is singular: a covariate is constant or "
            "collinear with others among the subjects at risk. Drop or combine it."
        ) from error
    return solved


def _sandwich(risk: _RiskSets, beta: Array) -> Array:
    """crr's variance H⁻¹ (Σ_i (η_i + ψ_i)(η_i + ψ_i)ᵀ) H⁻¹ (Fortran `crrvv`, vectorised)."""
    _, _, hess = _objective(risk, beta)
    sums = _risk_sums(risk, beta, degree=1)
    hazard = risk.deaths / sums[:, 0]
    mean = sums[:, 1:] / sums[:, :1]
    resid = _eta(risk, beta, hazard, mean) + _psi(risk, beta, hazard, mean)
    inv = _solve(hess, np.eye(beta.size))
    var: Array = inv @ (resid.T @ resid) @ inv.T
    return var


def _eta(risk: _RiskSets, beta: Array, hazard: Array, mean: Array) -> Array:
    """Score residuals: dN part minus the at-risk integral against dΛ of each row."""
    fail_times = risk.time[risk.start]
    k = np.searchsorted(fail_times, risk.time, side="right")  # failure times <= own time
    a = _head(hazard)[k]
    b = _head(hazard[:, None] * mean)[k]
    gh = risk.g_fail * hazard
    c = _tail(gh)[k]
    d = _tail(gh[:, None] * mean)[k]
    e = np.exp(risk.x @ beta)
    eta = -e[:, None] * (risk.x * a[:, None] - b)
    late = np.where(risk.comp, e / risk.g_before, 0.0)
    eta -= late[:, None] * (risk.x * c[:, None] - d)
    eta[risk.fail] += risk.x[risk.fail] - mean[k[risk.fail] - 1]
    return eta


def _psi(risk: _RiskSets, beta: Array, hazard: Array, mean: Array) -> Array:
    """Correction for estimating the censoring distribution (the ψ_i of crrvv)."""
    times, first, index = np.unique(risk.time, return_index=True, return_inverse=True)
    at_risk = (risk.time.size - first).astype(np.float64)
    censored = _sum_by(index, risk.cens, times.size)
    e = np.where(risk.comp, np.exp(risk.x @ beta) / risk.g_before, 0.0)
    prior = _head(np.column_stack((e, e[:, None] * risk.x)))[first]  # competing, before u
    k = np.searchsorted(risk.time[risk.start], times, side="left")  # failure times < u
    gh = risk.g_fail * hazard
    q = prior[:, 1:] * _tail(gh)[k][:, None] - prior[:, :1] * _tail(gh[:, None] * mean)[k]
    drift = np.cumsum(q * (censored / at_risk**2)[:, None], axis=0)
    own = np.where(risk.cens, 1.0 / at_risk[index], 0.0)
    return own[:, None] * q[index] - drift[index]


def _head(values: Array) -> Array:
    """Sums of the positions before each one along axis 0, plus the grand total at the end."""
    head: Array = np.cumsum(values, axis=0)
    return np.concatenate((np.zeros_like(values[:1]), head))


def _tail(values: Array) -> Array:
    """Sums from each position to the end along axis 0, with a final 0 (sum over nothing)."""
    tail: Array = np.cumsum(values[::-1], axis=0)[::-1]
    return np.concatenate((tail, np.zeros_like(values[:1])))
