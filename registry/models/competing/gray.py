"""Gray's test (rho = 0) of equal cumulative incidence across groups (cmprsk::cuminc $Tests)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from registry.errors import ModelFitError
from registry.models.competing.common import Array, Bools, Ints, inputs, shift, sum_by, sums_from


def gray_test(
    time: ArrayLike, status: ArrayLike, group: ArrayLike, *, cause: int = 1
) -> tuple[float, int, float]:
    """Gray's test (rho = 0) of equal CIFs across groups: (statistic, df, p), cuminc's $Tests."""
    t, s, _ = inputs(time, status, None, cause)
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


def _group_table(
    time: Array, status: Ints, group: Ints, n_groups: int, cause: int
) -> tuple[Array, Array, Array]:
    """At each distinct event time and per group: at risk, events of the cause, other events."""
    times, index = np.unique(time, return_inverse=True)
    kind = np.where(status == cause, 1, np.where(status == 0, 0, 2))
    cell = (index * n_groups + group) * 3 + kind
    counts = sum_by(cell, None, times.size * n_groups * 3).reshape(times.size, n_groups, 3)
    at_risk = sums_from(counts.sum(axis=2))[:-1]
    keep = counts[:, :, 1:].sum(axis=(1, 2)) > 0
    return at_risk[keep], counts[keep, :, 1], counts[keep, :, 2]


def _gray_score(at_risk: Array, own: Array, other: Array) -> tuple[Array, Array]:
    """Score and variance of Gray's test: cmprsk's Fortran `crst`, vectorised over times."""
    risk = at_risk > 0
    n = np.where(risk, at_risk, 1.0)
    factor = np.where(risk, (at_risk - own - other) / n, 1.0)
    skm = np.asarray(np.cumprod(factor, axis=0), dtype=np.float64)
    skmm = shift(skm, 1.0)
    f1: Array = np.cumsum(np.where(risk, skmm * own / n, 0.0), axis=0)
    f1m = shift(f1, 0.0)
    t1 = np.where(risk, at_risk / skmm, 0.0)
    tr = t1.sum(axis=1)
    tq = np.where(risk, at_risk * (1 - f1m) / skmm, 0.0).sum(axis=1)
    nd1 = own.sum(axis=1)
    f: Array = np.cumsum(nd1 / tr)
    fm = shift(f, 0.0)
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
