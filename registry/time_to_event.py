"""Time-to-event frames: one row per patient and outcome, (start, stop] rows, landmark. Pure."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from registry import catalogue
from registry.cohort import Cohort, level_position
from registry.study import COVARIATES, Study

CENSORED, EVENT, COMPETING = 0, 1, 2
BASELINE = [*COVARIATES, "site_id", "has_covariates"]  # carried on every analysis row


@dataclass(frozen=True)
class TimeToEvent:
    """The analysis frames of one study, built when read: it holds the cohort's patients and
    their first events only, so a run keeps no frame of every outcome alive (at ten million
    patients those would be some 20 GiB). Read one outcome's frames with `of`."""

    patients: pl.DataFrame  # the cohort's patients (the same frame, not a copy)
    firsts: pl.DataFrame  # patient_id, outcome, event_on, event_level, event_distance, ...
    names: tuple[str, ...]  # the study's outcomes, in order
    landmark_days: int

    @property
    def outcomes(self) -> pl.DataFrame:
        """One row per patient per outcome (ever-treated from t0), in study order."""
        return pl.concat([self._rows(name) for name in self.names])

    @property
    def counting(self) -> pl.DataFrame:
        """(start, stop] rows, treatment time-varying."""
        return counting_process(self.outcomes)

    @property
    def landmark(self) -> pl.DataFrame:
        """Event-free and under follow-up at the landmark."""
        return landmark_rows(self.outcomes, landmark_days=self.landmark_days)

    def frames(self, name: str) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        """One outcome's outcome, counting-process and landmark frames, its rows built once."""
        rows = self._rows(name)
        return rows, counting_process(rows), landmark_rows(rows, landmark_days=self.landmark_days)

    def of(self, name: str) -> TimeToEvent:
        """One outcome's frames: the rows of `name` in each frame of every outcome."""
        return TimeToEvent(self.patients, self.firsts, (name,), self.landmark_days)

    def _rows(self, name: str) -> pl.DataFrame:
        return (
            self.patients.join(
                self.firsts.filter(pl.col("outcome") == name).drop("outcome"),
                on="patient_id",
                how="left",
                maintain_order="left",
            )
            .with_columns(pl.lit(name).alias("outcome"))
            .select(OUTCOME_COLUMNS)
        )


def classify_fractures(fractures: pl.DataFrame, cohort: Cohort) -> pl.DataFrame:
    """New fractures in (t0, end]: distance to the nearest reference level diagnosed on or
    before the fracture, and the sandwich flag (adjacent fractures only)."""
    window = cohort.patients.select("patient_id", "t0", "end_on")
    new = (
        fractures.join(window, on="patient_id")
        .filter(
            (pl.col("detected_on") > pl.col("t0")) & (pl.col("detected_on") <= pl.col("end_on"))
        )
        .with_columns(level_position("level").alias("position"))
        .unique(["patient_id", "level", "detected_on"])
    )
    refs = cohort.reference_levels.rename({"position": "ref", "diagnosed_on": "ref_on"})
    # only the reference levels known when the fracture was found (t0's level always is)
    paired = (
        new.join(refs, on="patient_id")
        .filter(pl.col("ref_on") <= pl.col("detected_on"))
        .with_columns((pl.col("position") - pl.col("ref")).alias("gap"))
    )
    classified = paired.group_by("patient_id", "level", "detected_on", "t0", "position").agg(
        pl.col("gap").abs().min().cast(pl.Int16).alias("distance"),
        ((pl.col("gap") == 1).any() & (pl.col("gap") == -1).any()).alias("between"),
    )
    # sandwich tags adjacent fractures only: a same-level one between two is not
    sandwich = (pl.col("distance") == 1) & pl.col("between")
    return classified.with_columns(sandwich.alias("sandwich")).drop("between")


def first_events(classified: pl.DataFrame, outcomes: tuple[str, ...]) -> pl.DataFrame:
    """The first fracture of each outcome per patient (ties: nearest level, then spine order)."""
    parts = [
        classified.filter(catalogue.outcome(name).selects())
        .sort("patient_id", "detected_on", "distance", "position")
        .group_by("patient_id", maintain_order=True)
        .first()
        .with_columns(pl.lit(name).alias("outcome"))
        for name in outcomes
    ]
    empty = classified.clear().with_columns(pl.lit(None, dtype=pl.String).alias("outcome"))
    return pl.concat([empty, *parts], how="vertical_relaxed")


def first_event_rows(cohort: Cohort, fractures: pl.DataFrame, study: Study) -> pl.DataFrame:
    """The first event of each outcome per patient, as the outcome rows carry it."""
    return first_events(classify_fractures(fractures, cohort), study.outcomes).select(
        "patient_id",
        "outcome",
        pl.col("detected_on").alias("event_on"),
        pl.col("level").alias("event_level"),
        pl.col("distance").alias("event_distance"),
        pl.col("sandwich").alias("event_sandwich"),
    )


def outcome_rows(cohort: Cohort, fractures: pl.DataFrame, study: Study) -> pl.DataFrame:
    """One row per patient per outcome (in study order, then patient order): duration,
    event code (0/1/2), arm, covariates and the event's level."""
    return build_time_to_event(cohort, fractures, study).outcomes


def _event_code() -> pl.Expr:
    has_event = pl.col("event_on").is_not_null()
    code = pl.when(has_event).then(EVENT).when(pl.col("died")).then(COMPETING).otherwise(CENSORED)
    return code.cast(pl.Int8).alias("event")


OUTCOME_COLUMNS = [
    pl.col("patient_id"),
    pl.col("outcome"),
    pl.col("t0"),
    pl.col("end_on"),
    pl.coalesce("event_on", "end_on").alias("exit_on"),
    (pl.coalesce("event_on", "end_on") - pl.col("t0")).dt.total_days().alias("duration_days"),
    _event_code(),
    *(pl.col(c) for c in ("end_reason", "treated", "treat_on", "treat_day", *BASELINE)),
    *(pl.col(c) for c in ("event_level", "event_distance", "event_sandwich")),
]


def counting_process(outcomes: pl.DataFrame) -> pl.DataFrame:
    """(start, stop] rows: untreated until the day of treatment, treated after; event last.

    A row treated part-way is repeated (explode keeps the order, so no sort is needed).
    """
    switch, stop = pl.col("treat_day"), pl.col("duration_days")
    treated_now = switch.is_not_null() & (switch < stop)
    split = treated_now & (switch > 0)
    parts = pl.int_ranges(0, pl.when(split).then(2).otherwise(1), dtype=pl.Int8)
    rows = outcomes.with_columns(parts.alias("__part")).explode("__part")
    before = split & (pl.col("__part") == 0)
    return rows.select(
        "patient_id",
        "outcome",
        *BASELINE,
        pl.when(split & ~before).then(switch).otherwise(0).cast(pl.Int64).alias("start"),
        pl.when(before).then(switch).otherwise(stop).cast(pl.Int64).alias("stop"),
        (treated_now & ~before).cast(pl.Int8).alias("treated"),
        pl.when(before).then(CENSORED).otherwise(pl.col("event")).cast(pl.Int8).alias("event"),
    )


def landmark_rows(outcomes: pl.DataFrame, *, landmark_days: int) -> pl.DataFrame:
    """Patients event-free and under follow-up at the landmark; arm = treated by then."""
    at_risk = outcomes.filter(pl.col("duration_days") > landmark_days)
    treated = pl.col("treat_day").is_not_null() & (pl.col("treat_day") <= landmark_days)
    return at_risk.select(
        "patient_id",
        "outcome",
        (pl.col("duration_days") - landmark_days).alias("duration_days"),
        "event",
        treated.alias("treated"),
        *BASELINE,
    )


def build_time_to_event(cohort: Cohort, fractures: pl.DataFrame, study: Study) -> TimeToEvent:
    """Every analysis frame of the study from the cohort and the new fractures."""
    firsts = first_event_rows(cohort, fractures, study)
    return TimeToEvent(cohort.patients, firsts, study.outcomes, study.landmark_days)
