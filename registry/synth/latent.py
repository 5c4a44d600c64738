"""Latent patients: baseline covariates, index levels and uncensored event times."""

from __future__ import annotations

import datetime
from typing import Any

import numpy as np
import polars as pl

from registry.constants import DAYS_PER_YEAR
from registry.levels import LEVELS
from registry.synth.params import (
    CENTRE,
    DEATH_COEF,
    DEATH_HR_TREATED,
    EARLY_ADJACENT_SHAPE,
    ENROL_FIRST,
    ENROL_LAST,
    ETIOLOGY,
    ETIOLOGY_P,
    FRACTURE_COEF,
    HAZARD,
    HORIZON_DAYS,
    LEVEL_P,
    LOSS_PER_YEAR,
    MALE_DEATH_HR,
    N_LEVELS_P,
    NEVER,
    PRIOR_P,
    SANDWICH_SHARE,
    SITE_P,
    TREAT_COEF,
    WITHDRAW_PER_YEAR,
    Arrays,
)


def stage_rng(seed: int, stage: int) -> np.random.Generator:
    """An independent random stream per stage, so one stage's draws never shift another's."""
    return np.random.default_rng([seed, stage])


def _truncated_normal(
    rng: np.random.Generator, n: int, mean: float, sd: float, low: float, high: float
) -> np.ndarray:
    """Normal draws, redrawn (not clipped) until inside [low, high]."""
    x = rng.normal(mean, sd, n)
    bad = (x < low) | (x > high)
    while bad.any():
        x[bad] = rng.normal(mean, sd, int(bad.sum()))
        bad = (x < low) | (x > high)
    return x


def last_enrolment(cutoff: datetime.date) -> datetime.date:
    """Enrolment ends on 2024-12-31, or the day before an earlier cut-off."""
    return min(ENROL_LAST, cutoff - datetime.timedelta(days=1))


def draw_patients(seed: int, n: int, cutoff: datetime.date) -> Arrays:
    """Baseline covariates, enrolment and index levels of n patients."""
    rng = stage_rng(seed, 1)
    last = last_enrolment(cutoff)
    t0 = np.datetime64(ENROL_FIRST) + rng.integers(0, (last - ENROL_FIRST).days + 1, n)
    pat: Arrays = {
        "t0": t0.astype("datetime64[D]"),
        "age": np.round(_truncated_normal(rng, n, 73.0, 8.0, 50.0, 95.0)).astype(np.int64),
        "male": rng.random(n) >= 0.78,
        "bmd": np.round(_truncated_normal(rng, n, -2.8, 0.9, -5.5, -1.0), 1),
        "steroids": rng.random(n) < 0.10,
        "prior": rng.choice(len(PRIOR_P), n, p=PRIOR_P),
        "site": rng.choice(len(SITE_P), n, p=SITE_P),
        "pain": rng.normal(0.0, 1.0, n),
        "etiology": rng.choice(len(ETIOLOGY), n, p=ETIOLOGY_P),
    }
    pat["cutoff_day"] = (np.datetime64(cutoff) - pat["t0"]).astype(np.int64)
    pat["position"] = _draw_index_levels(stage_rng(seed, 2), n)
    pat["n_levels"] = (pat["position"] >= 0).sum(axis=1)
    pat["distance"] = _distance_matrix(pat["position"])
    return pat


def _draw_index_levels(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 4) positions of distinct index levels (-1 = none), by sequential Gumbel-max."""
    n_levels = rng.choice(4, n, p=N_LEVELS_P) + 1
    sandwich = (n_levels == 2) & (rng.random(n) < SANDWICH_SHARE)
    with np.errstate(divide="ignore"):
        scores = np.log(LEVEL_P)[None, :] + rng.gumbel(size=(n, len(LEVELS)))
    rows = np.arange(n)
    pos = np.full((n, 4), -1, dtype=np.int64)
    for k in range(4):
        if k == 1:  # two-level patients: a sandwich exactly when drawn as one
            ring = np.abs(np.arange(len(LEVELS))[None, :] - pos[:, :1]) == 2
            keep = np.where(sandwich[:, None], ring, ~ring | (n_levels[:, None] != 2))
            scores = np.where(keep, scores, -np.inf)
        pos[:, k] = scores.argmax(axis=1)
        scores[rows, pos[:, k]] = -np.inf
    pos[np.arange(4)[None, :] >= n_levels[:, None]] = -1
    return pos


def _distance_matrix(position: np.ndarray) -> np.ndarray:
    """(n, 24) distance from every level to the patient's nearest index level."""
    levels = np.arange(len(LEVELS), dtype=np.int16)[None, :]
    dist = np.full((len(position), len(LEVELS)), 99, dtype=np.int16)
    for k in range(position.shape[1]):
        col = position[:, k : k + 1].astype(np.int16)
        dist = np.minimum(dist, np.where(col >= 0, np.abs(levels - col), 99).astype(np.int16))
    return dist


def _linear_predictor(pat: Arrays, coef: dict[str, float]) -> np.ndarray:
    """Centred linear predictor of the baseline covariates."""
    lp = coef.get("const", 0.0) + coef.get("pain", 0.0) * pat["pain"]
    for name, column in (
        ("age", "age"),
        ("bmd", "bmd"),
        ("n_levels", "n_levels"),
        ("steroids", "steroids"),
        ("prior", "prior"),
    ):
        lp = lp + coef.get(name, 0.0) * (pat[column] - CENTRE[name])
    return np.asarray(lp, dtype=np.float64)


def _weibull_time(
    e: np.ndarray, rate: np.ndarray, shape: Any, tau: np.ndarray, hr: Any
) -> np.ndarray:
    """Invert H(t) = rate * t**shape whose hazard is multiplied by hr from day tau on."""
    h_tau = rate * tau**shape
    h = np.where(e < h_tau, e, h_tau + (e - h_tau) / hr)
    return np.asarray((h / rate) ** (1.0 / shape), dtype=np.float64)


def draw_times(pat: Arrays, seed: int, treatment_hr: float, scenario: str) -> None:
    """Treatment and the latent times of death, loss, withdrawal and new fractures."""
    rng = stage_rng(seed, 3)
    n = len(pat["age"])
    intent = rng.random(n) < 1.0 / (1.0 + np.exp(-_linear_predictor(pat, TREAT_COEF)))
    pat["treat_day"] = rng.integers(14, 57, n)
    pat["t_loss"] = rng.exponential(DAYS_PER_YEAR / -np.log1p(-LOSS_PER_YEAR), n)
    pat["t_withdraw"] = rng.exponential(DAYS_PER_YEAR / -np.log1p(-WITHDRAW_PER_YEAR), n)
    reached = intent & (pat["treat_day"] < np.minimum(pat["t_loss"], pat["t_withdraw"]))
    tau = np.where(reached, pat["treat_day"], NEVER)
    death_rate = HAZARD["death"]["rate"] * np.exp(
        _linear_predictor(pat, DEATH_COEF) + np.log(MALE_DEATH_HR) * pat["male"]
    )
    pat["t_death"] = _weibull_time(
        rng.exponential(size=n), death_rate, HAZARD["death"]["shape"], tau, DEATH_HR_TREATED
    )
    pat["treated"] = reached & (pat["t_death"] > pat["treat_day"])
    _draw_fracture_times(pat, rng, treatment_hr, scenario)


def _draw_fracture_times(
    pat: Arrays, rng: np.random.Generator, treatment_hr: float, scenario: str
) -> None:
    """First adjacent, remote and same-level fracture times (treatment acts on adjacent)."""
    n = len(pat["age"])
    risk = np.exp(_linear_predictor(pat, FRACTURE_COEF))
    tau = np.where(pat["treated"], pat["treat_day"], NEVER)
    shape, rate = _adjacent_weibull(pat["treated"], scenario)
    pat["t_adjacent"] = _weibull_time(
        rng.exponential(size=n), rate * risk, shape, tau, treatment_hr
    )
    for kind in ("remote", "same"):
        par = HAZARD[kind]
        pat[f"t_{kind}"] = _weibull_time(
            rng.exponential(size=n), par["rate"] * risk, par["shape"], tau, 1.0
        )


def _adjacent_weibull(treated: np.ndarray, scenario: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-patient adjacent shape and rate; early-adjacent keeps the 5-year cumulative hazard."""
    base = HAZARD["adjacent"]
    if scenario == "default":
        ones = np.ones(len(treated))
        return base["shape"] * ones, base["rate"] * ones
    shape = np.where(treated, EARLY_ADJACENT_SHAPE["treated"], EARLY_ADJACENT_SHAPE["untreated"])
    return shape, base["rate"] * float(HORIZON_DAYS) ** (base["shape"] - shape)


def patient_ids(n: int) -> pl.Series:
    """Pseudonymous ids P0000001, P0000002, ..."""
    return "P" + pl.Series(np.arange(1, n + 1)).cast(pl.String).str.zfill(7)


def with_nulls(values: np.ndarray, blank: np.ndarray) -> np.ndarray:
    """Values as floats with NaN (written as null) where `blank`."""
    return np.where(blank, np.nan, values.astype(np.float64))


def latent_frame(pat: Arrays) -> pl.DataFrame:
    """One row per patient: covariates, treatment and the uncensored times from t0."""
    n = len(pat["age"])
    return pl.DataFrame(
        {
            "patient_id": patient_ids(n),
            "t0": pl.Series(pat["t0"]).cast(pl.Date),
            "cutoff_day": pat["cutoff_day"],
            "age": pat["age"],
            "sex": np.where(pat["male"], "M", "F"),
            "bmd": pat["bmd"],
            "glucocorticoids": pat["steroids"],
            "prior_fractures": pat["prior"],
            "n_levels": pat["n_levels"].astype(np.int64),
            "etiology": pl.Series(ETIOLOGY).gather(pat["etiology"]),
            "treated": pat["treated"],
            "treat_day": pl.Series(
                with_nulls(pat["treat_day"], ~pat["treated"]), nan_to_null=True
            ).cast(pl.Int64),
            **{
                f"t_{k}": pat[f"t_{k}"]
                for k in ("adjacent", "remote", "same", "death", "loss", "withdraw")
            },
        }
    )
