"""Clone rows: every eligible patient as a `treat` and a `no_treat` clone, in intervals.

Intervals are weekly during the grace period (treatment is decided then, from the week's
pain and disability) and 4-weekly after it: after the grace period only the `no_treat`
clones can still deviate, procedures are rare and the scores are no longer recorded weekly,
so finer steps add rows without adding information. Each row holds the latest VAS and ODI
recorded on or before its interval's start.
"""

from __future__ import annotations

import polars as pl

from registry.analysis.target_trial import NotEstimable
from registry.study import COVARIATES
from registry.time_to_event import CENSORED

WEEK, LATER_STEP = 7, 28
STRATEGIES = ("treat", "no_treat")
MIN_PATIENTS = 20  # fewer eligible patients than this: too few to weigh two strategies
SCORES = ("VAS", "ODI")


def interval_breaks(grace_days: int, last_day: int) -> list[int]:
    """Interval starts: every week up to the grace period's end, then every 4 weeks."""
    early = list(range(0, grace_days, WEEK))
    return early + list(range(grace_days, max(last_day, grace_days) + 1, LATER_STEP))


def intervals(grace_days: int, last_day: int) -> pl.DataFrame:
    """interval, start, stop, in_grace: the (start, stop] grid covering follow-up."""
    starts = interval_breaks(grace_days, last_day)
    stops = [*starts[1:], max(last_day, starts[-1] + 1)]
    return pl.DataFrame(
        {"interval": range(len(starts)), "start": starts, "stop": stops},
        schema={"interval": pl.Int32, "start": pl.Int64, "stop": pl.Int64},
    ).with_columns((pl.col("stop") <= grace_days).alias("in_grace"))


def eligible(outcome: pl.DataFrame) -> pl.DataFrame:
    """The patients of one outcome's frame with every baseline covariate."""
    return outcome.filter(pl.col("has_covariates")).select(
        "patient_id", "t0", "duration_days", "event", "treat_day", *COVARIATES
    )


def check_cohort(patients: pl.DataFrame, *, grace_days: int) -> NotEstimable | None:
    """The reason the cohort cannot answer the target trial, or None."""
    n = patients.height
    if n < MIN_PATIENTS:
        return NotEstimable(f"too few patients ({n} eligible, at least {MIN_PATIENTS} needed)")
    if patients.get_column("duration_days").max() <= grace_days:  # type: ignore[operator]
        return NotEstimable(f"no follow-up goes beyond the {grace_days}-day grace period")
    adhering = patients.filter(_treated_in_grace(grace_days)).height
    if adhering == 0:
        return NotEstimable(f"nobody was treated within the {grace_days}-day grace period")
    if adhering == n:
        return NotEstimable(f"everybody was treated within the {grace_days}-day grace period")
    return None


def _treated_in_grace(grace_days: int) -> pl.Expr:
    """Treated by the grace period's end and before the clone's exit (an event on the
    procedure day counts as untreated)."""
    day = pl.col("treat_day")
    return day.is_not_null() & (day <= grace_days) & (day < pl.col("duration_days"))


def clone_ends(patients: pl.DataFrame, *, grace_days: int) -> pl.DataFrame:
    """One row per clone: strategy, exit day and event code (0 when censored by deviation)."""
    day, duration = pl.col("treat_day"), pl.col("duration_days")
    deviates_treat = ~_treated_in_grace(grace_days) & (duration > grace_days)
    treat = patients.with_columns(
        pl.lit("treat").alias("strategy"),
        pl.when(deviates_treat).then(grace_days).otherwise(duration).alias("exit_day"),
        pl.when(deviates_treat).then(CENSORED).otherwise(pl.col("event")).alias("exit_event"),
    )
    switched = day.is_not_null() & (day < duration)
    no_treat = patients.with_columns(
        pl.lit("no_treat").alias("strategy"),
        pl.when(switched).then(day).otherwise(duration).alias("exit_day"),
        pl.when(switched).then(CENSORED).otherwise(pl.col("event")).alias("exit_event"),
    )
    both = pl.concat([treat, no_treat])
    clone_id = pl.col("patient_id") + pl.lit(":") + pl.col("strategy")
    return both.with_columns(
        clone_id.alias("clone_id"),
        pl.col("exit_day").cast(pl.Int64),
        pl.col("exit_event").cast(pl.Int8),
    )


def split_rows(ends: pl.DataFrame, grid: pl.DataFrame) -> pl.DataFrame:
    """(start, stop] rows per clone over the grid, the event on the clone's last row."""
    rows = ends.join(grid, how="cross").filter(pl.col("start") < pl.col("exit_day"))
    last = pl.col("stop") >= pl.col("exit_day")
    return rows.with_columns(
        pl.min_horizontal("stop", "exit_day").alias("stop"),
        pl.when(last).then(pl.col("exit_event")).otherwise(CENSORED).cast(pl.Int8).alias("event"),
    ).sort("clone_id", "start")


def latest_scores(rows: pl.DataFrame, assessments: pl.DataFrame) -> pl.DataFrame:
    """rows with vas and odi: the latest score recorded on or before each interval's start."""
    out = rows.with_row_index("__row").with_columns(
        (pl.col("t0") + pl.duration(days=pl.col("start"))).alias("__on")
    )
    for instrument in SCORES:
        scores = (
            assessments.filter(pl.col("instrument") == instrument)
            .select("patient_id", pl.col("assessed_on").alias("__on"), "score")
            .sort("patient_id", "__on")
        )
        out = out.sort("patient_id", "__on").join_asof(
            scores, on="__on", by="patient_id", strategy="backward", check_sortedness=False
        )
        out = out.rename({"score": instrument.lower()})
    return out.sort("__row").drop("__on", "__row")


def build_clones(
    outcome: pl.DataFrame, assessments: pl.DataFrame, *, grace_days: int
) -> pl.DataFrame | NotEstimable:
    """The clone rows of one outcome's frame (see the module docstring), or why not."""
    patients = eligible(outcome)
    reason = check_cohort(patients, grace_days=grace_days)
    if reason is not None:
        return reason
    grid = intervals(grace_days, int(patients.get_column("duration_days").max()))  # type: ignore[arg-type]
    rows = split_rows(clone_ends(patients, grace_days=grace_days), grid)
    return latest_scores(rows, assessments).select(CLONE_COLUMNS)


CLONE_COLUMNS = [
    "clone_id", "patient_id", "strategy", "interval", "start", "stop", "in_grace", "event",
    "t0", "treat_day", "duration_days", *COVARIATES, "vas", "odi",
]  # fmt: skip
