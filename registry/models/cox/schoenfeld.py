"""Scaled Schoenfeld residuals, as R's cox.zph(fit)$y, and a binned summary of them for the
report's proportional-hazards plots that shows no patient-level value."""

from __future__ import annotations

import numpy as np

from registry.constants import Z95
from registry.models.cox.derivs import derivs, risk_terms
from registry.models.cox.design import Design
from registry.models.cox.inputs import CoxInputError
from registry.models.cox.result import CoxFit
from registry.models.cox.zph import km_transform
from registry.result_types import Binned, SchoenfeldSmooth


def scaled_schoenfeld(fit: CoxFit) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Event times, "km" times and scaled Schoenfeld residuals (events, p) of a fit.

    The three are R's cox.zph(fit, transform = "km") $time, $x and $y: one row per event,
    ordered by stratum, then time (tied events in input order; in reverse input order for
    (start, stop] data, as cox.zph). A residual is beta + (I / d)^-1 r, r the unweighted
    Schoenfeld residual (Efron mean), I the information and d the events, per stratum; NaN
    for a covariate that is constant within the event's stratum.
    """
    des = fit._design
    rows = _zph_order(des)
    raw = _schoenfeld(des, fit.coef)[rows]
    scaled = _scale(des, fit.coef, raw, des.stratum[des.ev_pos[rows]])
    group = des.ev_group[rows]
    return des.group_time[group], km_transform(des)[group], scaled


def scaled_schoenfeld_smooth(
    fit: CoxFit, term: str, *, bins: int = 10, min_events: int = 5
) -> SchoenfeldSmooth:
    """Scaled Schoenfeld residuals of one term in `bins` equal-count bins of event time.

    Per bin: mean event time, mean residual with mean +/- 1.96 SE, and the events; plot them
    against a line at `beta` (a trend means a time-varying effect). Events are split by time
    rank (tied times may straddle a boundary); fewer bins are used when needed so that every
    bin holds at least `min_events` events, so that no value belongs to one patient.
    """
    if term not in fit.names:
        raise CoxInputError(f"term {term!r} is not in the model; its terms are {fit.names}.")
    if bins < 1 or min_events < 2:
        raise ValueError(f"need bins >= 1 and min_events >= 2, not {bins} and {min_events}.")
    j = fit.names.index(term)
    times, _, resid = scaled_schoenfeld(fit)
    keep = np.isfinite(resid[:, j])
    order = np.argsort(times[keep], kind="stable")
    t, r = times[keep][order], resid[keep, j][order]
    k = min(bins, t.size // min_events)
    if k < 1:
        raise CoxInputError(
            f"{t.size} event(s) have a residual for {term}, fewer than min_events "
            f"({min_events}): too few to plot without showing single patients."
        )
    return {**_binned(t, r, np.arange(t.size) * k // t.size, k), "beta": float(fit.coef[j])}


def _binned(t: np.ndarray, r: np.ndarray, which: np.ndarray, k: int) -> Binned:
    """Mean time, mean residual +/- 1.96 SE and count of each bin 0..k-1 of `which`."""
    n = np.bincount(which, minlength=k)
    mean_r = np.bincount(which, r, k) / n
    sd = np.sqrt(np.bincount(which, (r - mean_r[which]) ** 2, k) / (n - 1))
    half = Z95 * sd / np.sqrt(n)
    return {
        "time_days": (np.bincount(which, t, k) / n).tolist(),
        "residual_mean": mean_r.tolist(),
        "residual_lower": (mean_r - half).tolist(),
        "residual_upper": (mean_r + half).tolist(),
        "n": n.tolist(),
    }


def _zph_order(des: Design) -> np.ndarray:
    """Events (indices into ev_pos) in cox.zph's order: groups in (stratum, time) order, ties
    by input row, reversed for (start, stop] data."""
    tie = des.order[des.ev_pos]
    return np.lexsort((tie if des.start is None else -tie, des.ev_group))


def _schoenfeld(des: Design, beta: np.ndarray) -> np.ndarray:
    """Unweighted Schoenfeld residuals x - xbar of the events (ev_pos order), xbar the mean of
    the Efron risk-set means over the tied events' pieces, as R's coxscho and zph1."""
    p = beta.size
    t = risk_terms(des, beta)
    s1, e1 = t.risk[:, 1 : 1 + p], t.tied[:, 1 : 1 + p]
    xbar = (s1 * t.c[:, [1]] - e1 * t.c[:, [2]]) / des.d[:, None]
    return des.x[des.ev_pos] - xbar[des.ev_group]


def _scale(des: Design, beta: np.ndarray, raw: np.ndarray, ev_stratum: np.ndarray) -> np.ndarray:
    """beta + vmean^-1 r per event, vmean = I / d over the covariates varying in its stratum."""
    used = _used(des)
    pair = np.minimum(used[:, :, None], used[:, None, :]).sum(axis=0)
    vmean = derivs(des, beta)[2] / np.where(pair == 0, 1, pair)
    out = np.full_like(raw, np.nan)
    patterns, which = np.unique(used > 0, axis=0, return_inverse=True)
    for k, pattern in enumerate(patterns):  # one pass per set of varying covariates
        rows, cols = np.flatnonzero(which.ravel()[ev_stratum] == k), np.flatnonzero(pattern)
        if cols.size == 0:
            continue
        block = np.ix_(rows, cols)
        out[block] = np.linalg.solve(vmean[np.ix_(cols, cols)], raw[block].T).T
    return out + beta


def _used(des: Design) -> np.ndarray:
    """(strata, p): the events of a stratum for a covariate that varies in it, else 0."""
    s, p = int(des.stratum.max()) + 1, des.x.shape[1]
    if s == 1:  # no strata: plain column extremes (ufunc.at takes seconds on a million rows)
        lo, hi = des.x.min(axis=0, keepdims=True), des.x.max(axis=0, keepdims=True)
    else:
        lo, hi = np.full((s, p), np.inf), np.full((s, p), -np.inf)
        np.minimum.at(lo, des.stratum, des.x)
        np.maximum.at(hi, des.stratum, des.x)
    events = np.bincount(des.stratum[des.ev_pos], minlength=s)
    return np.where(hi > lo, events[:, None], 0)
