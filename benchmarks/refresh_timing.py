"""Time `registry refresh` on a synthetic registry: first build, a night with nothing new,
and a forced rebuild, with the time of each step of the first build from refresh_runs.

Usage: python benchmarks/refresh_timing.py [--patients 1700 --patients 100000] [--keep DIR]
Runs in process on a fresh registry in a temporary folder; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

from registry.db import connect
from registry.refresh import RefreshOptions, run_refresh
from registry.synth import generate_cohort, write_cohort

AS_OF = dt.date(2026, 1, 1)


def utc_now() -> dt.datetime:
    """The clock handed to the refresh."""
    return dt.datetime.now(dt.UTC)


def timed(opts: RefreshOptions) -> tuple[float, str]:
    """Wall time and status of one refresh."""
    start = time.perf_counter()
    outcome = run_refresh(opts, as_of=AS_OF, clock=utc_now)
    return time.perf_counter() - start, outcome.status


def step_times(db: Path, run_id: int) -> str:
    """Seconds per step of one run, as 'step s, ...'."""
    con = connect(db, read_only=True)
    try:
        rows = con.execute(
            "SELECT step, epoch(finished_at - started_at) FROM refresh_runs "
            "WHERE run_id = ? ORDER BY started_at",
            [run_id],
        ).fetchall()
    finally:
        con.close()
    return ", ".join(f"{step} {seconds:.1f}" for step, seconds in rows)


def bench(patients: int, root: Path) -> list[str]:
    """Table rows for one registry size."""
    write_cohort(generate_cohort(patients=patients, seed=1), root / "inbox" / "day1")
    opts = RefreshOptions(db=root / "r.duckdb", inbox=root / "inbox", publish=root / "out")
    first, status = timed(opts)
    steps = step_times(opts.db, 1)
    again, again_status = timed(opts)
    forced, forced_status = timed(RefreshOptions(**{**vars(opts), "force": True}))
    return [
        f"| {patients:,} | first refresh (ingest + build) | {first:.1f} | {status} | {steps} |",
        f"| {patients:,} | nothing new | {again:.1f} | {again_status} | |",
        f"| {patients:,} | --force rebuild | {forced:.1f} | {forced_status} | |",
    ]


def main() -> None:
    """Print a Markdown table of refresh times for each size."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, action="append")
    parser.add_argument("--keep", type=Path, help="Folder to keep the registries in.")
    args = parser.parse_args()
    print("| patients | case | seconds | status | seconds per step |")
    print("|---|---|---|---|---|")
    for patients in args.patients or [1700, 100_000]:
        with tempfile.TemporaryDirectory() as tmp:
            root = (args.keep or Path(tmp)) / f"n{patients}"
            for row in bench(patients, root):
                print(row, flush=True)


if __name__ == "__main__":
    main()
