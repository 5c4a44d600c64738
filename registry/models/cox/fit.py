"""fit_cox: Newton-Raphson with step halving as R's agfit4, model-based and robust variance."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import linalg

from registry.models.cox.derivs import derivs
from registry.models.cox.design import Design, Layout, assemble, build_design
from registry.models.cox.inputs import (
    CoxInputError,
    as_matrix,
    check_covariates,
    check_inputs,
    codes,
)
from registry.models.cox.result import CoxFit
from registry.models.cox.robust import robust_var


def fit_cox(
    stop: Any,
    event: Any,
    X: Any,
    *,
    start: Any = None,
    weights: Any = None,
    strata: Any = None,
    cluster: Any = None,
    robust: bool = False,
    names: Any = None,
    tol: float = 1e-9,
    max_iter: int = 50,
) -> CoxFit:
    """Fit a Cox model by Newton-Raphson with step halving, as R's coxph (Efron ties)."""
    # Unlike coxph, non-integer weights do not switch the robust variance on: ask for it.
    if max_iter < 1:
        raise ValueError(f"max_iter must be at least 1, not {max_iter}.")
    x = as_matrix(X)
    names = tuple(names) if names is not None else tuple(f"x{j + 1}" for j in range(x.shape[1]))
    stop_, event_, start_, w = check_inputs(stop, event, start, weights, x, names)
    check_covariates(x, names)
    des = build_design(stop_, event_, x, start_, w, strata)
    clusters = codes(cluster) if cluster is not None else None
    return _fit_design(des, names, tol, max_iter, clusters, robust or cluster is not None)


def fit_layout(
    layout: Layout,
    X: Any,
    *,
    weights: Any = None,
    robust: bool = False,
    names: Any = None,
    tol: float = 1e-9,
    max_iter: int = 50,
) -> CoxFit:
    """fit_cox on rows already laid out (build_layout of their stop, event, start and strata)
    with these covariates and weights: the same fit as fit_cox on those rows, without sorting
    again. Multiple imputation refits one layout with each completed dataset's columns."""
    if max_iter < 1:
        raise ValueError(f"max_iter must be at least 1, not {max_iter}.")
    x = as_matrix(X)
    names = tuple(names) if names is not None else tuple(f"x{j + 1}" for j in range(x.shape[1]))
    w = np.ones(layout.n_rows) if weights is None else np.asarray(weights, dtype=float)
    check_inputs(layout.stop, layout.event, layout.start, w, x, names)
    check_covariates(x, names)
    return _fit_design(assemble(layout, x, w), names, tol, max_iter, None, robust)


def _fit_design(
    des: Design,
    names: tuple[str, ...],
    tol: float,
    max_iter: int,
    clusters: np.ndarray | None,
    use_robust: bool,
) -> CoxFit:
    """Newton-Raphson on a design, then the model-based and (if asked) robust variance."""
    beta, ll, ll0, info, u, it, converged = _newton(des, tol, max_iter, names)
    var_model = _invert(info, names)
    _warn_infinite(u, var_model, beta, tol, names, converged)
    var = robust_var(des, beta, var_model, clusters) if use_robust else var_model
    n = int(clusters.max() + 1) if clusters is not None else int(des.stop.size)
    return CoxFit(
        names, beta, np.sqrt(np.diag(var)), np.sqrt(np.diag(var_model)), use_robust, ll, ll0,
        n, int(des.event.sum()), it, converged, var, var_model, des,
    )  # fmt: skip


def _newton(
    des: Design, tol: float, max_iter: int, names: tuple[str, ...]
) -> tuple[np.ndarray, float, float, np.ndarray, np.ndarray, int, bool]:
    """R's agfit4 iteration: accept a step if the loglik rises, else halve back towards it."""
    beta = np.zeros(des.x.shape[1])
    ll0, u, info = derivs(des, beta)
    best_ll, old = ll0, beta
    beta = beta + _solve(info, u, names)
    halving = 0
    for it in range(1, max_iter + 1):
        ll, u, info = derivs(des, beta)
        ok = np.isfinite(ll) and np.all(np.isfinite(info))
        if ok and halving == 0 and abs(1 - best_ll / ll) <= tol:
            return beta, ll, ll0, info, u, it, True
        if it == max_iter:
            break
        if not ok or ll < best_ll:
            halving += 1
            beta = (old * halving + beta) / (halving + 1)
        else:
            halving, best_ll, old = 0, ll, beta
            beta = beta + _solve(info, u, names)
    warnings.warn(
        f"Cox fit did not converge in {max_iter} iterations (loglik {ll:.6g}); "
        "check for separation or raise max_iter.",
        stacklevel=4,
    )
    return beta, ll, ll0, info, u, max_iter, False


def _solve(info: np.ndarray, u: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Newton step info^-1 u by Cholesky; a singular information matrix is an input error."""
    return linalg.cho_solve(_cholesky(info, names), u)


def _invert(info: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Inverse information matrix (the model-based covariance)."""
    return linalg.cho_solve(_cholesky(info, names), np.eye(info.shape[0]))


def _cholesky(info: np.ndarray, names: tuple[str, ...]) -> tuple[np.ndarray, bool]:
    """Cholesky factor, refusing a matrix that is singular to working precision."""
    try:
        factor = linalg.cho_factor(info)
    except linalg.LinAlgError:
        factor = None
    # R's cholesky2 calls a pivot below eps^0.75 of its diagonal element singular.
    pivots = np.diag(factor[0]) ** 2 if factor is not None else np.zeros(1)
    if factor is None or np.any(pivots <= np.finfo(float).eps ** 0.75 * np.abs(np.diag(info))):
        raise CoxInputError(
            f"the information matrix of ({', '.join(names)}) is singular: a covariate is "
            "constant among those at risk or collinear with others; drop or combine them."
        )
    return factor


def _warn_infinite(
    u: np.ndarray,
    var: np.ndarray,
    beta: np.ndarray,
    tol: float,
    names: tuple[str, ...],
    converged: bool,
) -> None:
    """Warn, as R does, when the loglik converged while a coefficient was still running away."""
    step = np.abs(u @ var)
    bad = ~np.isfinite(u) | (step > np.sqrt(tol) * (1 + np.abs(beta)))
    if converged and np.any(bad):
        which = ", ".join(n for n, b in zip(names, bad, strict=True) if b)
        warnings.warn(
            f"loglik converged before {which}: the coefficient may be infinite (monotone "
            "likelihood, e.g. no events in one group); consider removing or merging it.",
            stacklevel=4,
        )
