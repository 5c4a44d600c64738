"""The cox.zph score test of proportional hazards on R's "km" time scale."""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import stats

from registry.models.cox.derivs import group_scores, information, risk_terms
from registry.models.cox.design import Design
from registry.models.cox.result import CoxFit


def ph_test(fit: CoxFit) -> pl.DataFrame:
    """Score test of proportional hazards per covariate and GLOBAL, as R's cox.zph(fit)."""
    des, p = fit._design, fit.coef.size
    t = risk_terms(des, fit.coef)
    _, u_g = group_scores(des, t, fit.coef)
    gt = _km_time(des)
    info = [information(des, t, gt**k) for k in range(3)]
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


def _km_time(des: Design) -> np.ndarray:
    """cox.zph's 'km' time scale at each event group, centred over the events."""
    ttime = km_transform(des)
    return ttime - ttime @ des.d / des.d.sum()


def km_transform(des: Design) -> np.ndarray:
    """cox.zph's 'km' time scale 1 - S(t-) at each event group (unweighted KM of all rows)."""
    ut, deaths = np.unique(des.stop[des.event], return_counts=True)
    stop_sorted = np.sort(des.stop)
    at_risk = des.stop.size - np.searchsorted(stop_sorted, ut, side="left")
    if des.start is not None:
        at_risk -= des.start.size - np.searchsorted(np.sort(des.start), ut, side="left")
    surv_before = np.concatenate([[1.0], np.cumprod(1 - deaths / at_risk)[:-1]])
    return 1 - surv_before[np.searchsorted(ut, des.group_time)]
