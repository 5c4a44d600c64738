"""The imputation models' fully observed predictors: treatment, site, death, and each
outcome's event indicator and Nelson-Aalen cumulative hazard at the patient's own time.

White & Royston (2009, Stat Med 28:1982) show that imputing covariates of a Cox model needs
the outcome in the imputation model as the event indicator and the cumulative baseline
hazard H0(T), approximated by the Nelson-Aalen estimate; leaving them out biases the hazard
ratios of the imputed covariates towards the null. Treatment (ever and when) and site enter
because they predict both the covariates and the outcome.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from registry.cohort import Cohort
from registry.study import Study
from registry.time_to_event import EVENT, TimeToEvent

DAYS_PER_YEAR = 365.25


def nelson_aalen_at(durations: np.ndarray, events: np.ndarray) -> np.ndarray:
    """The Nelson-Aalen cumulative hazard at each subject's own time, events at that time
    included (H(t) = sum over event times s <= t of d_s / n_s, n_s = subjects with time >= s)."""
    if durations.size == 0:
        return np.zeros(0)
    times, inverse, counts = np.unique(durations, return_inverse=True, return_counts=True)
    deaths = np.bincount(inverse, weights=events.astype(np.float64), minlength=times.size)
    at_risk = durations.size - np.cumsum(counts) + counts
    return np.asarray(np.cumsum(deaths / at_risk)[inverse])


def site_indicators(site: pl.Series) -> list[pl.Series]:
    """0/1 columns `site_<id>` for every site but the first (sorted; unknown site: 'unknown')."""
    filled = site.cast(pl.String).fill_null("unknown")
    sites = sorted(filled.unique().to_list())
    return [(filled == s).cast(pl.Int8).alias(f"site_{s}") for s in sites[1:]]


def outcome_columns(tte: TimeToEvent, outcome: str, order: pl.DataFrame) -> list[pl.Series]:
    """event_<o> (0/1) and hazard_<o> (Nelson-Aalen over the whole cohort) in `order`."""
    rows = tte.of(outcome).outcomes  # one outcome's rows only, built on read
    events = (rows["event"] == EVENT).to_numpy()
    hazard = nelson_aalen_at(rows["duration_days"].to_numpy(), events)
    frame = pl.DataFrame({
        "patient_id": rows["patient_id"],
        f"event_{outcome}": events.astype(np.int8),
        f"hazard_{outcome}": hazard,
    })  # fmt: skip
    aligned = order.join(frame, on="patient_id", how="left", maintain_order="left")
    return [
        aligned[f"event_{outcome}"].fill_null(0),
        aligned[f"hazard_{outcome}"].fill_null(0.0),
    ]


def auxiliary_frame(cohort: Cohort, tte: TimeToEvent, study: Study) -> pl.DataFrame:
    """One row per eligible patient (cohort order): patient_id, treated, treat_years,
    site_<id>, died, event_<o> and hazard_<o> for every outcome of the study."""
    patients = cohort.patients
    order = patients.select("patient_id")
    treat_years = (pl.col("treat_day").cast(pl.Float64) / DAYS_PER_YEAR).fill_null(0.0)
    base = patients.select(
        "patient_id",
        pl.col("treated").cast(pl.Int8),
        pl.when(pl.col("treated")).then(treat_years).otherwise(0.0).alias("treat_years"),
    )
    died = patients["died"].fill_null(False).cast(pl.Int8).alias("died")
    extra = [*site_indicators(patients["site_id"]), died]
    for outcome in study.outcomes:
        extra += outcome_columns(tte, outcome, order)
    return base.with_columns(extra)
