"""The Fine–Gray subdistribution hazards model by crr's Newton–Raphson, sandwich variance."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import linalg, stats

from registry.errors import ModelFitError
from registry.models.competing.common import (
    Array,
    Bools,
    Ints,
    inputs,
    overall_km,
    require,
    shift,
    sum_by,
    sums_before,
    sums_from,
)


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
    t, s, _ = inputs(time, status, None, cause)
    x = _covariates(X, t.size)
    labels = _names(X, x.shape[1], names)
    if len(labels) != x.shape[1]:
        raise ModelFitError(f"{len(labels)} names given for {x.shape[1]} covariates.")
    if not np.any(s == cause):
        raise ModelFitError(f"No events of cause {cause} among {t.size:,} rows: nothing to fit.")
    _check_constant(x, labels)
    risk = _risk_sets(t, s, x, cause)
    beta, lik, converged = _newton(risk, gtol, max_iter)
    var = _sandwich(risk, beta)
    se = np.sqrt(np.diag(var))
    p = 2 * stats.norm.sf(np.abs(beta / se))
    events = int(np.sum(s == cause))
    return FineGrayFit(labels, beta, se, p, var, -lik, t.size, events, converged)


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
    require(np.all(np.isfinite(x), axis=1), "covariates must be finite")
    return x


def _check_constant(x: Array, names: tuple[str, ...]) -> None:
    """Refuse a constant covariate, as fit_cox does: centring a constant that is not exactly
    representable (0.1) leaves rounding noise, and Newton would "converge" on it at 1e15."""
    const = [name for j, name in enumerate(names) if np.all(x[:, j] == x[0, j])]
    if const:
        raise ModelFitError(
            f"covariate(s) {', '.join(const)} are constant: the Fine–Gray information matrix "
            "is singular; drop them from the model."
        )


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
    _, g_before = overall_km(at_risk, sum_by(index, cens, times.size))
    g_before = shift(g_before, 1.0)[index]  # censoring KM, G(t-)
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
    before = sums_before(terms * (risk.comp / risk.g_before)[:, None])[risk.start]
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
    """Solve with the Hessian by Cholesky, refusing one singular to working precision (the
    rule of fit_cox and R's cholesky2: a pivot below eps^0.75 of its diagonal element)."""
    try:
        factor = linalg.cho_factor(hess)
        pivots = np.diag(factor[0]) ** 2
        singular = bool(np.any(pivots <= np.finfo(float).eps ** 0.75 * np.abs(np.diag(hess))))
    except (linalg.LinAlgError, ValueError):
        singular = True
    if singular:
        raise ModelFitError(
            "The Fine–Gray information matrix is singular: a covariate is constant or "
            "collinear with others among the subjects at risk. Drop or combine it."
        )
    return np.asarray(linalg.cho_solve(factor, rhs), dtype=np.float64)


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
    a = sums_before(hazard)[k]
    b = sums_before(hazard[:, None] * mean)[k]
    gh = risk.g_fail * hazard
    c = sums_from(gh)[k]
    d = sums_from(gh[:, None] * mean)[k]
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
    censored = sum_by(index, risk.cens, times.size)
    e = np.where(risk.comp, np.exp(risk.x @ beta) / risk.g_before, 0.0)
    prior = sums_before(np.column_stack((e, e[:, None] * risk.x)))[first]  # competing, before u
    k = np.searchsorted(risk.time[risk.start], times, side="left")  # failure times < u
    gh = risk.g_fail * hazard
    q = prior[:, 1:] * sums_from(gh)[k][:, None] - prior[:, :1] * sums_from(gh[:, None] * mean)[k]
    drift = np.cumsum(q * (censored / at_risk**2)[:, None], axis=0)
    own = np.where(risk.cens, 1.0 / at_risk[index], 0.0)
    return own[:, None] * q[index] - drift[index]
