"""Scenario tv-confounding: time-varying confounding of an early treatment decision.

A latent severity S (the patient's latent pain, N(0, 1)) raises the adjacent-fracture hazard
and the VAS and ODI of every visit before treatment (the untreated schedule: days ~3 and ~14,
~6 weeks, ~6 and ~12 months, kept whether or not the patient is treated later). Treatment is
decided from how the patient is doing then: each patient's natural treatment day has a hazard
on days 15-56 that rises with the latest VAS and ODI recorded (a visit on day d counts from
day d + 1, as the weight model's interval starting on day d sees it), a tenth of it up to day
365, and none after; so S acts on treatment only through what the registry records. The
hazard is piecewise constant between visit days, and the natural day inverts its cumulative
hazard at the patient's one exponential draw. Every event time is drawn the same way, so the
same draws give each patient's counterfactual times under any treatment day: the target
trial's true risks come from them exactly.
"""

from __future__ import annotations

import datetime
from typing import Any

import numpy as np
import polars as pl

from registry.constants import DAYS_PER_YEAR
from registry.synth.latent import _linear_predictor, _weibull_time, draw_patients, stage_rng
from registry.synth.params import (
    DEATH_COEF,
    FRACTURE_COEF,
    HAZARD,
    LOSS_PER_YEAR,
    MALE_DEATH_HR,
    NEVER,
    PRO_DECIMALS,
    PRO_SCALE,
    TV_DEATH_HR_TREATED,
    TV_GRACE_DAYS,
    TV_LATE_FACTOR,
    TV_LATE_LAST_DAY,
    TV_SEVERITY_LOG_HR,
    TV_TREAT_COEF,
    TV_TREAT_RATE,
    TV_TREAT_REF,
    TV_TRUTH_PATIENTS,
    TV_TRUTH_YEARS,
    TV_VISIT_DAYS,
    TV_VISIT_NAMES,
    TV_VISIT_PRO,
    WITHDRAW_PER_YEAR,
    Arrays,
)

EARLIEST_TREATMENT = 14  # the natural treatment day is after this day: no procedure before 15


def draw_tv_times(pat: Arrays, seed: int, treatment_hr: float) -> None:
    """Visit scores, the natural treatment day, treatment and the latent event times."""
    rng = stage_rng(seed, 3)
    n = len(pat["age"])
    _draw_visit_scores(pat, stage_rng(seed, 10))
    pat["natural_day"] = natural_day(pat, rng.exponential(size=n))
    pat["t_loss"] = rng.exponential(DAYS_PER_YEAR / -np.log1p(-LOSS_PER_YEAR), n)
    pat["t_withdraw"] = rng.exponential(DAYS_PER_YEAR / -np.log1p(-WITHDRAW_PER_YEAR), n)
    for kind in ("death", "adjacent", "remote", "same"):
        pat[f"e_{kind}"] = rng.exponential(size=n)
    day = pat["natural_day"]
    reached = (day <= TV_LATE_LAST_DAY) & (day < np.minimum(pat["t_loss"], pat["t_withdraw"]))
    pat["t_death"] = _death_time(pat, np.where(reached, day, NEVER))
    pat["treated"] = reached & (pat["t_death"] > day)
    pat["treat_day"] = day
    tau = np.where(pat["treated"], day, NEVER).astype(np.float64)
    pat["t_adjacent"] = _adjacent_time(pat, tau, treatment_hr)
    risk = np.exp(_linear_predictor(pat, FRACTURE_COEF))
    for kind in ("remote", "same"):
        par = HAZARD[kind]
        pat[f"t_{kind}"] = _weibull_time(
            pat[f"e_{kind}"], par["rate"] * risk, par["shape"], tau, 1.0
        )


def _draw_visit_scores(pat: Arrays, rng: np.random.Generator) -> None:
    """(n, 5) days and VAS and ODI of the untreated schedule's visits, following severity."""
    n, severity, k = len(pat["age"]), pat["pain"], len(TV_VISIT_DAYS)
    pat["visit_day"] = np.column_stack([rng.integers(lo, hi + 1, n) for lo, hi in TV_VISIT_DAYS])
    for instrument, (means, slope, sd) in TV_VISIT_PRO.items():
        raw = np.array(means)[None, :] + slope * severity[:, None] + rng.normal(0.0, sd, (n, k))
        score = np.clip(raw, 0.0, PRO_SCALE[instrument])
        pat[f"visit_{instrument.lower()}"] = np.round(score, PRO_DECIMALS[instrument])


def treatment_hazard(pat: Arrays) -> tuple[np.ndarray, np.ndarray]:
    """(n, k + 1) segment bounds (days) and (n, k) treatment hazard per day within each.

    Segments start on day 14, each visit day, the grace period's end and the last treatment
    day; the last segment goes on forever at the hazard of the one before (a time beyond
    TV_LATE_LAST_DAY means never). A segment starting on day s reads the latest visit on or
    before s, so the hazard of day d (the time (d - 1, d]) reads the visits up to day d - 1.
    """
    n = len(pat["age"])
    visits = np.clip(pat["visit_day"], EARLIEST_TREATMENT, TV_LATE_LAST_DAY)
    fixed = np.array([EARLIEST_TREATMENT, TV_GRACE_DAYS, TV_LATE_LAST_DAY], dtype=np.float64)
    starts = np.sort(np.column_stack([np.broadcast_to(fixed, (n, 3)), visits]), axis=1)
    bounds = np.column_stack([starts, np.full(n, np.inf)])
    latest = (pat["visit_day"][:, None, :] <= starts[:, :, None]).sum(axis=2) - 1
    lp = _linear_predictor(pat, TV_TREAT_COEF)[:, None]
    for name in ("vas", "odi"):
        score = np.take_along_axis(pat[f"visit_{name}"], np.maximum(latest, 0), axis=1)
        lp = lp + TV_TREAT_COEF[name] * (score - TV_TREAT_REF[name])
    factor = np.where(starts < TV_GRACE_DAYS, 1.0, TV_LATE_FACTOR)
    return bounds, TV_TREAT_RATE * factor * np.exp(lp)


def natural_day(pat: Arrays, e: np.ndarray) -> np.ndarray:
    """Whole day the patient would be treated on (> 365: never): the day whose cumulative
    treatment hazard first reaches the patient's exponential draw e."""
    bounds, rate = treatment_hazard(pat)
    width = np.diff(bounds, axis=1)
    width[:, -1] = 0.0  # the open last segment: its cumulative hazard is not needed
    cum = np.column_stack([np.zeros(len(e)), np.cumsum(rate * width, axis=1)])
    k = (cum[:, 1:-1] < e[:, None]).sum(axis=1)  # the segment in which e is reached
    at = np.arange(len(e))
    t = bounds[at, k] + (e - cum[at, k]) / rate[at, k]
    day = np.ceil(np.minimum(t, 1e7)).astype(np.int64)
    return np.maximum(day, EARLIEST_TREATMENT + 1)  # e == 0 exactly: the first day allowed


def _death_time(pat: Arrays, tau: np.ndarray) -> np.ndarray:
    """Death as in the default scenario, treated from day tau (which leaves it unchanged)."""
    rate = HAZARD["death"]["rate"] * np.exp(
        _linear_predictor(pat, DEATH_COEF) + np.log(MALE_DEATH_HR) * pat["male"]
    )
    shape = HAZARD["death"]["shape"]
    return _weibull_time(pat["e_death"], rate, shape, tau, TV_DEATH_HR_TREATED)


def _adjacent_time(pat: Arrays, tau: np.ndarray, treatment_hr: float) -> np.ndarray:
    """First adjacent fracture; the hazard rises with severity and is times HR from day tau."""
    severity = TV_SEVERITY_LOG_HR * pat["pain"] - TV_SEVERITY_LOG_HR**2 / 2  # mean factor 1
    rate = HAZARD["adjacent"]["rate"] * np.exp(_linear_predictor(pat, FRACTURE_COEF) + severity)
    return _weibull_time(pat["e_adjacent"], rate, HAZARD["adjacent"]["shape"], tau, treatment_hr)


def strategy_risks(pat: Arrays, treatment_hr: float) -> dict[str, Any]:
    """Counterfactual adjacent-fracture risks at 1, 2, 5 years (death competing) per strategy.

    treat: at the natural day if within the grace period, else at its end; no_treat: never.
    Both reuse the patients' own uniform draws, so they differ only through treatment.
    """
    n = len(pat["age"])
    taus = {
        "treat": np.minimum(pat["natural_day"], TV_GRACE_DAYS).astype(np.float64),
        "no_treat": np.full(n, NEVER),
    }
    strategies = {}
    for name, tau in taus.items():
        adjacent, death = _adjacent_time(pat, tau, treatment_hr), _death_time(pat, tau)
        first = adjacent < death
        strategies[name] = {
            "risk": {
                str(y): float((first & (adjacent <= y * DAYS_PER_YEAR)).sum() / max(n, 1))
                for y in TV_TRUTH_YEARS
            }
        }
    return {
        "strategies": strategies,
        "risk_difference": {
            y: strategies["treat"]["risk"][y] - strategies["no_treat"]["risk"][y]
            for y in strategies["treat"]["risk"]
        },
    }


def tv_truth(pat: Arrays, seed: int, treatment_hr: float, cutoff: datetime.date) -> dict[str, Any]:
    """truth.json's target_trial: the true risks, from an internal draw when the cohort is small."""
    n = len(pat["age"])
    if n >= TV_TRUTH_PATIENTS:
        population, basis = strategy_risks(pat, treatment_hr), "the cohort's own latent draws"
    else:
        big = draw_patients(seed, TV_TRUTH_PATIENTS, cutoff)
        draw_tv_times(big, seed, treatment_hr)
        population = strategy_risks(big, treatment_hr)
        basis = (
            f"an internal draw of {TV_TRUTH_PATIENTS:,} patients (seed {seed}), because the "
            f"cohort of {n:,} is smaller; 'cohort' holds the same risks on the cohort's draws"
        )
    return {
        "grace_days": TV_GRACE_DAYS,
        "outcome": "adjacent",
        "competing_event": "death",
        "years": list(TV_TRUTH_YEARS),
        "days_per_year": DAYS_PER_YEAR,
        **population,
        "basis": basis,
        "cohort": strategy_risks(pat, treatment_hr),
        "treatment_rate_per_day": TV_TREAT_RATE,
        "treatment_scores": "the latest VAS and ODI recorded by the day before",
        "treatment_log_hr": TV_TREAT_COEF,
        "treatment_reference": TV_TREAT_REF,
        "late_treatment_factor": TV_LATE_FACTOR,
        "late_treatment_last_day": TV_LATE_LAST_DAY,
        "severity_log_hr_adjacent": TV_SEVERITY_LOG_HR,
        "visit_days": dict(zip(TV_VISIT_NAMES, (list(r) for r in TV_VISIT_DAYS), strict=True)),
        "visit_pro": {k: [list(m), s, sd] for k, (m, s, sd) in TV_VISIT_PRO.items()},
    }


def tv_latent_columns(pat: Arrays) -> dict[str, pl.Series]:
    """Extra latent columns of this scenario: severity, natural day and the untreated
    schedule's scores (recorded only up to the procedure day for the treated)."""
    day = pat["natural_day"]
    columns = {
        "severity": pl.Series(pat["pain"]),
        "natural_day": pl.Series(np.where(day <= TV_LATE_LAST_DAY, day, -1)).replace(-1, None),
    }
    for k, name in enumerate(TV_VISIT_NAMES):
        for instrument in ("vas", "odi"):
            columns[f"{instrument}_{name}"] = pl.Series(pat[f"visit_{instrument}"][:, k])
    return columns
