"""A plain pandas build of the time-to-event frames, timed against the package's Polars build.

Usage: .venv/bin/python benchmarks/tte_pandas.py --db PATH [--repeats N] [--json OUT]
       [--study FILE]

The pandas side is what a competent analyst would write with pandas alone: read the six
registry tables (only the columns used) with DuckDB into pandas (`.df()`: object strings,
datetime64), then merges, groupby aggregations and boolean masks, vectorised, no Python
loop over patients. It does the same work as `registry tte` (registry.cohort.read_registry,
build_cohort and registry.time_to_event.build_time_to_event): per-patient facts, end of
follow-up, treatment, the eligibility rules with the attrition table, the data-policy
counts, then for every outcome of the study the outcome frame (duration, event: 1 the
outcome, 2 death first, 0 censored), the (start, stop] counting-process frame with
time-varying treatment and the landmark frame.

Both sides are run alternately (pandas first on odd repeats, ours first on even ones) in
this process and timed with time.perf_counter; the medians of --repeats are reported.
"read" includes opening the DuckDB file. Ours' read runs the cohort SQL
(sql/queries/cohort/*.sql, aggregating in DuckDB) and the two after-death checks; pandas'
read is plain SELECTs and its build does that aggregation itself, so compare the totals
for the whole job and read/build for where the time goes. Peak RSS above the start of each
phase is sampled from /proc/self/statm every 5 ms (Linux; left out elsewhere).

The frames of the last repeat are compared (outcomes, counting, landmark, attrition, data
policy; every column, as sets of rows, so sorted order does not matter): the number of
rows found in only one of the two is reported and any mismatch exits with status 1.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from contextlib import closing, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import polars as pl
from rich.console import Console
from rich.table import Table

from registry.cohort import RULES, Cohort, RegistryFrames, build_cohort, read_registry
from registry.db import connect
from registry.levels import POSITION
from registry.study import Study, load_study
from registry.time_to_event import BASELINE, TimeToEvent, build_time_to_event

# Only the columns the build uses; the analyst's SELECTs, no aggregation in SQL.
COLUMNS = {
    "patients": "patient_id, site_id, sex, birth_year, bmd_t_score, glucocorticoids, "
    "prior_vertebral_fractures",
    "index_fractures": "patient_id, level, diagnosed_on, etiology",
    "procedures": "patient_id, level, performed_on, procedure",
    "fractures": "patient_id, level, detected_on",
    "follow_up": "patient_id, contact_on, status",
    "assessments": "patient_id, assessed_on",
}
OUTCOME_MASKS: dict[str, Callable[[pd.DataFrame], pd.Series]] = {
    "adjacent": lambda f: f["distance"] == 1,
    "remote": lambda f: f["distance"] >= 2,
    "same_level": lambda f: f["distance"] == 0,
    "any_new": lambda f: pd.Series(True, index=f.index),
}
OUTCOME_COLUMNS = [
    "patient_id",
    "outcome",
    "t0",
    "end_on",
    "exit_on",
    "duration_days",
    "event",
    "end_reason",
    "treated",
    "treat_on",
    "treat_day",
    *BASELINE,
    "event_level",
    "event_distance",
    "event_sandwich",
]


@dataclass
class PandasFrames:
    """The pandas build's outputs, named like the package's export files."""

    outcomes: pd.DataFrame
    counting: pd.DataFrame
    landmark: pd.DataFrame
    attrition: pd.DataFrame
    policy: pd.DataFrame


# --- the pandas baseline -------------------------------------------------------------------


def read_tables(con: duckdb.DuckDBPyConnection) -> dict[str, pd.DataFrame]:
    """The registry tables the build needs, as pandas frames."""
    return {name: con.sql(f"SELECT {cols} FROM {name}").df() for name, cols in COLUMNS.items()}


def patient_facts(t: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per registered patient (index patient_id): t0, counts, death, loss, last contact."""
    idx, proc, fu = t["index_fractures"], t["procedures"], t["follow_up"]
    osteo = idx["etiology"] == "osteoporotic"
    index_facts = (
        idx.assign(osteo_on=idx["diagnosed_on"].where(osteo), other=~osteo)
        .groupby("patient_id")
        .agg(
            t0=("osteo_on", "min"),
            n_other_etiology=("other", "sum"),
            n_index_levels=("level", "size"),
        )
    )
    first_procedure = proc.groupby("patient_id")["performed_on"].min().rename("first_procedure_on")
    deaths = (
        fu[fu["status"] == "dead"]
        .groupby("patient_id")["contact_on"]
        .agg(death_on="min", n_death_dates="nunique")
    )
    ended = (
        fu[fu["status"].isin(["withdrawn", "lost"])]
        .sort_values("contact_on")
        .drop_duplicates("patient_id")
        .set_index("patient_id")
        .rename(columns={"contact_on": "ended_on", "status": "ended_status"})
    )
    latest = [
        fu.groupby("patient_id")["contact_on"].max(),
        t["assessments"].groupby("patient_id")["assessed_on"].max(),
        proc.groupby("patient_id")["performed_on"].max(),
        t["fractures"].groupby("patient_id")["detected_on"].max(),
    ]
    last_contact = pd.concat(latest, axis=1).max(axis=1).rename("last_contact_on")
    facts = t["patients"].set_index("patient_id")
    facts = facts.join([index_facts, first_procedure, deaths, ended, last_contact], how="left")
    counts = ["n_other_etiology", "n_index_levels", "n_death_dates"]
    facts[counts] = facts[counts].fillna(0).astype("int64")
    return facts


def follow_up_end(facts: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
    """End of follow-up: death; else withdrawal/loss; else last contact; capped at the horizon."""
    cap = facts["t0"] + pd.Timedelta(days=horizon_days)
    raw_end = facts["death_on"].fillna(facts["ended_on"]).fillna(facts["last_contact_on"])
    capped = raw_end > cap  # False where either side is NaT (no t0: never capped)
    facts["end_on"] = raw_end.mask(capped, cap)
    facts["end_reason"] = np.select(
        [capped, facts["death_on"].notna(), facts["ended_on"].notna(), raw_end.notna()],
        ["administrative", "death", facts["ended_status"], "last_contact"],
        default=None,
    )
    facts["duration_days"] = (facts["end_on"] - facts["t0"]).dt.days
    facts["died"] = facts["end_reason"] == "death"
    return facts


def add_treatment(facts: pd.DataFrame, t: dict[str, pd.DataFrame], study: Study) -> pd.DataFrame:
    """First study procedure at an index level with t0 <= performed_on < end_on."""
    proc = t["procedures"]
    at_index = proc[proc["procedure"].isin(study.treatment_procedures)].merge(
        t["index_fractures"][["patient_id", "level"]], on=["patient_id", "level"]
    )
    at_index = at_index.merge(facts[["t0", "end_on"]], left_on="patient_id", right_index=True)
    inside = (at_index["performed_on"] >= at_index["t0"]) & (
        at_index["performed_on"] < at_index["end_on"]
    )
    facts["treat_on"] = at_index[inside].groupby("patient_id")["performed_on"].min()
    facts["treated"] = facts["treat_on"].notna()
    facts["treat_day"] = (facts["treat_on"] - facts["t0"]).dt.days
    facts["age"] = facts["t0"].dt.year - facts["birth_year"]
    facts["has_covariates"] = facts[list(study.covariates)].notna().all(axis=1)
    return facts


def eligibility(facts: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Apply the rules in order; (eligible patients sorted by id, attrition table)."""
    breaks = {
        "non_osteoporotic_index_fracture": facts["n_other_etiology"] > 0,
        "no_osteoporotic_index_fracture": facts["t0"].isna(),
        "procedure_before_t0": facts["first_procedure_on"] < facts["t0"],
        "no_follow_up_after_t0": ~(facts["duration_days"] > 0),
    }
    treated = facts["treated"]

    def step(n: int, rule: str, excluded: int, keep: pd.Series, applies: str) -> tuple[Any, ...]:
        n_treated = int(treated[keep].sum())
        return (n, rule, excluded, int(keep.sum()), n_treated, int(keep.sum()) - n_treated, applies)

    remaining = pd.Series(True, index=facts.index)
    steps = [step(0, "registered patients", 0, remaining, "all")]
    for n, (key, label) in enumerate(RULES, start=1):
        excluded = remaining & breaks[key]
        remaining = remaining & ~excluded
        steps.append(step(n, label, int(excluded.sum()), remaining, "all"))
    adjusted = remaining & facts["has_covariates"]
    label = "missing covariates for adjusted models"
    missing = int((remaining & ~facts["has_covariates"]).sum())
    steps.append(step(len(RULES) + 1, label, missing, adjusted, "adjusted models"))
    columns = ["step", "rule", "excluded", "remaining", "remaining_treated"]
    attrition = pd.DataFrame(steps, columns=[*columns, "remaining_conservative", "applies_to"])
    eligible = facts[remaining].drop(columns=["first_procedure_on", "n_other_etiology"])
    return eligible.sort_index(), attrition


def policy_counts(
    t: dict[str, pd.DataFrame], facts: pd.DataFrame, eligible: pd.DataFrame, fractures: pd.DataFrame
) -> pd.DataFrame:
    """Rows and patients set aside by the data policy (fractures: joined to the window)."""
    procedures = t["procedures"].merge(
        eligible[["treat_on"]], left_on="patient_id", right_index=True
    )
    death_on = facts.loc[facts["death_on"].notna(), ["death_on"]]
    contacts = t["follow_up"].merge(death_on, left_on="patient_id", right_index=True)
    assessed = t["assessments"].merge(death_on, left_on="patient_id", right_index=True)
    set_aside = {
        "fracture_on_or_before_t0": fractures[fractures["detected_on"] <= fractures["t0"]],
        "fracture_after_end_of_follow_up": fractures[
            fractures["detected_on"] > fractures["end_on"]
        ],
        "procedure_not_treatment": procedures[
            procedures["treat_on"].isna() | (procedures["performed_on"] != procedures["treat_on"])
        ],
        "conflicting_death_dates": eligible[eligible["n_death_dates"] > 1].reset_index(),
        "contact_after_death": contacts[contacts["contact_on"] > contacts["death_on"]],
        "assessment_after_death": assessed[assessed["assessed_on"] > assessed["death_on"]],
    }
    rows = [(rule, len(f), f["patient_id"].nunique()) for rule, f in set_aside.items()]
    return pd.DataFrame(rows, columns=["rule", "rows", "patients"])


def classify(fractures: pd.DataFrame, t: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """New fractures in (t0, end]: distance to the nearest index level, sandwich flag."""
    new = fractures[
        (fractures["detected_on"] > fractures["t0"])
        & (fractures["detected_on"] <= fractures["end_on"])
    ]
    new = new.assign(position=new["level"].map(POSITION))
    idx = t["index_fractures"]
    refs = idx[["patient_id"]].assign(ref=idx["level"].map(POSITION))
    paired = new.merge(refs, on="patient_id")
    gap = paired["position"] - paired["ref"]
    paired = paired.assign(dist=gap.abs(), above=gap == 1, below=gap == -1)
    out = (
        paired.groupby(["patient_id", "level", "detected_on"], sort=False)
        .agg(
            position=("position", "first"),
            distance=("dist", "min"),
            above=("above", "any"),
            below=("below", "any"),
        )
        .reset_index()
    )
    out["sandwich"] = out["above"] & out["below"]
    return out.sort_values(["patient_id", "detected_on", "distance", "position"])


def outcome_frame(eligible: pd.DataFrame, classified: pd.DataFrame, study: Study) -> pd.DataFrame:
    """One row per patient per outcome, outcomes in study order, patients sorted."""
    patients = eligible.reset_index()
    parts = []
    for name in study.outcomes:
        first = classified[OUTCOME_MASKS[name](classified)].drop_duplicates("patient_id")
        first = first[["patient_id", "detected_on", "level", "distance", "sandwich"]].rename(
            columns={
                "detected_on": "event_on",
                "level": "event_level",
                "distance": "event_distance",
                "sandwich": "event_sandwich",
            }
        )
        part = patients.merge(first, on="patient_id", how="left")
        part["outcome"] = name
        parts.append(part)
    rows = pd.concat(parts, ignore_index=True)
    rows["outcome"] = pd.Categorical(rows["outcome"], categories=list(study.outcomes))
    rows["exit_on"] = rows["event_on"].fillna(rows["end_on"])
    rows["duration_days"] = (rows["exit_on"] - rows["t0"]).dt.days
    rows["event"] = np.select([rows["event_on"].notna(), rows["died"]], [1, 2], 0).astype("int8")
    return rows[OUTCOME_COLUMNS]


def counting_frame(outcomes: pd.DataFrame) -> pd.DataFrame:
    """(start, stop] rows: untreated until the day of treatment, treated after; event last."""
    switch, stop = outcomes["treat_day"], outcomes["duration_days"]
    treated_now = switch.notna() & (switch < stop)
    split = treated_now & (switch > 0)
    keep = ["patient_id", "outcome", *BASELINE]
    after = outcomes[keep].assign(
        start=switch.where(split, 0).astype("int64"),
        stop=stop.astype("int64"),
        treated=treated_now.astype("int8"),
        event=outcomes["event"],
    )
    before = outcomes.loc[split, keep].assign(
        start=0, stop=switch[split].astype("int64"), treated=np.int8(0), event=np.int8(0)
    )
    # the split rows share their outcome row's index: a stable sort puts them before
    return pd.concat([before, after]).sort_index(kind="stable").reset_index(drop=True)


def landmark_frame(outcomes: pd.DataFrame, landmark_days: int) -> pd.DataFrame:
    """Event-free and under follow-up after the landmark; arm = treated by then."""
    at_risk = outcomes[outcomes["duration_days"] > landmark_days]
    return at_risk.assign(
        duration_days=at_risk["duration_days"] - landmark_days,
        treated=at_risk["treat_day"].notna() & (at_risk["treat_day"] <= landmark_days),
    )[["patient_id", "outcome", "duration_days", "event", "treated", *BASELINE]]


def build_pandas(t: dict[str, pd.DataFrame], study: Study) -> PandasFrames:
    """Every frame of `registry tte`, from the raw tables, in pandas."""
    facts = follow_up_end(patient_facts(t), study.horizon_days)
    facts = add_treatment(facts, t, study)
    eligible, attrition = eligibility(facts)
    fractures = t["fractures"].merge(
        eligible[["t0", "end_on"]], left_on="patient_id", right_index=True
    )
    outcomes = outcome_frame(eligible, classify(fractures, t), study)
    return PandasFrames(
        outcomes=outcomes,
        counting=counting_frame(outcomes),
        landmark=landmark_frame(outcomes, study.landmark_days),
        attrition=attrition,
        policy=policy_counts(t, facts, eligible, fractures),
    )


# --- ours, and the comparison --------------------------------------------------------------


def build_ours(frames: RegistryFrames, study: Study) -> tuple[Cohort, TimeToEvent]:
    """The package's cohort and frames, as `registry tte` builds them."""
    cohort = build_cohort(frames, study)
    return cohort, build_time_to_event(cohort, frames.fractures, study)


def to_polars(frame: pd.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """A pandas frame in the schema of the package's frame (columns and types)."""
    cols = {}
    for name, dtype in schema.items():
        column = frame[name]
        if dtype == pl.Boolean and column.dtype == object:
            column = column.astype("boolean")
        cols[name] = column
    return pl.from_pandas(pd.DataFrame(cols)).cast(dict(schema))


def unmatched_rows(ours: pl.DataFrame, theirs: pl.DataFrame) -> int:
    """Rows (all columns, nulls equal) in one frame and not the other."""
    on = ours.columns
    only_ours = ours.join(theirs, on=on, how="anti", nulls_equal=True).height
    only_theirs = theirs.join(ours, on=on, how="anti", nulls_equal=True).height
    return only_ours + only_theirs


def compare(pandas_frames: PandasFrames, cohort: Cohort, tte: TimeToEvent) -> dict[str, int]:
    """Unmatched rows per frame, pandas against ours."""
    pairs = {
        "outcomes": (tte.outcomes, pandas_frames.outcomes),
        "counting": (tte.counting, pandas_frames.counting),
        "landmark": (tte.landmark, pandas_frames.landmark),
        "attrition": (cohort.attrition, pandas_frames.attrition),
        "policy": (cohort.policy.drop("action"), pandas_frames.policy),
    }
    return {
        name: unmatched_rows(ours, to_polars(theirs, ours.schema))
        for name, (ours, theirs) in pairs.items()
    }


# --- timing --------------------------------------------------------------------------------


class PeakRss:
    """Peak resident memory above the level at entry, sampled by a thread (MiB)."""

    STATM = Path("/proc/self/statm")

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE") if self.STATM.exists() else 0
        self.delta_mib: float | None = None

    def _rss(self) -> int:
        return int(self.STATM.read_text().split()[1]) * self.page

    def __enter__(self) -> PeakRss:
        if not self.page:
            return self
        gc.collect()
        _malloc_trim()
        self._start = self._peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            self._peak = max(self._peak, self._rss())

    def __exit__(self, *exc: object) -> None:
        if self.page:
            self._stop.set()
            self._thread.join()
            self._peak = max(self._peak, self._rss())
            self.delta_mib = (self._peak - self._start) / 2**20


def _malloc_trim() -> None:
    """Give freed heap back to the OS first (glibc), so deltas start from a low level."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float | None]:
    """(result, seconds, peak RSS delta MiB) of one call."""
    with PeakRss() as rss:
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
    return result, seconds, rss.delta_mib


def run(db: Path, study: Study, repeats: int) -> dict[str, Any]:
    """Alternate the two builds `repeats` times; medians, row counts and mismatches."""
    times: dict[str, list[float]] = {}
    peaks: dict[str, list[float]] = {}

    def record(key: str, seconds: float, peak: float | None) -> None:
        times.setdefault(key, []).append(seconds)
        if peak is not None:
            peaks.setdefault(key, []).append(peak)

    def pandas_side() -> PandasFrames:
        with closing(connect(db, read_only=True)) as con:
            tables, s, p = timed(lambda: read_tables(con))
        record("pandas_read", s, p)
        built, s, p = timed(lambda: build_pandas(tables, study))
        record("pandas_build", s, p)
        return built

    def our_side() -> tuple[Cohort, TimeToEvent]:
        with closing(connect(db, read_only=True)) as con:
            frames, s, p = timed(lambda: read_registry(con))
        record("ours_read", s, p)
        built, s, p = timed(lambda: build_ours(frames, study))
        record("ours_build", s, p)
        return built

    load_start = os.getloadavg()
    theirs: PandasFrames | None = None
    ours: tuple[Cohort, TimeToEvent] | None = None
    for i in range(repeats):
        theirs = ours = None  # free the previous repeat first
        if i % 2 == 0:
            theirs, ours = pandas_side(), our_side()
        else:
            ours, theirs = our_side(), pandas_side()
    assert theirs is not None and ours is not None
    cohort, tte = ours
    mismatches = compare(theirs, cohort, tte)
    primary = tte.outcomes.filter(pl.col("outcome") == study.primary_outcome)
    return {
        "patients": int(cohort.attrition.filter(pl.col("step") == 0)["remaining"][0]),
        "eligible": cohort.patients.height,
        "rows_outcome": tte.outcomes.height,
        "rows_outcome_primary": primary.height,
        "rows_counting": tte.counting.height,
        "rows_landmark": tte.landmark.height,
        **{f"{k}_s": statistics.median(v) for k, v in times.items()},
        **{f"{k}_peak_rss_mib": statistics.median(v) for k, v in peaks.items()},
        "times_s": times,
        "repeats": repeats,
        "mismatches": sum(mismatches.values()),
        "mismatches_by_frame": mismatches,
        "outcomes": list(study.outcomes),
        "versions": {
            "python": sys.version.split()[0],
            "pandas": pd.__version__,
            "polars": pl.__version__,
            "duckdb": duckdb.__version__,
        },
        "cpus": os.cpu_count(),
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
    }


def show(console: Console, result: dict[str, Any]) -> None:
    """The timings side by side, then the comparison."""
    table = Table(
        title=f"{result['patients']:,} patients, {result['eligible']:,} eligible; "
        f"median of {result['repeats']}"
    )
    for header in ("stage", "pandas s", "ours (Polars) s", "pandas / ours"):
        table.add_column(header, justify="left" if header == "stage" else "right")
    pairs = {
        "read": ("pandas_read_s", "ours_read_s"),
        "build": ("pandas_build_s", "ours_build_s"),
    }
    totals = [0.0, 0.0]
    for stage, (mine, theirs) in pairs.items():
        a, b = result[mine], result[theirs]
        totals = [totals[0] + a, totals[1] + b]
        table.add_row(stage, f"{a:.2f}", f"{b:.2f}", f"{a / b:.1f}x")
    table.add_row("total", f"{totals[0]:.2f}", f"{totals[1]:.2f}", f"{totals[0] / totals[1]:.1f}x")
    if "pandas_build_peak_rss_mib" in result:
        for stage in ("read", "build"):
            a = result.get(f"pandas_{stage}_peak_rss_mib", 0.0)
            b = result.get(f"ours_{stage}_peak_rss_mib", 0.0)
            table.add_row(f"{stage}: peak RSS delta MiB", f"{a:,.0f}", f"{b:,.0f}", "")
    console.print(table)
    rows = (
        f"rows: outcomes {result['rows_outcome']:,} ({result['rows_outcome_primary']:,} "
        f"primary), counting {result['rows_counting']:,}, landmark {result['rows_landmark']:,}"
    )
    console.print(rows)
    by_frame = ", ".join(f"{k} {v}" for k, v in result["mismatches_by_frame"].items())
    style = "green" if result["mismatches"] == 0 else "bold red"
    console.print(f"[{style}]mismatching rows: {result['mismatches']}[/] ({by_frame})")
    start, end = result["load_average_start"][0], result["load_average_end"][0]
    console.print(f"{result['cpus']} CPUs; 1-minute load average {start} at start, {end} at end")


def main() -> None:
    """Time both builds on a registry file, print the table, write JSON, check equality."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, required=True, help="registry DuckDB file")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--study", type=Path, help="study file (default: the package's)")
    args = parser.parse_args()
    if not args.db.exists():
        parser.error(f"no registry at {args.db}")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    result = run(args.db, load_study(args.study), args.repeats)
    show(Console(), result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    sys.exit(1 if result["mismatches"] else 0)


if __name__ == "__main__":
    main()
