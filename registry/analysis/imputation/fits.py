"""The imputation models' fits and posterior draws, as R's mice makes them.

* Linear regression (mice's `.norm.draw` inside `mice.impute.pmm`): least squares on the
  observed rows, sigma* = sqrt(SSR / chi2(n - p)), beta* = beta_hat + sigma* L z with
  L L' = (X'X)^-1. mice solves by QR and falls back to a ridge (1e-5 x diag X'X) only when
  R'R cannot be inverted; here the aliased columns are dropped first (as R's lm does, in
  column order), so the plain least-squares solution always exists and equals OLS.
* Logistic regression (mice's `logreg`): maximum likelihood by Newton's method, then
  beta* ~ N(beta_hat, (X'WX)^-1). Perfect or quasi-complete separation has no finite
  maximum; mice augments the data with pseudo-observations, here the fit falls back to a
  ridge penalty of one unit of standardised-coefficient precision (a N(0, 1) prior on each
  coefficient scaled by its column's sd; the intercept is free) when Newton does not
  converge, so the draw stays finite.
Both work from the normal-equations matrices so the engine can update them cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import blas
from scipy.special import expit

# A column is aliased when the part of it the earlier columns do not explain has less than
# this share of its sum of squares. R's lm uses 1e-7 on the QR diagonal, i.e. 1e-14 here;
# in the Gram form rounding is squared, so a looser bound is the safe equivalent.
ALIAS_TOLERANCE = 1e-10
MAX_NEWTON = 30
RIDGE_UNITS = 1.0
INTERCEPT_PRECISION = 0.01
# A carried information matrix is reused while each margin X'w (its row of the intercept)
# moved by no more than this share of its Cauchy-Schwarz bound (still_valid)
CARRY_TOLERANCE = 2e-3
MAX_STEP = 10.0  # capped Newton: no coefficient moves by more than this in one step


@dataclass(frozen=True)
class LinearFit:
    """Least squares on the kept columns; `coef` is zero at aliased ones."""

    coef: np.ndarray  # beta_hat, length p (0 at aliased columns)
    kept: np.ndarray  # indices of the columns used
    cov_unscaled: np.ndarray  # (X'X)^-1 of the kept columns
    df: int  # residual degrees of freedom, n - rank (at least 1)


@dataclass(frozen=True)
class Information:
    """An information matrix X'WX (every column), the linear predictor it was taken at and
    its weights' margins X'w (cheap to recompute: what decides whether it may be reused)."""

    matrix: np.ndarray
    eta: np.ndarray
    margins: np.ndarray
    total: float  # sum of the weights w


@dataclass(frozen=True)
class LogisticFit:
    """Maximum likelihood (or ridge-penalised when separated) logistic regression."""

    coef: np.ndarray  # length p (0 at aliased columns)
    kept: np.ndarray
    cov: np.ndarray  # inverse (penalised) information of the kept columns
    converged: bool
    penalised: bool  # True when separation made the ridge fallback necessary
    information: Information | None = None  # the last one evaluated (unpenalised fits)


def kept_columns(gram: np.ndarray) -> np.ndarray:
    """Indices of the columns not aliased with earlier ones (R's lm order rule)."""
    kept: list[int] = []
    for j in range(gram.shape[0]):
        total = gram[j, j]
        if total <= 0:
            continue
        if kept:
            g = gram[np.ix_(kept, kept)]
            c = gram[kept, j]
            left = total - c @ np.linalg.solve(g, c)
        else:
            left = total
        if left > ALIAS_TOLERANCE * total:
            kept.append(j)
    return np.asarray(kept, dtype=np.intp)


def _inverse(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive-definite matrix through its Cholesky factor."""
    factor = np.linalg.cholesky(matrix)
    inv_factor = np.linalg.solve(factor, np.eye(matrix.shape[0]))
    return inv_factor.T @ inv_factor


def gram(x: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """X' diag(w) X by a symmetric rank-k update (half the work of a general product)."""
    scaled = x if weights is None else x * np.sqrt(weights)[:, None]
    if scaled.shape[0] == 0:
        return np.zeros((x.shape[1], x.shape[1]))
    upper = blas.dsyrk(1.0, np.asfortranarray(scaled, dtype=np.float64), trans=1)
    return np.triu(upper) + np.triu(upper, 1).T


def solve_linear(xtx: np.ndarray, xty: np.ndarray, n: int) -> LinearFit:
    """Least squares from X'X and X'y (aliased columns dropped)."""
    kept = kept_columns(xtx)
    cov = _inverse(xtx[np.ix_(kept, kept)]) if kept.size else np.zeros((0, 0))
    coef = np.zeros(xtx.shape[0])
    coef[kept] = cov @ xty[kept]
    return LinearFit(coef=coef, kept=kept, cov_unscaled=cov, df=max(n - kept.size, 1))


def fit_linear(x: np.ndarray, y: np.ndarray) -> tuple[LinearFit, float]:
    """Least squares of y on x (include the intercept column): the fit and its SSR."""
    fit = solve_linear(gram(x), x.T @ y, x.shape[0])
    residuals = y - x @ fit.coef
    return fit, float(residuals @ residuals)


def draw_linear(fit: LinearFit, ssr: float, rng: np.random.Generator) -> np.ndarray:
    """beta* from the posterior of a Bayesian linear regression (mice's .norm.draw)."""
    sigma = np.sqrt(ssr / rng.chisquare(fit.df))
    z = rng.standard_normal(fit.kept.size)
    beta = fit.coef.copy()
    if fit.kept.size:
        beta[fit.kept] += sigma * (_root(fit.cov_unscaled) @ z)
    return beta


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    *,
    start: np.ndarray | None = None,
    tol: float = 1e-10,
    mask: np.ndarray | None = None,
    columns: np.ndarray | None = None,
    chord: float = 0.0,
    information: Information | None = None,
    tol_se: float = 0.0,
) -> LogisticFit:
    """Logistic regression of y (0/1) on the `columns` of x (default: all) by Newton's
    method from `start` (warm start); rows where `mask` is False are left out, and the
    columns aliased with earlier ones. Falls back to a ridge penalty when separated.
    `chord` > 0 reuses the information matrix while the linear predictor moved by no more
    than it (see _newton); 0, the default, is the plain Newton method. `information`, one
    evaluated before (by an earlier fit of the same model), is used as the first one while
    still_valid says so. `tol_se` > 0 also stops Newton once no coefficient moves by more
    than that many of its standard errors."""
    weights = np.ones(x.shape[0]) if mask is None else mask.astype(np.float64)
    x = np.asfortranarray(x, dtype=np.float64)
    begin = np.zeros(x.shape[1]) if start is None else start.astype(np.float64)
    allowed = np.arange(x.shape[1]) if columns is None else columns
    carried = information if chord > 0 else None
    last: Information | None
    beta, kept, cov, converged, last = _newton(
        x, y, weights, begin, allowed, None, (tol, tol_se), chord, carried
    )
    penalised = not converged
    if penalised:
        variance = np.maximum(_column_variance(x, weights), 0.0)
        # the intercept (a constant column) gets a weak N(0, 10^2) prior, so that even a
        # variable observed in one class only has a finite fit
        ridge = np.where(variance > 0, RIDGE_UNITS * variance, INTERCEPT_PRECISION)
        zero = np.zeros(x.shape[1])
        beta, kept, cov, converged, _ = _newton(
            x, y, weights, zero, allowed, ridge, (tol, tol_se), chord, None
        )
        last = None
    return LogisticFit(beta, kept, cov, converged, penalised, last)


def _column_variance(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted variance of each column (0 for the intercept)."""
    total = weights.sum()
    mean = (weights @ x) / total
    return np.asarray((weights @ (x * x)) / total - mean**2)


def _information(
    x: np.ndarray, weights: np.ndarray, eta: np.ndarray, penalty: np.ndarray | None
) -> np.ndarray:
    """X'WX (+ the ridge) at the linear predictor eta, every column."""
    p = expit(eta)
    info = gram(x, weights * p * (1 - p))
    return info + np.diag(penalty) if penalty is not None else info


def _margins(x: np.ndarray, weights: np.ndarray, eta: np.ndarray) -> tuple[np.ndarray, float]:
    """X'w and sum w, w = p(1 - p) on the used rows: the information matrix's row of a
    constant column, one matrix-vector product."""
    p = expit(eta)
    w = weights * p * (1 - p)
    return np.asarray(x.T @ w), float(w.sum())


def still_valid(carried: Information, x: np.ndarray, weights: np.ndarray, eta: np.ndarray) -> bool:
    """Whether an information matrix evaluated earlier (on this model, perhaps on data whose
    other imputed values were redrawn since) may stand for the one at eta: every margin X'w
    moved by no more than CARRY_TOLERANCE of its Cauchy-Schwarz bound
    sqrt(sum w x_j^2 * sum w)."""
    now, _ = _margins(x, weights, eta)
    scale = np.sqrt(np.clip(np.diag(carried.matrix), 0, None) * carried.total)
    change = np.abs(now - carried.margins)
    return bool(np.all(change <= CARRY_TOLERANCE * scale + 1e-300))


def _newton(
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    beta: np.ndarray,
    allowed: np.ndarray,
    penalty: np.ndarray | None,
    tols: tuple[float, float],
    chord: float,
    carried: Information | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool, Information]:
    """Newton's method for the (penalised) log-likelihood; returns beta (0 at the aliased
    columns), the kept columns, the inverse information at beta and whether it converged.

    The information matrix is the costly part (a pass of X'WX over every row); from a warm
    start the first one may be kept for the following steps while the linear predictor
    moved by no more than `chord` (root mean square over the used rows; a chord step still
    converges to the exact maximum, only the rate changes), and it is evaluated again at
    the maximum unless the linear predictor moved by no more than `chord` since. Steps are
    capped at MAX_STEP per coefficient."""
    eta = x @ beta
    kept_from: Information | None
    if carried is not None and still_valid(carried, x, weights, eta):
        info, eta_at, kept_from = carried.matrix, eta, carried
    else:
        info, eta_at, kept_from = _information(x, weights, eta, penalty), eta, None
    kept = allowed[kept_columns(info[np.ix_(allowed, allowed)])]
    if kept.size < allowed.size and np.any(beta[np.setdiff1d(allowed, kept)]):
        beta = np.where(_flags(kept, beta.size), beta, 0.0)
        eta = eta_at = x @ beta
        info = _information(x, weights, eta, penalty)
    ridge = np.zeros(beta.size) if penalty is None else penalty
    beta = beta.copy()
    for _ in range(MAX_NEWTON):
        score = (x.T @ (weights * (y - expit(eta))) - ridge * beta)[kept]
        if _moved(eta, eta_at, weights) > chord:
            info, eta_at, kept_from = _information(x, weights, eta, penalty), eta, None
        try:
            step = np.linalg.solve(info[np.ix_(kept, kept)], score)
        except np.linalg.LinAlgError:
            return beta, kept, np.linalg.pinv(info[np.ix_(kept, kept)]), False, (
                kept_from or _at(x, weights, info, eta_at))  # fmt: skip
        largest = np.max(np.abs(step), initial=0.0)
        beta[kept] += step * min(1.0, MAX_STEP / largest) if largest > 0 else step
        eta = x @ beta
        if _small(step, beta, info[np.ix_(kept, kept)], tols):
            if _moved(eta, eta_at, weights) > chord:
                info, eta_at, kept_from = _information(x, weights, eta, penalty), eta, None
            return beta, kept, _safe_inverse(info[np.ix_(kept, kept)]), True, (
                kept_from or _at(x, weights, info, eta_at))  # fmt: skip
    return beta, kept, _safe_inverse(info[np.ix_(kept, kept)]), False, (
        kept_from or _at(x, weights, info, eta_at))  # fmt: skip


def _at(x: np.ndarray, weights: np.ndarray, matrix: np.ndarray, eta: np.ndarray) -> Information:
    """The information matrix evaluated at eta, with its margins (a reused one keeps the
    margins of its evaluation, so that drift over several reuses is measured in full)."""
    margins, total = _margins(x, weights, eta)
    return Information(matrix=matrix, eta=eta, margins=margins, total=total)


def _small(step: np.ndarray, beta: np.ndarray, info: np.ndarray, tols: tuple[float, float]) -> bool:
    """Newton's stop: no coefficient moved by more than tol (relative), or, with tol_se,
    by more than tol_se of its standard error (from this information matrix)."""
    tol, tol_se = tols
    largest = np.max(np.abs(step), initial=0.0)
    if largest <= tol * (1 + np.max(np.abs(beta), initial=0.0)):
        return True
    if tol_se <= 0 or not step.size:
        return False
    se = np.sqrt(np.clip(np.diag(_safe_inverse(info)), 1e-300, None))
    return bool(np.max(np.abs(step) / se) <= tol_se)


def _moved(eta: np.ndarray, eta_at: np.ndarray, weights: np.ndarray) -> float:
    """Root-mean-square change of the used rows' linear predictor since the information
    matrix was evaluated (0 when it was evaluated here)."""
    if eta is eta_at:
        return 0.0
    total = weights.sum()
    return float(np.sqrt((weights @ (eta - eta_at) ** 2) / total)) if total > 0 else 0.0


def _flags(kept: np.ndarray, p: int) -> np.ndarray:
    flags = np.zeros(p, dtype=bool)
    flags[kept] = True
    return flags


def _safe_inverse(matrix: np.ndarray) -> np.ndarray:
    """Cholesky inverse, or the pseudo-inverse when the matrix is not positive definite."""
    try:
        return _inverse(matrix)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(matrix)


def draw_logistic(fit: LogisticFit, rng: np.random.Generator) -> np.ndarray:
    """beta* ~ N(beta_hat, cov) (mice's logreg)."""
    beta = fit.coef.copy()
    if fit.kept.size:
        beta[fit.kept] += _root(fit.cov) @ rng.standard_normal(fit.kept.size)
    return beta


def _root(cov: np.ndarray) -> np.ndarray:
    """A square root L (L L' = cov): the Cholesky factor, as mice's t(chol(v)), or from the
    eigen-decomposition when rounding left cov not quite positive definite."""
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        vals, vecs = np.linalg.eigh(cov)
        return np.asarray(vecs * np.sqrt(np.clip(vals, 0.0, None)))
