"""Rubin's rules for estimates fitted on m completed datasets, as R's mice::pool (3.15).

`rubin` pools one parameter: the mean estimate (qbar), the mean within-imputation variance
(ubar), the between-imputation variance (b, with m - 1 in the denominator), the total
variance t = ubar + (1 + 1/m) b, and from them the relative increase in variance (riv), the
proportion of the variance due to missingness (lambda), the Barnard-Rubin (1999) degrees of
freedom with the complete-data degrees of freedom `dfcom`, and the fraction of missing
information (fmi), each by mice's formulas (mice:::pool.fitlist, mice:::barnard.rubin); the
interval and the two-sided p are from t(df) (mice:::confint.mipo, summary.mipo).
tests/test_imputation_pool.py holds them to R's mice::pool to 1e-8
(tests/reference/mi_pool_reference.R).

`pool_cloglog` pools risks on the complementary log-log scale, where they are closer to
normal than on the probability scale (Marshall et al. 2009, BMC Med Res Methodol 9:57).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

# mice:::barnard.rubin floors lambda here so that b = 0 gives a large but finite df
LAMBDA_FLOOR = 1e-4
# mice's summary.mipo floors the df of the p-value here; the interval uses the same floor
# (mice's qt(., 0) would be NaN: only when all the variance is between imputations)
DF_FLOOR = 1e-3
# risks are clipped into [CLIP, 1 - CLIP] before the complementary log-log
CLIP = 1e-10


@dataclass(frozen=True)
class Pooled:
    """One parameter pooled over m imputations (names as the contract, mice's in comments)."""

    estimate: float  # qbar
    se: float  # sqrt(t)
    within: float  # ubar
    between: float  # b
    total: float  # t
    df: float  # Barnard-Rubin (1999) degrees of freedom with dfcom
    riv: float  # relative increase in variance
    lam: float  # proportion of variance due to missingness (lambda)
    fmi: float  # fraction of missing information, as mice::pool
    m: int
    ci_lower: float
    ci_upper: float
    p: float


def rubin(
    estimates: ArrayLike, variances: ArrayLike, *, dfcom: float = math.inf, level: float = 0.95
) -> Pooled:
    """Pool one parameter's m estimates and their variances by Rubin's rules (mice::pool)."""
    q, u = _checked(estimates, variances, dfcom, level)
    m = q.size
    # deviations from the first estimate: identical estimates give b = 0 exactly, as R's var
    dev = q - q[0]
    qbar, ubar = float(q[0] + dev.mean()), float(u.mean())
    b = float(dev.var(ddof=1))
    t = ubar + (1 + 1 / m) * b
    df = barnard_rubin(m, b, t, dfcom)
    riv = _ratio((1 + 1 / m) * b, ubar)
    lam = _ratio((1 + 1 / m) * b, t)
    fmi = (riv + 2 / (df + 3)) / (riv + 1) if math.isfinite(riv) else 1.0
    se = math.sqrt(t)
    low, high, p = _t_inference(qbar, se, df, level)
    return Pooled(qbar, se, ubar, b, t, df, riv, lam, fmi, m, low, high, p)


def rubin_terms(
    estimates: ArrayLike, variances: ArrayLike, *, dfcom: float = math.inf, level: float = 0.95
) -> tuple[Pooled, ...]:
    """`rubin` for each column of an (m imputations x k terms) array of estimates."""
    q, u = np.asarray(estimates, dtype=float), np.asarray(variances, dtype=float)
    if q.ndim != 2 or q.shape != u.shape:
        raise ValueError(
            f"estimates and variances must be two arrays of the same (m, terms) shape, "
            f"not {q.shape} and {u.shape}."
        )
    return tuple(rubin(q[:, j], u[:, j], dfcom=dfcom, level=level) for j in range(q.shape[1]))


def barnard_rubin(m: int, b: float, t: float, dfcom: float = math.inf) -> float:
    """Barnard-Rubin (1999) adjusted degrees of freedom, as mice:::barnard.rubin."""
    lam = max(_ratio((1 + 1 / m) * b, t), LAMBDA_FLOOR)
    dfold = (m - 1) / lam**2
    if math.isinf(dfcom):
        return dfold
    dfobs = (dfcom + 1) / (dfcom + 3) * dfcom * (1 - lam)
    return dfold * dfobs / (dfold + dfobs)


def cox_dfcom(events: int, n_coef: int) -> float:
    """Complete-data df of a Cox model, as mice 3.15's get.dfcom for a coxph: events - p.

    broom's glance.coxph has no df.residual, so get.dfcom takes its `nobs` branch, which for
    a coxph returns max(model$nevent - length(coef(model)), 1) (survival's nobs.coxph is
    nevent too)."""
    return float(max(events - n_coef, 1))


def pool_cloglog(risks: ArrayLike) -> float:
    """Risks pooled on the complementary log-log scale: 1 - exp(-exp(mean(log(-log(1 - r)))))."""
    r = np.asarray(risks, dtype=float).ravel()
    if r.size == 0 or not np.all(np.isfinite(r)) or np.any((r < 0) | (r > 1)):
        raise ValueError(f"risks must be one or more numbers in [0, 1], not {r.tolist()}.")
    if np.all(r == r[0]):  # identical risks (zeros before the first event, too) pool to it
        return float(r[0])
    clipped = np.clip(r, CLIP, 1 - CLIP)
    pooled = -np.expm1(-np.exp(np.mean(np.log(-np.log1p(-clipped)))))
    return float(np.clip(pooled, r.min(), r.max()))  # the clipping never leaves their range


def _checked(
    estimates: ArrayLike, variances: ArrayLike, dfcom: float, level: float
) -> tuple[np.ndarray, np.ndarray]:
    q = np.asarray(estimates, dtype=float).ravel()
    u = np.asarray(variances, dtype=float).ravel()
    if q.size != u.size or q.size < 2:
        raise ValueError(
            f"Rubin's rules need the estimates and variances of at least 2 imputations, "
            f"not {q.size} estimates and {u.size} variances."
        )
    if not (np.all(np.isfinite(q)) and np.all(np.isfinite(u)) and np.all(u >= 0)):
        raise ValueError("estimates must be finite and variances finite and non-negative.")
    if not (dfcom >= 1) or not (0 < level < 1):
        raise ValueError(f"dfcom must be at least 1 (not {dfcom}), level in (0, 1) ({level}).")
    return q, u


def _ratio(num: float, den: float) -> float:
    """num / den for non-negative variances; 0/0 is 0 (nothing varies), x/0 is inf."""
    if den > 0:
        return num / den
    return math.inf if num > 0 else 0.0


def _t_inference(est: float, se: float, df: float, level: float) -> tuple[float, float, float]:
    """The t(df) interval and two-sided p of est with standard error se."""
    dist = stats.norm if math.isinf(df) else stats.t(max(df, DF_FLOOR))
    if se == 0:
        return est, est, 0.0 if est != 0 else 1.0
    half = float(dist.ppf(0.5 + level / 2)) * se
    p = float(2 * dist.sf(abs(est) / se))
    return est - half, est + half, p
