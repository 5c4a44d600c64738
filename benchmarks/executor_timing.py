"""Time the replicate work through each Runner backend (issue 16, item 2; `make bench`).

For each size a tv-confounding cohort is synthesised and loaded into an in-memory registry;
the adjacent outcome's frame and the assessments (target trial), and the covariates with
30 % of BMD and 15 % of glucocorticoids deleted at random plus the auxiliary predictors
(imputation) are saved. Then, each in a fresh process, with every backend of
registry/compute.py — serial, ProcessRunner with 1 and 2 workers (joblib loky), and a Dask
LocalCluster (worker processes, one thread each) with 1 and 2 workers:

  bootstrap  the target trial's bootstrap: `--replicates` (40) replicates of the adjacent
             outcome (prepare and point estimate untimed, as are starting the cluster and
             connecting to it);
  impute     the chained equations: `--imputations` (20) imputations x 10 iterations.

Peak RSS is that of the whole process tree (the timing process, loky workers, Dask scheduler
and workers), sampled every 0.1 s. Each result is hashed: the notes say whether it equals the
serial run's (it must). Writes benchmarks/results/executor_timing.md (and prints it).

Usage: python benchmarks/executor_timing.py [--sizes 10000,100000] [--replicates 40]
       [--imputations 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from imputation_timing import with_holes
from timing_page import write_page

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "executor_timing.md"
BACKENDS = ("serial", "processes-1", "processes-2", "dask-1", "dask-2")


class TreePeak:
    """The peak summed RSS of this process and its descendants, sampled in a thread."""

    def __init__(self) -> None:
        import psutil

        self.me = psutil.Process()
        self.peak = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while not self.stop.wait(0.1):
            total = 0
            for proc in [self.me, *self.me.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except Exception:  # a process that just ended
                    continue
            self.peak = max(self.peak, total)

    def mib(self) -> float:
        self.stop.set()
        self.thread.join()
        return self.peak / 2**20


def build_inputs(folder: Path, size: int, _: argparse.Namespace) -> dict[str, Any]:
    """Synthesise `size` patients; save the trial's and the imputation's inputs."""
    import polars as pl
    from benchmarks_support import registry_connection

    from registry.analysis.imputation import auxiliary_frame
    from registry.cohort import read_registry
    from registry.db import query
    from registry.pipeline import build_frames
    from registry.study import load_study
    from registry.synth import generate_cohort

    started = time.perf_counter()
    study = load_study()
    con = registry_connection(generate_cohort(patients=size, seed=1, scenario="tv-confounding"))
    frames = read_registry(con)
    query(con, "queries/analysis/assessments").write_parquet(folder / "assessments.parquet")
    cohort, tte = build_frames(frames, study)
    outcome = tte.outcomes.filter(pl.col("outcome") == "adjacent")
    outcome.write_parquet(folder / "outcome.parquet")
    auxiliary_frame(cohort, tte, study).write_parquet(folder / "auxiliary.parquet")
    patients = with_holes(cohort.patients, study.covariates)
    patients.write_parquet(folder / "patients.parquet")
    return {"seconds": [time.perf_counter() - started], "rows": patients.height}


@contextmanager
def backend_runner(name: str) -> Iterator[Any]:
    """The Runner of a backend name (a LocalCluster started for the Dask ones)."""
    from registry.compute import DaskRunner, ProcessRunner, SerialRunner

    kind, _, count = name.partition("-")
    if kind == "serial":
        yield SerialRunner()
    elif kind == "processes":
        yield ProcessRunner(int(count))
    else:
        from distributed import LocalCluster

        with LocalCluster(n_workers=int(count), threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster:  # fmt: skip
            runner = DaskRunner(cluster.scheduler_address)
            try:
                yield runner
            finally:
                runner.close()


def time_bootstrap(folder: Path, backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """Wall seconds of the bootstrap's replicates through the backend, `repeats` times."""
    from dataclasses import replace

    import numpy as np
    import polars as pl

    from registry.analysis.target_trial.engine import run
    from registry.analysis.target_trial.estimate import bootstrap
    from registry.analysis.target_trial.layout import prepare_outcome
    from registry.analysis.target_trial.protocol import Protocol

    outcome = pl.read_parquet(folder / "outcome.parquet")
    assessments = pl.read_parquet(folder / "assessments.parquet")
    protocol = replace(Protocol(), replicates=args.replicates)
    prep = prepare_outcome(outcome, assessments, grace_days=protocol.grace_days,
                           years=protocol.years)  # fmt: skip
    point = run(prep, protocol, np.ones(prep.n_patients), None)  # type: ignore[arg-type]
    seconds = []
    with backend_runner(backend) as runner:
        for _ in range(args.repeats + 1):  # the first call starts the workers: reported apart
            started = time.perf_counter()
            done = bootstrap(prep, protocol, point, runner)  # type: ignore[arg-type]
            seconds.append(time.perf_counter() - started)
    kept = [None if r is None else [r.risks, r.log_hr, [c.tolist() for c in r.curves.values()]]
            for r in done]  # fmt: skip
    digest = hashlib.sha256(json.dumps(kept, default=str).encode()).hexdigest()
    return {"seconds": seconds, "digest": digest, "rows": prep.n_patients}  # type: ignore[union-attr]


def time_impute(folder: Path, backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """Wall seconds of impute() through the backend, `repeats` times."""
    import polars as pl

    from registry.analysis.imputation import impute
    from registry.missing_data import MissingData
    from registry.study import load_study

    patients = pl.read_parquet(folder / "patients.parquet")
    auxiliary = pl.read_parquet(folder / "auxiliary.parquet")
    spec = MissingData(imputations=args.imputations, iterations=10)
    seconds = []
    with backend_runner(backend) as runner:
        for _ in range(args.repeats + 1):  # the first call starts the workers: reported apart
            started = time.perf_counter()
            result = impute(patients, auxiliary, load_study().covariates, spec, runner=runner)
            seconds.append(time.perf_counter() - started)
    digest = hashlib.sha256()
    for completed in result.completed:
        digest.update(completed.hash_rows(seed=0).to_numpy().tobytes())
    return {"seconds": seconds, "digest": digest.hexdigest(), "rows": patients.height}


STAGES = {"inputs": build_inputs, "bootstrap": time_bootstrap, "impute": time_impute}


def measure(stage: str, folder: Path, what: str, args: argparse.Namespace) -> dict[str, Any]:
    """One stage in a fresh interpreter (its peak RSS is its own process tree's)."""
    out = folder / f"{stage}.json"
    out.unlink(missing_ok=True)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    argv = [sys.executable, __file__, "--replicates", str(args.replicates),
            "--imputations", str(args.imputations), "--repeats", str(args.repeats),
            "--worker", stage, str(folder), what, str(out)]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    if done.returncode or not out.exists():
        sys.exit(f"Error: the {stage} stage ({what}) failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(out.read_text()))


def row(size: int, case: str, found: dict[str, Any], note: str) -> list[str]:
    """One table row in latest.md's format."""
    first, *seconds = found["seconds"]
    note = f"first call {first:.2f} s (workers starting, imports); {note}"
    spread = [f"{statistics.median(seconds):.2f}", f"{min(seconds):.2f}", f"{max(seconds):.2f}"]
    return [f"{size:,}", case, *spread, f"{found['peak_mib']:,.0f}", f"{found['rows']:,}",
            f"n={len(seconds)}; {note}"]  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--replicates", type=int, default=40)
    parser.add_argument("--imputations", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="Timed runs per backend.")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def loads() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    """Every case, size and backend; write the page."""
    args = parse_args(argv)
    if args.worker:
        stage, folder, what, out = args.worker
        peak = TreePeak()
        found = STAGES[stage](Path(folder), int(what) if stage == "inputs" else what, args)
        found["peak_mib"] = peak.mib()
        Path(out).write_text(json.dumps(found))
        return
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    backends = [b for b in args.backends.split(",") if b]
    start_load, rows = loads(), []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix=f"exec{size}-", dir=HERE) as tmp:
            folder = Path(tmp)
            measure("inputs", folder, str(size), args)
            for case, label in (("bootstrap", f"target-trial bootstrap, {args.replicates} "
                                 "replicates"), ("impute", f"impute(): {args.imputations} "
                                 "imputations x 10 iterations")):  # fmt: skip
                serial: dict[str, Any] | None = None
                for backend in backends:
                    found = measure(case, folder, backend, args)
                    serial = serial or found
                    speed = statistics.median(serial["seconds"][1:]) / statistics.median(
                        found["seconds"][1:]
                    )
                    same = "identical" if found["digest"] == serial["digest"] else "DIFFERENT"
                    note = f"{speed:.2f}x vs serial; {same} to the serial result; load {loads()}"
                    rows.append(row(size, f"{label}, {backend}", found, note))
                    print(" | ".join(rows[-1]), flush=True)
    preamble = [
        f"- {time.strftime('%Y-%m-%d %H:%M %Z')}; {os.cpu_count()} CPUs shared with other "
        f"jobs (load average at start {start_load}, at end {loads()}); OPENBLAS_NUM_THREADS=1 "
        "and every backend runs its work under one BLAS thread (threadpoolctl)",
        "- tv-confounding scenario, default study; the bootstrap is the adjacent outcome's; "
        "imputation with 30 % of BMD and 15 % of glucocorticoids deleted at random",
        "- processes-N: joblib loky with N workers; dask-N: a distributed.LocalCluster with N "
        "single-threaded worker processes on this machine (cluster start and connection "
        "untimed). Each backend runs the work once first (that call starts loky's workers and "
        "imports the package on the workers; its time is in the notes, not in the median), "
        "then `--repeats` times. Peak RSS: the whole process tree. Speed-up: serial median / "
        "median",
    ]
    header = ["size (patients)", "case", "median s", "min s", "max s", "peak RSS MiB", "rows",
              "notes"]  # fmt: skip
    title = "Replicate work through the Runner backends (issue 16, item 2)"
    write_page(args.results, title, preamble, header, rows)


if __name__ == "__main__":
    main()
