"""Risk-set sums and the Efron log partial likelihood, score and information at beta."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from registry.models.cox.design import Design, by_group


@dataclass(frozen=True)
class Terms:
    """Risk-set and tied-event sums per group, and Efron's sums over the tied events' pieces."""

    eta: np.ndarray
    risk: np.ndarray  # (G, m) sums of w r z over the risk set
    tied: np.ndarray  # (G, m) sums of w r z over the group's events
    c: np.ndarray  # (G, 6) sums over pieces of log den, 1/den, f/den, 1/den^2, f/den^2, f^2/den^2


def risk_terms(des: Design, beta: np.ndarray) -> Terms:
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
    return Terms(eta, risk, tied, by_group(des.ev_group, np.column_stack(pieces), g))


def group_derivs(des: Design, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Log partial likelihood, and per-group score (G, p) and information (G, q) terms."""
    p = beta.size
    t = risk_terms(des, beta)
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


def derivs(des: Design, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Log partial likelihood, score vector and information matrix at beta."""
    ll, u, info = group_derivs(des, beta)
    return ll, u.sum(axis=0), unpack(info.sum(axis=0), beta.size)


def unpack(tri: np.ndarray, p: int) -> np.ndarray:
    """Symmetric (p, p) matrix from its upper triangle in triu_indices order."""
    out = np.zeros((p, p))
    out[np.triu_indices(p)] = tri
    return out + np.triu(out, 1).T
