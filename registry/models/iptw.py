"""Propensity scores (statsmodels logistic model), stabilised IPT weights and balance."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import polars as pl
import statsmodels.api as sm

from registry.errors import ModelFitError


@dataclass(frozen=True)
class Propensity:
    """Propensity model, stabilised weights and covariate balance of one analysis frame."""

    names: tuple[str, ...]
    coef: np.ndarray
    score: np.ndarray  # P(treated | X) per row
    weights: np.ndarray  # stabilised: P(A=a) / P(A=a | X)
    weight_summary: dict[str, float]
    balance: pl.DataFrame  # covariate, smd_before, smd_after


def design_matrix(frame: pl.DataFrame, covariates: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """Numeric model matrix of the study covariates (sex as male, booleans as 0/1)."""
    columns, names = [], []
    for name in covariates:
        series = frame.get_column(name)
        if name == "sex":
            columns.append((series == "M").cast(pl.Float64).to_numpy())
            names.append("male")
        else:
            columns.append(series.cast(pl.Float64).to_numpy())
            names.append(name)
    matrix = np.column_stack(columns) if columns else np.empty((frame.height, 0))
    return matrix, names


def fit_propensity(treated: np.ndarray, x: np.ndarray, names: list[str]) -> Propensity:
    """Logistic propensity model, stabilised weights, weight summary and SMDs."""
    if treated.size == 0 or treated.all() or not treated.any():
        raise ModelFitError("propensity model needs patients in both arms")
    design = sm.add_constant(x, has_constant="add")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # perfect-separation warnings are reported via the SMDs
        result = sm.Logit(treated.astype(float), design).fit(disp=False, maxiter=100)
    score = np.clip(np.asarray(result.predict(design)), 1e-6, 1 - 1e-6)
    share = treated.mean()
    weights = np.where(treated, share / score, (1 - share) / (1 - score))
    return Propensity(
        names=tuple(names),
        coef=np.asarray(result.params),
        score=score,
        weights=weights,
        weight_summary=summarise_weights(weights, treated),
        balance=balance_table(x, names, treated, weights),
    )


def summarise_weights(weights: np.ndarray, treated: np.ndarray) -> dict[str, float]:
    """Distribution of the weights and the effective sample size per arm (Kish)."""
    quantiles = np.quantile(weights, [0.0, 0.01, 0.25, 0.5, 0.75, 0.99, 1.0])
    keys = ("min", "p01", "p25", "median", "p75", "p99", "max")
    summary = {k: float(v) for k, v in zip(keys, quantiles, strict=True)}
    summary["mean"] = float(weights.mean())
    for arm, mask in (("treated", treated), ("untreated", ~treated)):
        w = weights[mask]
        summary[f"ess_{arm}"] = float(w.sum() ** 2 / (w**2).sum()) if w.size else 0.0
    return summary


def standardised_difference(x: np.ndarray, treated: np.ndarray, weights: np.ndarray) -> float:
    """Weighted standardised mean difference (pooled SD of the two arms)."""
    return _smd((x[treated], weights[treated]), (x[~treated], weights[~treated]))


def _smd(*arms: tuple[np.ndarray, np.ndarray]) -> float:
    """standardised_difference from each arm's (values, weights), treated first."""
    means, variances = [], []
    for v, w in arms:
        mean = np.average(v, weights=w)
        means.append(mean)
        variances.append(np.average((v - mean) ** 2, weights=w))
    pooled = np.sqrt((variances[0] + variances[1]) / 2)
    return float((means[0] - means[1]) / pooled) if pooled > 0 else 0.0


def balance_table(
    x: np.ndarray, names: list[str], treated: np.ndarray, weights: np.ndarray
) -> pl.DataFrame:
    """Standardised mean differences before and after weighting, per covariate."""
    # Each arm's rows are taken once (columns contiguous), not once per covariate and SMD.
    arms = [(np.ascontiguousarray(x[m].T), weights[m]) for m in (treated, ~treated)]
    rows = [
        (
            name,
            _smd(*((v[i], np.ones_like(w)) for v, w in arms)),
            _smd(*((v[i], w) for v, w in arms)),
        )
        for i, name in enumerate(names)
    ]
    return pl.DataFrame(rows, schema=["covariate", "smd_before", "smd_after"], orient="row")
