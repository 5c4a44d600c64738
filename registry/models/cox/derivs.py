"""Risk-set sums and the Efron log partial likelihood, score and information at beta."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from registry.models.cox.design import Design, by_group

GRAM_ROWS = 65_536  # rows per block of the weighted Gram matrices (blocks stay in cache)


@dataclass(frozen=True)
class Terms:
    """Risk-set and tied-event sums per group, and Efron's sums over the tied events' pieces."""

    eta: np.ndarray
    wr: np.ndarray  # w exp(eta) per (sorted) row
    risk: np.ndarray  # (G, 1 + p) sums of w r [1, x] over the risk set
    tied: np.ndarray  # (G, 1 + p) sums of w r [1, x] over the group's events
    c: np.ndarray  # (G, 6) sums over pieces of log den, 1/den, f/den, 1/den^2, f/den^2, f^2/den^2


def risk_terms(des: Design, beta: np.ndarray) -> Terms:
    """One pass over the rows: risk-set and tied-event sums of w exp(eta) [1, x] at beta."""
    eta = des.x @ beta
    wr = des.w * np.exp(eta)
    acc = des.exits.sums(wr)
    if des.entries is not None:
        acc -= des.entries.sums(wr)
    risk = np.cumsum(acc[::-1], axis=0)[::-1][1:]  # rows with b <= group < a
    # The events of group g are the first d[g] rows of exit bin g + 1.
    g = des.n_groups
    indptr = np.concatenate([[0], np.cumsum(des.d)])
    n_ev = des.ev_pos.size
    ev_op = sparse.csr_matrix((wr[des.ev_pos], np.arange(n_ev), indptr), (g, n_ev))
    tied = ev_op @ des.ev_z
    f = des.frac
    den = risk[des.ev_group, 0] - f * tied[des.ev_group, 0]  # Efron's k-th denominator
    inv, inv2 = 1 / den, den**-2.0
    pieces = [np.log(den), inv, f * inv, inv2, f * inv2, f * f * inv2]
    return Terms(eta, wr, risk, tied, by_group(des.ev_group, np.column_stack(pieces), g))


def information(des: Design, t: Terms, weights: np.ndarray | None = None) -> np.ndarray:
    """The information matrix sum_g q_g I_g, q the group weights (ones: the information).

    I_g = mw_g (S2_g c0_g - E2_g c1_g - outer_g), S2_g / E2_g the sums of w r x x' over the
    risk set / the tied events. Rather than a risk-set sum of x x' per group (a row of p^2
    moments per subject), sum_g q_g mw_g c0_g S2_g is one Gram matrix x' diag(v) x with each
    row's v = w r times the sum of q mw c0 over the groups it is at risk for.
    """
    q = np.ones(des.n_groups) if weights is None else weights
    p = des.x.shape[1]
    s1, e1 = t.risk[:, 1 : 1 + p], t.tied[:, 1 : 1 + p]
    _, c0, c1, c00, c01, c11 = t.c.T
    mw = des.mean_wt * q
    at_risk = np.concatenate([[0.0], np.cumsum(mw * c0)])
    risk_part = _gram(des.x, t.wr * (at_risk[des.a] - at_risk[des.b]))
    ev = des.ev_pos
    tied_part = _gram(des.x[ev], t.wr[ev] * (mw * c1)[des.ev_group])
    cross = s1.T @ (e1 * (mw * c01)[:, None])
    outer = (s1.T * (mw * c00)) @ s1 - cross - cross.T + (e1.T * (mw * c11)) @ e1
    return risk_part - tied_part - outer


def _gram(x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """x' diag(v) x, a block of rows at a time (no n-by-p temporary)."""
    out = np.zeros((x.shape[1], x.shape[1]))
    for lo in range(0, x.shape[0], GRAM_ROWS):
        xs = x[lo : lo + GRAM_ROWS]
        out += (xs.T * v[lo : lo + GRAM_ROWS]) @ xs
    return out


def derivs(des: Design, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Log partial likelihood, score vector and information matrix at beta."""
    t = risk_terms(des, beta)
    ll, u = group_scores(des, t, beta)
    return ll, u.sum(axis=0), information(des, t)


def group_scores(des: Design, t: Terms, beta: np.ndarray) -> tuple[float, np.ndarray]:
    """Log partial likelihood and the per-group score terms (G, p) at beta."""
    p = beta.size
    s1, e1 = t.risk[:, 1 : 1 + p], t.tied[:, 1 : 1 + p]
    c0, c1 = t.c[:, [1]], t.c[:, [2]]
    mw = des.mean_wt[:, None]
    ll = float(des.ev_wx.sum(axis=0) @ beta - des.mean_wt @ t.c[:, 0])
    return ll, des.ev_wx - mw * (s1 * c0 - e1 * c1)
