"""Inverse-probability-of-censoring weights for the clones.

A clone is censored when its patient deviates from the clone's strategy, so both clones'
censoring is driven by one process: treatment initiation. A pooled logistic model (one row
per patient and interval, untreated and under follow-up at the interval's start) gives each
interval's probability of starting treatment from the baseline covariates, the latest VAS
and ODI and time since t0. From it, each clone's probability of remaining uncensored up to
an interval's start:
  * `no_treat`: the product of (1 - p) over the earlier intervals (censored at treatment);
  * `treat`: 1 through the grace period; after it, p of the grace period's last interval
    for a patient still untreated at its start (Maringe et al. 2020), else 1.
Weights are the inverse (unstabilised) and the time-only model's probability over it
(stabilised); both are truncated at a percentile of their own distribution.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl
import statsmodels.api as sm

from registry.analysis.target_trial import NotEstimable
from registry.analysis.target_trial.clones import latest_scores
from registry.errors import ModelFitError
from registry.models.iptw import design_matrix
from registry.study import COVARIATES

TIME_TERMS = ("weeks", "after_grace")


@dataclass(frozen=True)
class ModelFit:
    """A pooled logistic fit: term names and coefficients."""

    names: list[str]
    coef_: np.ndarray


@dataclass(frozen=True)
class Weights:
    """The clone rows with weights, both models and the weight summary."""

    rows: pl.DataFrame  # clone rows + p_den, p_num, w, sw (truncated), w_raw, sw_raw
    denominator: ModelFit
    numerator: ModelFit
    summary: pl.DataFrame  # per strategy and weight: mean, sd, min, p1, p99, max, cap


def initiation_rows(clones: pl.DataFrame, assessments: pl.DataFrame) -> pl.DataFrame:
    """One row per patient and interval at risk of starting treatment, `initiated` 0/1."""
    grid = clones.group_by("interval").agg(  # a clone's last row stops early: take the max
        pl.col("start").first(), pl.col("stop").max(), pl.col("in_grace").first()
    )
    patients = clones.select("patient_id", "t0", "treat_day", "duration_days", *COVARIATES)
    rows = patients.unique("patient_id", maintain_order=True).join(grid, how="cross")
    day, start = pl.col("treat_day"), pl.col("start")
    at_risk_day = pl.when(day < pl.col("duration_days")).then(day)
    untreated = at_risk_day.is_null() | (at_risk_day > start) | (start == 0)
    starts = (at_risk_day <= pl.col("stop")) & ((at_risk_day > start) | (start == 0))
    rows = rows.filter((start < pl.col("duration_days")) & untreated).with_columns(
        starts.fill_null(False).cast(pl.Int8).alias("initiated")
    )
    return latest_scores(rows.sort("patient_id", "interval"), assessments)


def model_frame(rows: pl.DataFrame) -> pl.DataFrame:
    """The model's columns: covariates (sex as male), scores with missing indicators, time."""
    x, names = design_matrix(rows, COVARIATES)
    scores = [
        expr
        for name in ("vas", "odi")
        for expr in (
            pl.col(name).fill_null(0.0).alias(name),
            pl.col(name).is_null().cast(pl.Float64).alias(f"{name}_missing"),
        )
    ]
    return (
        pl.DataFrame(x, schema=names, orient="row")
        .with_columns(rows.select(*scores).get_columns())
        .with_columns(
            (rows.get_column("start") / 7).alias("weeks"),
            (~rows.get_column("in_grace")).cast(pl.Float64).alias("after_grace"),
        )
    )


def usable_terms(frame: pl.DataFrame, terms: list[str]) -> list[str]:
    """Terms that vary and are not linear combinations of the intercept and earlier terms
    (see usable_columns)."""
    matrix = frame.select(pl.col(terms).cast(pl.Float64)).to_numpy()
    return usable_columns(matrix, terms, terms)


def usable_columns(matrix: np.ndarray, names: list[str], terms: list[str]) -> list[str]:
    """Of `terms` (columns of `matrix`, named by `names`), those that vary and are not linear
    combinations of the intercept and earlier terms (a singular design has no unique fit;
    R's glm gives such a term NA): each term is kept when its centred, scaled column keeps
    the Gram matrix of the kept ones well conditioned."""
    # The Gram matrix of every varying, standardised column is formed once, block by block
    # (no standardised copy of millions of rows); each candidate set's Gram matrix is its
    # sub-block. A column varies when its smallest and largest values differ.
    index = np.asarray([names.index(term) for term in terms], dtype=np.int64)
    n = matrix.shape[0]
    if n == 0 or index.size == 0:
        return []
    low, high = _column_range(matrix, index)
    mean = _block_sum(matrix, index, lambda part: part) / n
    spread = np.sqrt(_block_sum(matrix, index, lambda part: (part - mean) ** 2) / n)
    varying = [k for k in range(index.size) if low[k] < high[k] and np.isfinite(spread[k])]
    if not varying:
        return []
    centre, scale = mean[varying], spread[varying]
    gram = _block_gram(matrix, index[varying], centre, scale) / n
    kept: list[int] = []
    for k in range(len(varying)):
        candidate = [*kept, k]
        eigen = np.linalg.eigvalsh(gram[np.ix_(candidate, candidate)])
        if eigen.min() > 1e-9 * eigen.max():
            kept = candidate
    return [terms[varying[k]] for k in kept]


_BLOCK = 65_536  # rows per block of the column sums


def _column_range(matrix: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    low, high = np.full(index.size, np.inf), np.full(index.size, -np.inf)
    for first in range(0, matrix.shape[0], _BLOCK):
        part = matrix[first : first + _BLOCK][:, index]
        low, high = np.minimum(low, part.min(axis=0)), np.maximum(high, part.max(axis=0))
    return low, high


def _block_sum(
    matrix: np.ndarray, index: np.ndarray, term: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    total = np.zeros(index.size)
    for first in range(0, matrix.shape[0], _BLOCK):
        total += term(matrix[first : first + _BLOCK][:, index]).sum(axis=0)
    return total


def _block_gram(
    matrix: np.ndarray, index: np.ndarray, centre: np.ndarray, scale: np.ndarray
) -> np.ndarray:
    gram = np.zeros((index.size, index.size))
    for first in range(0, matrix.shape[0], _BLOCK):
        z = (matrix[first : first + _BLOCK][:, index] - centre) / scale
        gram += z.T @ z
    return gram


def fit_logistic(y: np.ndarray, frame: pl.DataFrame, terms: list[str]) -> ModelFit:
    """Binomial GLM with an intercept, converged tightly enough to match R's glm to 1e-8."""
    design = np.column_stack([np.ones(len(y)), frame.select(terms).to_numpy()])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = sm.GLM(y, design, family=sm.families.Binomial()).fit(tol=1e-14, maxiter=100)
    return ModelFit(["(Intercept)", *terms], np.asarray(result.params))


def predict(fit: ModelFit, frame: pl.DataFrame) -> np.ndarray:
    """Probability of starting treatment in each row's interval."""
    design = np.column_stack([np.ones(frame.height), frame.select(fit.names[1:]).to_numpy()])
    return np.asarray(1.0 / (1.0 + np.exp(-(design @ fit.coef_))))


def active_rows(initiation: pl.DataFrame) -> pl.DataFrame:
    """Rows of the intervals in which somebody started treatment: the model's data. In the
    other intervals the probability is 0 (their rows would only push coefficients towards
    infinity: quasi-separation)."""
    return initiation.filter(pl.col("initiated").max().over("interval") == 1)


def fit_models(initiation: pl.DataFrame) -> tuple[ModelFit, ModelFit, pl.DataFrame]:
    """Denominator (everything) and numerator (time only) models, the rows' probabilities."""
    fitted = active_rows(initiation)
    frame = model_frame(fitted)
    y = fitted.get_column("initiated").to_numpy().astype(float)
    if not 0 < y.sum() < len(y):
        raise ModelFitError("treatment initiation needs intervals with and without a start")
    den = fit_logistic(y, frame, usable_terms(frame, list(frame.columns)))
    num = fit_logistic(y, frame, usable_terms(frame, list(TIME_TERMS)))
    probs = fitted.select("patient_id", "interval").with_columns(
        pl.Series("p_den", predict(den, frame)), pl.Series("p_num", predict(num, frame))
    )
    zero = initiation.join(fitted, on=["patient_id", "interval"], how="anti").select(
        "patient_id", "interval", pl.lit(0.0).alias("p_den"), pl.lit(0.0).alias("p_num")
    )
    return den, num, pl.concat([probs, zero])


def uncensored_factor(p: str, last_grace: int) -> pl.Expr:
    """A clone's probability of staying uncensored through its row's interval."""
    treat = pl.when(pl.col("interval") == last_grace).then(pl.col(p)).otherwise(1.0)
    factor = pl.when(pl.col("strategy") == "treat").then(treat).otherwise(1.0 - pl.col(p))
    return factor.fill_null(1.0)  # no initiation risk (already treated): cannot deviate


def cumulative_weights(clones: pl.DataFrame, probs: pl.DataFrame) -> pl.DataFrame:
    """Unstabilised and stabilised weights: probabilities up to each row's interval start."""
    last_grace = clones.filter(pl.col("in_grace")).get_column("interval").max()
    rows = clones.join(probs, on=["patient_id", "interval"], how="left", maintain_order="left")
    before = {
        p: uncensored_factor(p, int(last_grace))  # type: ignore[arg-type]
        .log()
        .cum_sum()
        .shift(1, fill_value=0.0)
        .over("clone_id", order_by="start")
        .exp()
        for p in ("p_den", "p_num")
    }
    return rows.with_columns(
        (1.0 / before["p_den"]).alias("w_raw"),
        (before["p_num"] / before["p_den"]).alias("sw_raw"),
    )


def truncate(rows: pl.DataFrame, *, percentile: float) -> tuple[pl.DataFrame, dict[str, float]]:
    """Weights capped at the percentile of their own distribution over the clone rows."""
    caps = {
        name: float(np.percentile(rows.get_column(f"{name}_raw").to_numpy(), percentile))
        for name in ("w", "sw")
    }
    capped = rows.with_columns(
        pl.min_horizontal(f"{name}_raw", pl.lit(cap)).alias(name) for name, cap in caps.items()
    )
    return capped, caps


def summarise(rows: pl.DataFrame, caps: dict[str, float]) -> pl.DataFrame:
    """Per strategy and weight (before truncation): mean, sd, min, p1, p99, max, cap."""
    parts = [
        rows.group_by("strategy").agg(
            pl.lit(name).alias("weight"),
            pl.col(f"{name}_raw").mean().alias("mean"),
            pl.col(f"{name}_raw").std().alias("sd"),
            pl.col(f"{name}_raw").min().alias("min"),
            pl.col(f"{name}_raw").quantile(0.01, "linear").alias("p1"),
            pl.col(f"{name}_raw").quantile(0.99, "linear").alias("p99"),
            pl.col(f"{name}_raw").max().alias("max"),
            pl.lit(cap).alias("cap"),
        )
        for name, cap in caps.items()
    ]
    return pl.concat(parts).sort("weight", "strategy")


def censoring_weights(
    clones: pl.DataFrame, assessments: pl.DataFrame, *, percentile: float = 99.0
) -> Weights | NotEstimable:
    """The clones' censoring weights (see the module docstring), or why there are none."""
    initiation = initiation_rows(clones, assessments)
    try:
        den, num, probs = fit_models(initiation)
    except (ModelFitError, np.linalg.LinAlgError, ValueError) as error:
        return NotEstimable(f"the treatment-initiation model could not be fitted: {error}")
    rows, caps = truncate(cumulative_weights(clones, probs), percentile=percentile)
    return Weights(rows, den, num, summarise(rows, caps))
