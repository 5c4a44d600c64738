"""Time a full analysis (every model of every outcome, results.json's content) in process.

Usage: python benchmarks/analysis_timing.py [--patients N]
The registry is an in-memory DuckDB loaded from a synthetic cohort; reading and the
cohort/time-to-event stages are timed apart from the models.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import time

from benchmarks_support import registry_connection

from registry.analysis.pro import baseline_of, summarise_visits, visits
from registry.analysis.results import build_results
from registry.cohort import build_cohort, read_registry
from registry.db import query
from registry.report.write import render_report
from registry.study import load_study
from registry.synth import generate_cohort
from registry.time_to_event import build_time_to_event

PROVENANCE = {
    "as_of": "2026-01-01",
    "versions": {},
    "study_sha256": "-",
    "data_snapshot_sha256": "-",
}


def main() -> None:
    """Print the time of each stage and of the whole analysis."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=100_000)
    args = parser.parse_args()
    con = registry_connection(generate_cohort(patients=args.patients, seed=1))
    study = load_study()
    t0 = time.perf_counter()
    frames = read_registry(con)
    assessments = query(con, "queries/analysis/assessments")
    t1 = time.perf_counter()
    cohort = build_cohort(frames, study)
    tte = build_time_to_event(cohort, frames.fractures, study)
    t2 = time.perf_counter()
    picked = visits(cohort, assessments)  # once, as analyse_registry does
    pro = summarise_visits(picked)
    t3 = time.perf_counter()
    results = build_results(
        cohort,
        tte,
        study,
        pro=pro,
        baseline_scores=baseline_of(picked, cohort),
        data_quality={"batches": [], "quarantine": [], "checks": []},
        prov=PROVENANCE,
        assessments=assessments,
    )
    t4 = time.perf_counter()
    html = render_report(results, built_at=dt.datetime(2026, 1, 1))
    t5 = time.perf_counter()
    json_mib = len(json.dumps(results)) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{args.patients:,} patients: read {t1 - t0:.2f} s, cohort+frames {t2 - t1:.2f} s, "
        f"PRO {t3 - t2:.2f} s, models (4 outcomes) {t4 - t3:.2f} s, report {t5 - t4:.2f} s; "
        f"total {t5 - t0:.2f} s; results.json {json_mib:.1f} MiB, index.html "
        f"{len(html) / 2**20:.1f} MiB; process peak RSS {peak:,.0f} MiB"
    )


if __name__ == "__main__":
    main()
