"""Time the cohort and time-to-event stages in process: read from DuckDB, then pure Polars.

Usage: python benchmarks/tte_build.py [--patients N] [--repeats R]
The registry is an in-memory DuckDB loaded straight from the synthetic tables
(ingest is measured by run.py); peak RSS is the whole process's.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

from benchmarks_support import registry_connection

from registry.cohort import build_cohort, read_registry
from registry.study import Study
from registry.synth import generate_cohort
from registry.time_to_event import build_time_to_event


def main() -> None:
    """Print medians of read, cohort and frames for one size."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    con = registry_connection(generate_cohort(patients=args.patients, seed=1))
    study = Study()
    timings: dict[str, list[float]] = {"read": [], "cohort": [], "frames": []}
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        frames = read_registry(con)
        t1 = time.perf_counter()
        cohort = build_cohort(frames, study)
        t2 = time.perf_counter()
        tte = build_time_to_event(cohort, frames.fractures, study)
        t3 = time.perf_counter()
        for key, seconds in zip(timings, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            timings[key].append(seconds)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    medians = {k: statistics.median(v) for k, v in timings.items()}
    rows = tte.outcomes.height + tte.counting.height + tte.landmark.height
    print(
        f"{args.patients:,} patients, {args.repeats} repeats: read {medians['read']:.2f} s, "
        f"cohort {medians['cohort']:.2f} s, frames {medians['frames']:.2f} s "
        f"(total {sum(medians.values()):.2f} s); {rows:,} rows; process peak RSS {peak:,.0f} MiB"
    )


if __name__ == "__main__":
    main()
