"""Score residuals and the robust (sandwich) variance, clustered or per row."""

from __future__ import annotations

import numpy as np

from registry.models.cox.derivs import risk_terms
from registry.models.cox.design import Design


def _score_residuals(des: Design, beta: np.ndarray) -> np.ndarray:
    """Score residuals in sorted row order: event x - mean x, less each row's risk-set shares."""
    p = beta.size
    t = risk_terms(des, beta)
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


def robust_var(
    des: Design, beta: np.ndarray, var_model: np.ndarray, clusters: np.ndarray | None
) -> np.ndarray:
    """Sandwich variance D'D, D the weighted dfbeta residuals summed within cluster."""
    dfbeta = (des.w[:, None] * _score_residuals(des, beta)) @ var_model
    if clusters is not None:
        k = int(clusters.max()) + 1
        dfbeta = np.column_stack([np.bincount(clusters[des.order], c, k) for c in dfbeta.T])
    return dfbeta.T @ dfbeta
