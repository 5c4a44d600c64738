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

Modules: tte_pandas_cohort.py (read, facts, eligibility, data policy) and
tte_pandas_frames.py (outcome, counting and landmark frames) hold the pandas build,
tte_pandas_timing.py the timer; this script compares the two builds and reports.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import polars as pl
from rich.console import Console
from rich.table import Table
from tte_pandas_cohort import read_tables
from tte_pandas_frames import PandasFrames, build_pandas
from tte_pandas_timing import timed

from registry.cohort import Cohort, RegistryFrames, build_cohort, read_registry
from registry.db import connect
from registry.study import Study, load_study
from registry.time_to_event import TimeToEvent, build_time_to_event


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
    return pl.from_pandas(pd.DataFrame(cols)).cast(schema)


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
