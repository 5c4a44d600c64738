"""Cox proportional hazards in plain NumPy, validated against R's survival::coxph.

Efron ties, counting-process (start, stop] data, case weights, strata, the robust (sandwich)
variance with clusters and the cox.zph score test for proportional hazards. Rows are never
looped over in Python: the rows are sorted once by the index of the last tied-event group
(stratum, time) they are at risk for; every risk-set sum is then one sequential sparse row-sum
per bin followed by a reverse cumulative sum, minus the same for rows not yet entered, and
Efron's correction is summed per group in closed form. tests/test_cox.py compares every
quantity with R (tests/reference/cox_reference.R holds the R calls).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from scipy import linalg, sparse, stats

from registry.errors import ModelFitError


class CoxInputError(ModelFitError, ValueError):
    """Data a Cox model cannot be fitted to: no events, NaN, bad times, singular information."""


@dataclass(frozen=True, eq=False)
class _Bins:
    """Rows grouped into contiguous bins: a sparse row-sum operator over a copy of z."""

    perm: np.ndarray | None  # rows of the design in bin order (None: already in order)
    z: np.ndarray  # design z in bin order
    indptr: np.ndarray  # bin k holds rows indptr[k]:indptr[k+1]

    def sums(self, wr: np.ndarray) -> np.ndarray:
        """Sum of wr * z within every bin, in one sequential pass over z."""
        data = wr if self.perm is None else wr[self.perm]
        shape = (self.indptr.size - 1, data.size)
        return sparse.csr_matrix((data, np.arange(data.size), self.indptr), shape) @ self.z


@dataclass(frozen=True, eq=False)
class _Design:
    """Rows sorted once by (stratum, stop), events first among ties; shared by Newton steps."""

    order: np.ndarray  # original row index of each sorted row
    x: np.ndarray  # covariates, column-centred (n, p)
    z: np.ndarray  # [1, x, x_i x_j for i <= j] (n, m)
    w: np.ndarray  # case weights
    a: np.ndarray  # a row is at risk for the event groups b <= g < a
    b: np.ndarray
    exits: _Bins  # rows binned by a (contiguous after the sort)
    entries: _Bins | None  # rows binned by b; None without delayed entry or strata
    ev_pos: np.ndarray  # positions of the events, in group order
    ev_group: np.ndarray  # event group of each event
    frac: np.ndarray  # Efron fraction k/d of each event within its group
    d: np.ndarray  # events per group
    mean_wt: np.ndarray  # mean case weight of the events of each group (R's meanwt)
    ev_wx: np.ndarray  # (G, p) sum of w x over the events of each group
    group_time: np.ndarray  # event time of each group
    stop: np.ndarray
    start: np.ndarray | None
    event: np.ndarray  # bool

    @property
    def n_groups(self) -> int:
        """Number of distinct (stratum, event time) groups."""
        return int(self.d.size)


@dataclass(frozen=True, eq=False)
class CoxFit:
    """A fitted Cox model; se is robust when robust=True, else model-based."""

    names: tuple[str, ...]
    coef: np.ndarray
    se: np.ndarray
    se_model: np.ndarray
    robust: bool
    loglik: float
    loglik_null: float
    n: int
    events: int
    iterations: int
    converged: bool
    var: np.ndarray  # the covariance behind se
    var_model: np.ndarray  # inverse information
    _design: _Design = field(repr=False)

    def hr(self) -> np.ndarray:
        """Hazard ratios exp(coef)."""
        return np.exp(self.coef)

    def ci(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Wald confidence interval of the hazard ratios."""
        z = stats.norm.ppf(0.5 + level / 2)
        return np.exp(self.coef - z * self.se), np.exp(self.coef + z * self.se)

    def p_values(self) -> np.ndarray:
        """Two-sided Wald p-values of the coefficients."""
        return 2 * stats.norm.sf(np.abs(self.coef / self.se))


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
    x = _as_matrix(X)
    names = tuple(names) if names is not None else tuple(f"x{j + 1}" for j in range(x.shape[1]))
    stop_, event_, start_, w = _check_inputs(stop, event, start, weights, x, names)
    _check_covariates(x, names)
    des = _build_design(stop_, event_, x, start_, w, strata)
    beta, ll, ll0, info, u, it, converged = _newton(des, tol, max_iter, names)
    var_model = _invert(info, names)
    _warn_infinite(u, var_model, beta, tol, names, converged)
    clusters = _codes(cluster) if cluster is not None else None
    use_robust = robust or cluster is not None
    var = _robust_var(des, beta, var_model, clusters) if use_robust else var_model
    n = int(clusters.max() + 1) if clusters is not None else int(stop_.size)
    return CoxFit(
        names, beta, np.sqrt(np.diag(var)), np.sqrt(np.diag(var_model)), use_robust, ll, ll0,
        n, int(event_.sum()), it, converged, var, var_model, des,
    )  # fmt: skip


# --- input checks ---------------------------------------------------------------------------


def _as_matrix(X: Any) -> np.ndarray:
    """Covariates as a float (n, p) array."""
    x = np.asarray(X, dtype=float)
    return x.reshape(-1, 1) if x.ndim == 1 else x


def _check_inputs(
    stop: Any, event: Any, start: Any, weights: Any, x: np.ndarray, names: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """Validate lengths, NaN, times, events and weights; return clean float/bool arrays."""
    stop_ = np.asarray(stop, dtype=float)
    ev = np.asarray(event, dtype=float)
    start_ = None if start is None else np.asarray(start, dtype=float)
    w = np.ones_like(stop_) if weights is None else np.asarray(weights, dtype=float)
    arrays = {"stop": stop_, "event": ev, "weights": w, "X": x}
    if start_ is not None:
        arrays["start"] = start_
    _check_lengths(arrays, len(names))
    for label, arr in arrays.items():
        if (bad := int(np.count_nonzero(~np.isfinite(arr)))) > 0:
            raise CoxInputError(f"{bad} value(s) of {label} are NaN or infinite; drop those rows.")
    _check_times(stop_, start_)
    if not np.all((ev == 0) | (ev == 1)):
        raise CoxInputError("event must be 0/1 (or boolean).")
    if np.any(w < 0):
        raise CoxInputError(f"{int(np.sum(w < 0))} weight(s) are negative; weights must be >= 0.")
    if not np.any((ev == 1) & (w > 0)):
        raise CoxInputError(f"no events among {stop_.size} rows: a Cox model needs at least one.")
    return stop_, ev == 1, start_, w


def _check_lengths(arrays: dict[str, np.ndarray], p: int) -> None:
    """Every input has one entry per row and X has one column per name."""
    n = arrays["stop"].size
    for label, arr in arrays.items():
        if arr.shape[0] != n or (arr.ndim != 1 and label != "X"):
            raise CoxInputError(f"{label} has shape {arr.shape}; expected {n} rows like stop.")
    if arrays["X"].shape[1] != p:
        raise CoxInputError(f"X has {arrays['X'].shape[1]} columns but {p} names were given.")


def _check_times(stop: np.ndarray, start: np.ndarray | None) -> None:
    """Durations must be positive: stop >= 0, and stop > start for (start, stop] rows."""
    if start is None and (bad := int(np.sum(stop < 0))) > 0:
        raise CoxInputError(f"{bad} row(s) have a negative duration (stop < 0).")
    if start is not None and (bad := int(np.sum(stop <= start))) > 0:
        raise CoxInputError(f"{bad} row(s) have stop <= start: intervals must have length > 0.")


def _check_covariates(x: np.ndarray, names: tuple[str, ...]) -> None:
    """A constant covariate makes the information matrix singular."""
    if x.shape[0] == 0:
        return
    const = [name for j, name in enumerate(names) if np.all(x[:, j] == x[0, j])]
    if const:
        raise CoxInputError(
            f"covariate(s) {', '.join(const)} are constant: the information matrix is singular; "
            "drop them from the model."
        )


def _codes(labels: Any) -> np.ndarray:
    """Integer codes 0..k-1 of any labels (strata, cluster ids)."""
    return np.unique(np.asarray(labels), return_inverse=True)[1].ravel()


# --- the sorted-once design -------------------------------------------------------------------


def _build_design(
    stop: np.ndarray,
    event: np.ndarray,
    x: np.ndarray,
    start: np.ndarray | None,
    w: np.ndarray,
    strata: Any,
) -> _Design:
    """Map each row to the event groups it is at risk for; sort once by that group index."""
    a, b, group_time = _group_index(stop, event, start, strata)
    g = group_time.size
    order = _stable_order(2 * a + ~event, 2 * g + 2)  # by group, events first in each bin
    w, ev, a, b = w[order], event[order], a[order], b[order]
    xc = np.take(x, order, axis=0)
    xc -= xc.mean(axis=0) if xc.shape[0] else 0.0
    z = _moments(xc)
    ev_pos = np.flatnonzero(ev)
    ev_group = a[ev_pos] - 1
    d = np.bincount(ev_group, minlength=g)
    rank = np.arange(ev_pos.size) - (np.cumsum(d) - d)[ev_group]
    return _Design(
        order, xc, z, w, a, b, _bins(a, z, g + 1), _bins(b, z, g + 1) if np.any(b) else None,
        ev_pos, ev_group, rank / d[ev_group], d, np.bincount(ev_group, w[ev_pos], g) / d,
        _by_group(ev_group, w[ev_pos, None] * xc[ev_pos], g), group_time, stop, start, event,
    )  # fmt: skip


def _moments(x: np.ndarray) -> np.ndarray:
    """The columns [1, x, x_i x_j for i <= j] whose weighted sums give loglik derivatives."""
    p = x.shape[1]
    z = np.empty((x.shape[0], 1 + p + p * (p + 1) // 2))
    z[:, 0] = 1.0
    z[:, 1 : 1 + p] = x
    for k, (i, j) in enumerate(zip(*np.triu_indices(p), strict=True)):
        np.multiply(x[:, i], x[:, j], out=z[:, 1 + p + k])
    return z


def _group_index(
    stop: np.ndarray, event: np.ndarray, start: np.ndarray | None, strata: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Number of event groups (stratum, time) up to each row's stop (a) and start (b)."""
    ut = np.unique(stop[event])
    ka = np.searchsorted(ut, stop, side="right")
    kb = np.zeros_like(ka) if start is None else np.searchsorted(ut, start, side="right")
    if strata is None:  # every event time is a group
        return ka, kb, ut
    base = _codes(strata).astype(np.int64) * (ut.size + 1)
    # Group key s*(K+1) + k + 1 for event time ut[k]; a row's key counts groups <= its time.
    gkeys = np.unique(base[event] + ka[event])
    a = np.searchsorted(gkeys, base + ka, side="right")
    b = np.searchsorted(gkeys, base + kb, side="right")
    return a, b, ut[(gkeys % (ut.size + 1)) - 1]


def _stable_order(key: np.ndarray, bound: int) -> np.ndarray:
    """Stable argsort of non-negative integer keys below bound (radix sort when they fit)."""
    dtype = np.uint16 if bound <= 2**16 else np.int64
    return np.argsort(key.astype(dtype), kind="stable")


def _bins(key: np.ndarray, z: np.ndarray, n_bins: int) -> _Bins:
    """Bin rows by an integer key, copying z into key order only when it is not sorted."""
    indptr = np.concatenate([[0], np.cumsum(np.bincount(key, minlength=n_bins))])
    if key.size < 2 or np.all(key[1:] >= key[:-1]):
        return _Bins(None, z, indptr)
    perm = _stable_order(key, n_bins)
    return _Bins(perm, z[perm], indptr)


def _by_group(group: np.ndarray, v: np.ndarray, g: int) -> np.ndarray:
    """Sum the rows of v within groups (G, m)."""
    cols = [np.bincount(group, v[:, j], g) for j in range(v.shape[1])]
    return np.column_stack(cols) if cols else np.zeros((g, 0))


@dataclass(frozen=True)
class _Terms:
    """Risk-set and tied-event sums per group, and Efron's sums over the tied events' pieces."""

    eta: np.ndarray
    risk: np.ndarray  # (G, m) sums of w r z over the risk set
    tied: np.ndarray  # (G, m) sums of w r z over the group's events
    c: np.ndarray  # (G, 6) sums over pieces of log den, 1/den, f/den, 1/den^2, f/den^2, f^2/den^2


def _terms(des: _Design, beta: np.ndarray) -> _Terms:
    """One pass over the rows: risk-set and tied-event sums of w exp(eta) z at beta."""
    eta = des.x @ beta
    wr = des.w * np.exp(eta)
    acc = des.exits.sums(wr)
    if des.entries is not None:
        acc -= des.entries.sums(wr)
    risk = np.cumsum(acc[::-1], axis=0)[::-1][1:]  # rows with b <= group < a
    # The events of group g are the first d[g] rows of exit bin g + 1.
    g, n = des.n_groups, wr.size
    indptr = np.concatenate([[0], np.cumsum(des.d)])
    ev_op = sparse.csr_matrix((wr[des.ev_pos], des.ev_pos, indptr), (g, n))
    tied = ev_op @ des.z
    f = des.frac
    den = risk[des.ev_group, 0] - f * tied[des.ev_group, 0]  # Efron's k-th denominator
    inv, inv2 = 1 / den, den**-2.0
    pieces = [np.log(den), inv, f * inv, inv2, f * inv2, f * f * inv2]
    return _Terms(eta, risk, tied, _by_group(des.ev_group, np.column_stack(pieces), g))


def _group_derivs(des: _Design, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Log partial likelihood, and per-group score (G, p) and information (G, q) terms."""
    p = beta.size
    t = _terms(des, beta)
    s1, e1 = t.risk[:, 1 : 1 + p], t.tied[:, 1 : 1 + p]
    s2, e2 = t.risk[:, 1 + p :], t.tied[:, 1 + p :]
    _, c0, c1, c00, c01, c11 = (t.c[:, [k]] for k in range(6))
    mw = des.mean_wt[:, None]
    ll = float(des.ev_wx.sum(axis=0) @ beta - des.mean_wt @ t.c[:, 0])
    iu, ju = np.triu_indices(p)
    cross = s1[:, iu] * e1[:, ju] + e1[:, iu] * s1[:, ju]
    outer = s1[:, iu] * s1[:, ju] * c00 - cross * c01 + e1[:, iu] * e1[:, ju] * c11
    info = mw * (s2 * c0 - e2 * c1 - outer)
    return ll, des.ev_wx - mw * (s1 * c0 - e1 * c1), info


def _derivs(des: _Design, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Log partial likelihood, score vector and information matrix at beta."""
    ll, u, info = _group_derivs(des, beta)
    return ll, u.sum(axis=0), _unpack(info.sum(axis=0), beta.size)


def _unpack(tri: np.ndarray, p: int) -> np.ndarray:
    """Symmetric (p, p) matrix from its upper triangle in triu_indices order."""
    out = np.zeros((p, p))
    out[np.triu_indices(p)] = tri
    return out + np.triu(out, 1).T


# --- Newton-Raphson ---------------------------------------------------------------------------


def _newton(
    des: _Design, tol: float, max_iter: int, names: tuple[str, ...]
) -> tuple[np.ndarray, float, float, np.ndarray, np.ndarray, int, bool]:
    """R's agfit4 iteration: accept a step if the loglik rises, else halve back towards it."""
    beta = np.zeros(des.x.shape[1])
    ll0, u, info = _derivs(des, beta)
    best_ll, old = ll0, beta
    beta = beta + _solve(info, u, names)
    halving = 0
    for it in range(1, max_iter + 1):
        ll, u, info = _derivs(des, beta)
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
        stacklevel=3,
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
            stacklevel=3,
        )


# --- robust variance --------------------------------------------------------------------------


def score_residuals(fit: CoxFit) -> np.ndarray:
    """Per-row score residuals (n, p), unweighted, as R's residuals(fit, type='score')."""
    des = fit._design
    out = np.empty_like(des.x)
    out[des.order] = _score_residuals(des, fit.coef)
    return out


def _score_residuals(des: _Design, beta: np.ndarray) -> np.ndarray:
    """Score residuals in sorted row order: event x - mean x, less each row's risk-set shares."""
    p = beta.size
    t = _terms(des, beta)
    s1, e1 = t.risk[:, 1 : 1 + p], t.tied[:, 1 : 1 + p]
    _, c0, c1, c00, c01, c11 = (t.c[:, [k]] for k in range(6))
    mw = des.mean_wt[:, None]
    # Hazard increments h = mw/den and h * xbar summed over each group's Efron pieces; tied
    # events are at risk with weight (1 - f) in piece f, hence the "own" version for them.
    tot = np.hstack([mw * c0, mw * (s1 * c00 - e1 * c01)])
    own = np.hstack([mw * (c0 - c1), mw * (s1 * (c00 - c01) - e1 * (c01 - c11))])
    cum = np.vstack([np.zeros((1, 1 + p)), np.cumsum(tot, axis=0)])
    acc = cum[des.a] - cum[des.b]  # sums over the groups each row is at risk for
    g, ev = des.ev_group, des.ev_pos
    acc[ev] += own[g] - tot[g]
    resid = -np.exp(t.eta)[:, None] * (des.x * acc[:, :1] - acc[:, 1:])
    xbar_mean = (s1 * c0 - e1 * c1) / des.d[:, None]
    resid[ev] += des.x[ev] - xbar_mean[g]
    return resid


def _robust_var(
    des: _Design, beta: np.ndarray, var_model: np.ndarray, clusters: np.ndarray | None
) -> np.ndarray:
    """Sandwich variance D'D, D the weighted dfbeta residuals summed within cluster."""
    dfbeta = (des.w[:, None] * _score_residuals(des, beta)) @ var_model
    if clusters is not None:
        k = int(clusters.max()) + 1
        dfbeta = np.column_stack([np.bincount(clusters[des.order], c, k) for c in dfbeta.T])
    return dfbeta.T @ dfbeta


# --- proportional hazards test ----------------------------------------------------------------


def ph_test(fit: CoxFit) -> pl.DataFrame:
    """Score test of proportional hazards per covariate and GLOBAL, as R's cox.zph(fit)."""
    des, p = fit._design, fit.coef.size
    _, u_g, i_g = _group_derivs(des, fit.coef)
    gt = _km_time(des)
    info = [_unpack(i_g.T @ gt**k, p) for k in range(3)]
    imat = np.block([[info[0], info[1]], [info[1], info[2]]])
    u = np.concatenate([np.zeros(p), u_g.T @ gt])
    chisq = [_score_stat(imat, u, [*range(p), p + j]) for j in range(p)]
    chisq.append(_score_stat(imat, u, list(range(2 * p))))
    df = [1] * p + [p]
    return pl.DataFrame(
        {"term": [*fit.names, "GLOBAL"], "chisq": chisq, "df": df, "p": stats.chi2.sf(chisq, df)}
    )


def _score_stat(imat: np.ndarray, u: np.ndarray, keep: list[int]) -> float:
    """Score statistic u' I^-1 u on a subset of the augmented model's parameters."""
    sub = np.ix_(keep, keep)
    return float(u[keep] @ np.linalg.solve(imat[sub], u[keep]))


def _km_time(des: _Design) -> np.ndarray:
    """cox.zph's 'km' time scale, 1 - S(t-), at each event group, centred over the events."""
    ut, deaths = np.unique(des.stop[des.event], return_counts=True)
    stop_sorted = np.sort(des.stop)
    at_risk = des.stop.size - np.searchsorted(stop_sorted, ut, side="left")
    if des.start is not None:
        at_risk -= des.start.size - np.searchsorted(np.sort(des.start), ut, side="left")
    surv_before = np.concatenate([[1.0], np.cumprod(1 - deaths / at_risk)[:-1]])
    ttime = 1 - surv_before[np.searchsorted(ut, des.group_time)]
    return ttime - ttime @ des.d / des.d.sum()
