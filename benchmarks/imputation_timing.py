"""Time the chained-equations imputation at several sizes (issue 14, item 7; `make bench`).

For each size a default-scenario cohort is synthesised, loaded into an in-memory registry and
its cohort, time-to-event frames and auxiliary predictors built once (as
benchmarks_support does); then 30 % of the BMD T-scores and 15 % of the glucocorticoid flags
are deleted completely at random (seeded) and saved. impute() then runs in a fresh process
(its peak RSS is its own, inputs included): `--imputations` (20) imputations of
`--iterations` (10) cycles, serial, `--repeats` times (once at 1,000,000).
OpenBLAS is held to one thread (OPENBLAS_NUM_THREADS=1, `--blas-threads`): "serial" is one
core, and on this 2-core machine shared with other jobs a second BLAS thread only waits.
Writes benchmarks/results/imputation_timing.md (and prints the table).

Usage: python benchmarks/imputation_timing.py [--sizes 10000,100000,1000000]
       [--imputations 20] [--iterations 10] [--repeats 3] [--blas-threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from timing_page import peak_mib, when_and_where, write_page

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "imputation_timing.md"
SHARES = {"bmd_t_score": 0.30, "glucocorticoids": 0.15}


def with_holes(patients: Any, covariates: tuple[str, ...]) -> Any:
    """patient_id and the covariates, SHARES of each deleted completely at random (seed 14):
    the imputation benchmarks' missing data (imputation_timing, executor_timing)."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(14)
    return patients.select("patient_id", *covariates).with_columns(
        pl.when(pl.Series(rng.random(patients.height) < share))
        .then(None)
        .otherwise(pl.col(name))
        .alias(name)
        for name, share in SHARES.items()
    )


def build_inputs(folder: Path, size: int, _: argparse.Namespace) -> dict[str, Any]:
    """Synthesise `size` patients; save the covariates (with holes) and the auxiliaries."""
    from benchmarks_support import registry_connection

    from registry.analysis.imputation import auxiliary_frame
    from registry.cohort import read_registry
    from registry.pipeline import build_frames
    from registry.study import load_study
    from registry.synth import generate_cohort

    started = time.perf_counter()
    study = load_study()
    con = registry_connection(generate_cohort(patients=size, seed=1))
    cohort, tte = build_frames(read_registry(con), study)
    auxiliary_frame(cohort, tte, study).write_parquet(folder / "auxiliary.parquet")
    patients = with_holes(cohort.patients, study.covariates)
    patients.write_parquet(folder / "patients.parquet")
    missing = {c: patients[c].null_count() / max(patients.height, 1) for c in study.covariates}
    return {"seconds": [time.perf_counter() - started], "rows": patients.height,
            "missing": missing}  # fmt: skip


def time_impute(folder: Path, repeats: int, args: argparse.Namespace) -> dict[str, Any]:
    """Wall seconds of impute(), `repeats` times, serial."""
    import polars as pl

    from registry.analysis.imputation import impute
    from registry.missing_data import MissingData
    from registry.study import load_study

    patients = pl.read_parquet(folder / "patients.parquet")
    auxiliary = pl.read_parquet(folder / "auxiliary.parquet")
    covariates = load_study().covariates
    spec = MissingData(imputations=args.imputations, iterations=args.iterations)
    seconds, cpu = [], []
    for _ in range(repeats):
        started, used = time.perf_counter(), time.process_time()
        result = impute(patients, auxiliary, covariates, spec)
        seconds.append(time.perf_counter() - started)
        cpu.append(time.process_time() - used)
    last = result.chains.filter(pl.col("iteration") == args.iterations)
    means = last.group_by("variable").agg(pl.col("mean").mean()).sort("variable")
    return {"seconds": seconds, "cpu": cpu, "variables": list(result.variables),
            "predictors": len(result.predictors[result.variables[0]]),
            "means": dict(means.iter_rows())}  # fmt: skip


STAGES = {"inputs": build_inputs, "impute": time_impute}


def measure(stage: str, folder: Path, number: int, args: argparse.Namespace) -> dict[str, Any]:
    """One stage in a fresh interpreter (its peak RSS is its own)."""
    out = folder / f"{stage}.json"
    out.unlink(missing_ok=True)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(args.blas_threads)}
    argv = [sys.executable, __file__, "--imputations", str(args.imputations),
            "--iterations", str(args.iterations),
            "--worker", stage, str(folder), str(number), str(out)]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    if done.returncode or not out.exists():
        sys.exit(f"Error: the imputation {stage} stage failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(out.read_text()))


def row(size: int, stage: str, found: dict[str, Any], note: str = "") -> list[str]:
    """One table row: size, stage, median and spread of the seconds, peak MiB, note."""
    seconds = found["seconds"]
    spread = [f"{statistics.median(seconds):.2f}", f"{min(seconds):.2f}", f"{max(seconds):.2f}"]
    return [f"{size:,}", stage, *spread, f"{found['peak_mib']:,.0f}", f"n={len(seconds)}; {note}"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--imputations", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="impute() runs per size (1 at 1M).")
    parser.add_argument("--blas-threads", type=int, default=1)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """impute() at every size; write the page."""
    args = parse_args(argv)
    if args.worker:
        stage, folder, number, out = args.worker
        found = STAGES[stage](Path(folder), int(number), args)
        found["peak_mib"] = peak_mib()
        Path(out).write_text(json.dumps(found))
        return
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    rows: list[list[str]] = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix=f"mi{size}-", dir=HERE) as tmp:
            folder = Path(tmp)
            found = measure("inputs", folder, size, args)
            shares = ", ".join(f"{c} {v:.1%}" for c, v in found["missing"].items() if v)
            rows.append(row(size, "inputs (synth, registry, frames, auxiliaries)", found,
                            f"{found['rows']:,} eligible patients; missing: {shares}"))  # fmt: skip
            found = measure("impute", folder, args.repeats if size < 1_000_000 else 1, args)
            means = ", ".join(f"{k} {v:.3f}" for k, v in found["means"].items())
            cpu = statistics.median(found["cpu"])
            rows.append(row(size, f"impute(): {args.imputations} imputations x "
                            f"{args.iterations} iterations, serial", found,
                            f"CPU {cpu:.2f} s (median); {found['predictors']} predictors each; "
                            f"imputed means at the last iteration: {means}"))  # fmt: skip
            print(" | ".join(rows[-1]), flush=True)
    preamble = [
        f"{when_and_where()}; OPENBLAS_NUM_THREADS={args.blas_threads}",
        "- Default scenario, default study (6 covariates, 4 outcomes); 30 % of BMD and 15 % of "
        "glucocorticoids deleted completely at random; each stage in a fresh process (peak "
        "RSS includes its inputs)",
        "- Target: 1,000,000 patients x 20 imputations well under 60 s serial. Wall time "
        "depends on the load (other jobs share the 2 cores); the CPU seconds of the process "
        "(notes) are what an idle core would take, give or take memory-bandwidth contention",
    ]
    header = ["size (patients)", "stage", "median s", "min s", "max s", "peak RSS MiB", "notes"]
    write_page(
        args.results,
        "Multiple imputation by chained equations: timings (issue 14, item 7)",
        preamble,
        header,
        rows,
    )


if __name__ == "__main__":
    main()
