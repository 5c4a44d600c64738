"""Time multiple imputation in the analysis at several sizes (issue 14, item 7; `make bench`).

For each size a cohort is synthesised (the `mar` mechanism at 30 % when the synthesiser has
it, else its default blanks), loaded into an in-memory registry and its frames built once;
then, in this order and in one process:
  complete case   every outcome's models as before (analyse_outcome, the target trial off);
  impute          the chained equations: --imputations completed datasets, once per run;
  pool            every outcome's adjusted models on each completed dataset, pooled
                  (--workers 2: through two local worker processes, registry/compute.py);
and the ratio (impute + pool) / complete case. Peak RSS is the process's at the end (worker
processes not included); the notes give each stage's CPU seconds in this process, a steadier
figure than wall time when the machine is shared.
Writes benchmarks/results/mi_analysis_timing.md (and prints the table).

Usage: python benchmarks/mi_analysis_timing.py [--sizes 10000,100000] [--imputations 20]
                                               [--workers 1]
"""

from __future__ import annotations

import argparse
import inspect
import os
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
RESULTS = HERE / "results" / "mi_analysis_timing.md"


def peak_mib() -> float:
    """This process's peak RSS in MiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(size: int, imputations: int, seed: int, workers: int) -> list[tuple[str, float, str]]:
    """(case, seconds, notes) of each stage at one size."""
    from benchmarks_support import load_registry

    from registry.analysis.missing import impute_covariates, pool_outcomes
    from registry.analysis.outcome import analyse_outcome
    from registry.missing_data import MissingData
    from registry.pipeline import build_frames
    from registry.study import load_study
    from registry.synth import generate_cohort

    options = {"patients": size, "seed": seed}
    if "missing" in inspect.signature(generate_cohort).parameters:
        options |= {"missing": "mar", "missing_rate": 0.3}
    frames = load_registry(generate_cohort(**options))  # type: ignore[arg-type]
    study = load_study()
    study = replace(
        study,
        missing_data=MissingData(imputations=imputations),
        target_trial=replace(study.target_trial, enabled=False),
    )
    cohort, tte = build_frames(frames, study)
    missing = 1 - cohort.patients.get_column("has_covariates").mean()  # type: ignore[operator]
    rows: list[tuple[str, float, str]] = []
    started, cpu = time.perf_counter(), time.process_time()
    for name in study.outcomes:
        analyse_outcome(name, tte.outcomes, tte.counting, tte.landmark, study)
    rows.append(("complete case (every model, 4 outcomes)", time.perf_counter() - started,
                 f"{missing:.0%} of patients miss a covariate; "
                 f"CPU {time.process_time() - cpu:.1f} s"))  # fmt: skip
    started, cpu = time.perf_counter(), time.process_time()
    imputed = impute_covariates(cohort, tte, study)
    rows.append(("impute (chained equations)", time.perf_counter() - started,
                 f"m={imputations}, {study.missing_data.iterations} iterations; "
                 f"CPU {time.process_time() - cpu:.1f} s"))  # fmt: skip
    assert imputed is not None, "nothing was missing"
    pool_options: dict[str, Any] = {}
    if workers > 1 and "runner" in inspect.signature(pool_outcomes).parameters:
        from registry.compute import ProcessRunner

        pool_options["runner"] = ProcessRunner(workers)
    started, cpu = time.perf_counter(), time.process_time()
    pool_outcomes(tte, imputed, study, **pool_options)
    runner = f"{workers} worker processes" if pool_options else "serial"
    rows.append(("pool (5 adjusted models x 4 outcomes x m)", time.perf_counter() - started,
                 f"m={imputations}; counting rows {tte.counting.height:,}; {runner}; "
                 f"CPU {time.process_time() - cpu:.1f} s in this process"))  # fmt: skip
    return rows


def commit() -> str:
    """The checkout's commit (short hash), with a + when it has uncommitted changes."""
    import subprocess

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True)
        return done.stdout.strip()

    return git("rev-parse", "--short", "HEAD") + ("+" if git("status", "--porcelain") else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--imputations", type=int, default=20)
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--workers", type=int, default=1, help="processes for the pool stage")
    parser.add_argument("--output", type=Path, default=RESULTS, help="the table's file")
    args = parser.parse_args()
    lines = [
        "# Multiple imputation in the analysis: timings",
        "",
        f"- Machine: {os.cpu_count()} CPUs; load average at start "
        + " / ".join(f"{x:.2f}" for x in os.getloadavg()),
        "- One run per size (benchmarks/mi_analysis_timing.py); the target trial off; "
        + ("serial" if args.workers <= 1 else f"pool over {args.workers} worker processes")
        + f"; commit {commit()}.",
        "",
        "| size (patients) | case | median s | min s | max s | peak RSS MiB | rows | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size in (int(s) for s in args.sizes.split(",")):
        rows = run(size, args.imputations, args.seed, args.workers)
        base = rows[0][1]
        extra = rows[1][1] + rows[2][1]
        rows.append(("ratio (impute + pool) / complete case", extra / base, "times, not seconds"))
        for case, secs, notes in rows:
            lines.append(f"| {size:,} | {case} | {secs:.2f} | {secs:.2f} | {secs:.2f} | "
                         f"{peak_mib():,.0f} |  | {notes} |")  # fmt: skip
        print("\n".join(lines[-len(rows) :]), flush=True)
    lines.append("")
    lines.append("Load average at end " + " / ".join(f"{x:.2f}" for x in os.getloadavg()))
    args.output.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
