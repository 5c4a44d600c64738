"""Time the target-trial emulation at several sizes (issue 13, item 9; run by `make bench`).

For each size, a tv-confounding cohort is synthesised and its adjacent outcome's frame and
assessments built once (through an in-memory registry, as benchmarks_support does) and saved;
then each stage runs in a fresh subprocess, so its peak RSS is its own (inputs included):
  point       emulate(..., replicates=0): clones, weights, point estimate, diagnostics;
  replicate   one bootstrap replicate (engine.run with multinomial frequency weights), timed
              one at a time over --replicates of them after an untimed prepare and point run:
              the median, and 200 times it (the default protocol's bootstrap);
  executor    the same replicates through the bootstrap with 2 local processes (Runner):
              wall time per replicate (what the 2 cores give), and 200 times it;
then, at --refresh-size, the whole nightly refresh (`registry refresh`, the default study:
every outcome, 200 replicates, serial as the pipeline calls emulate) on that cohort.
Writes benchmarks/results/target_trial_timing.md (and prints the table).

Usage: python benchmarks/target_trial_timing.py [--sizes 10000,100000,1000000]
       [--replicates 10] [--repeats 3] [--refresh-size 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from timing_page import in_fresh_process, run_stage, when_and_where, write_page

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "target_trial_timing.md"
AS_OF = "2026-01-01"
PROJECTED = 200  # the default protocol's replicates


def build_inputs(folder: Path, size: int) -> dict[str, Any]:
    """Synthesise `size` tv-confounding patients and save the outcome frame and assessments."""
    import polars as pl
    from benchmarks_support import registry_connection

    from registry.cohort import read_registry
    from registry.db import query
    from registry.pipeline import build_frames
    from registry.study import load_study
    from registry.synth import generate_cohort

    started = time.perf_counter()
    con = registry_connection(generate_cohort(patients=size, seed=1, scenario="tv-confounding"))
    frames = read_registry(con)
    query(con, "queries/analysis/assessments").write_parquet(folder / "assessments.parquet")
    _, tte = build_frames(frames, load_study())
    outcome = tte.outcomes.filter(pl.col("outcome") == "adjacent")
    outcome.write_parquet(folder / "outcome.parquet")
    return {"seconds": [time.perf_counter() - started], "rows": outcome.height}


def _inputs(folder: Path) -> tuple[Any, Any]:
    import polars as pl

    return pl.read_parquet(folder / "outcome.parquet"), pl.read_parquet(
        folder / "assessments.parquet"
    )


def time_point(folder: Path, repeats: int) -> dict[str, Any]:
    """Wall seconds of emulate without replicates, `repeats` times."""
    from registry.analysis.target_trial.estimate import emulate
    from registry.analysis.target_trial.protocol import Protocol

    outcome, assessments = _inputs(folder)
    seconds, cpu = [], []
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        block = emulate(outcome, assessments, Protocol(replicates=0), outcome="adjacent")
        seconds.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    return {"seconds": seconds, "cpu": cpu, "status": block["status"],
            "rd5": block["risk_difference"]["5"]["estimate"]}  # fmt: skip


def _prepared(folder: Path, replicates: int) -> tuple[Any, Any, Any]:
    import numpy as np

    from registry.analysis.target_trial.engine import run
    from registry.analysis.target_trial.layout import prepare_outcome
    from registry.analysis.target_trial.protocol import Protocol

    outcome, assessments = _inputs(folder)
    protocol = replace(Protocol(), replicates=replicates)
    prep = prepare_outcome(outcome, assessments, grace_days=protocol.grace_days,
                           years=protocol.years)  # fmt: skip
    point = run(prep, protocol, np.ones(prep.n_patients), None)  # type: ignore[union-attr]
    return prep, protocol, point


def time_replicates(folder: Path, replicates: int) -> dict[str, Any]:
    """Wall seconds of each of `replicates` bootstrap replicates, one at a time."""
    from registry.analysis.target_trial.estimate import _replicate

    prep, protocol, point = _prepared(folder, replicates)
    seconds, cpu = [], []
    for b in range(replicates):
        started, cpu_started = time.perf_counter(), time.process_time()
        _replicate((prep, protocol, point), b)
        seconds.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    return {"seconds": seconds, "cpu": cpu}


def time_executor(folder: Path, replicates: int) -> dict[str, Any]:
    """Wall seconds per replicate of `replicates` replicates through a 2-process executor."""
    from registry.analysis.target_trial.estimate import bootstrap
    from registry.compute import ProcessRunner

    prep, protocol, point = _prepared(folder, replicates)
    started = time.perf_counter()
    bootstrap(prep, protocol, point, ProcessRunner(2))
    total = time.perf_counter() - started
    return {"seconds": [total / replicates], "total": total}


STAGES = {"inputs": build_inputs, "point": time_point, "replicate": time_replicates,
          "executor": time_executor}  # fmt: skip


def worker(stage: str, folder: Path, number: int, out: Path) -> None:
    """Run one stage in this process and write its timings and peak RSS as JSON."""
    run_stage(lambda: STAGES[stage](folder, number), out)  # type: ignore[operator]


def measure(stage: str, folder: Path, number: int) -> dict[str, Any]:
    """One stage in a fresh interpreter (its peak RSS is its own)."""
    return in_fresh_process(__file__, stage, folder, number)


def time_refresh(size: int, root: Path, registry: str) -> dict[str, Any]:
    """Wall seconds and peak RSS of `registry refresh` on a fresh tv-confounding export."""
    inbox = root / "inbox" / "export"
    subprocess.run([registry, "synth", "--scenario", "tv-confounding", "--patients", str(size),
                    "--out", str(inbox)], check=True, capture_output=True)  # fmt: skip
    (inbox / "truth.json").unlink(missing_ok=True)
    argv = [registry, "refresh", "--db", str(root / "nightly.duckdb"), "--inbox",
            str(root / "inbox"), "--publish", str(root / "publish"), "--as-of", AS_OF]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    # a fresh wrapper whose only child is the refresh: its RUSAGE_CHILDREN is the refresh's
    done = subprocess.run([sys.executable, "-c", WRAPPER, *argv], capture_output=True,
                          text=True, cwd=root, env=env)  # fmt: skip
    found = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
    if found.get("returncode") not in (0, 2):
        sys.exit(f"Error: registry refresh failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return {"seconds": [found["seconds"]], "peak_mib": found["maxrss"] / 1024,
            "returncode": found["returncode"]}  # fmt: skip


WRAPPER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
seconds = time.perf_counter() - start
maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"seconds": seconds, "maxrss": maxrss, "returncode": code}))
"""


def row(size: int, stage: str, found: dict[str, Any], note: str = "") -> list[str]:
    """One table row: size, stage, median and spread of the seconds, peak MiB, note (with
    the median CPU seconds where measured: on a loaded machine wall time is mostly waiting)."""
    seconds = found["seconds"]
    if found.get("cpu"):
        note = f"CPU median {statistics.median(found['cpu']):.3f} s; {note}"
    spread = [f"{statistics.median(seconds):.3f}", f"{min(seconds):.3f}", f"{max(seconds):.3f}"]
    return [f"{size:,}", stage, *spread, f"{found['peak_mib']:,.0f}", f"n={len(seconds)}; {note}"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--replicates", type=int, default=10, help="Replicates timed per size.")
    parser.add_argument("--repeats", type=int, default=3, help="Point-estimate repeats.")
    parser.add_argument("--executor-max", type=int, default=100_000,
                        help="Largest size timed through the executor (it copies the arrays "
                             "to each worker process).")  # fmt: skip
    parser.add_argument("--refresh-size", type=int, default=10_000, help="0: no refresh.")
    parser.add_argument("--stages", default="point,replicate,executor",
                        help="Stages timed at each size, comma-separated.")  # fmt: skip
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Every stage at every size, then the refresh; write the page."""
    args = parse_args(argv)
    if args.worker:
        stage, folder, number, out = args.worker
        worker(stage, Path(folder), int(number), Path(out))
        return
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    rows: list[list[str]] = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix=f"tt{size}-", dir=HERE) as tmp:
            folder = Path(tmp)
            found = measure("inputs", folder, size)
            rows.append(row(size, "inputs (synth, registry, frames)", found,
                            f"{found['rows']:,} patients in the outcome frame"))  # fmt: skip
            stages = args.stages.split(",")
            repeats = args.repeats if size <= 100_000 else 1
            if "point" in stages:
                rows.append(row(size, "point estimate (emulate, 0 replicates)",
                                measure("point", folder, repeats)))  # fmt: skip
            reps = args.replicates if size <= 100_000 else max(3, args.replicates // 3)
            if "replicate" in stages:
                found = measure("replicate", folder, reps)
                median = statistics.median(found["seconds"])
                cpu = statistics.median(found["cpu"]) if found.get("cpu") else median
                note = (f"{PROJECTED} replicates ≈ {median * PROJECTED:,.0f} s wall, "
                        f"{cpu * PROJECTED:,.0f} s CPU")  # fmt: skip
                rows.append(row(size, "bootstrap replicate, serial", found, note))
            if "executor" in stages and size <= args.executor_max:
                found = measure("executor", folder, reps)
                rows.append(row(size, "bootstrap replicate, 2-process executor", found,
                                f"wall per replicate; {PROJECTED} ≈ "
                                f"{found['seconds'][0] * PROJECTED:,.0f} s"))  # fmt: skip
            print("\n".join(" | ".join(r) for r in rows[-4:]), flush=True)
    if args.refresh_size:
        registry = shutil.which("registry", path=str(Path(sys.executable).parent)) or "registry"
        with tempfile.TemporaryDirectory(prefix="ttrefresh-", dir=HERE) as tmp:
            found = time_refresh(args.refresh_size, Path(tmp), registry)
        rows.append(row(args.refresh_size, "whole nightly refresh (default study)", found,
                        f"every outcome, {PROJECTED} replicates, serial; exit "
                        f"{found['returncode']}"))  # fmt: skip
    preamble = [
        when_and_where(),
        "- Scenario tv-confounding, adjacent outcome, default Protocol; each stage in a fresh "
        "process (peak RSS includes its inputs); replicates timed one at a time",
    ]
    header = ["size (patients)", "stage", "median s", "min s", "max s", "peak RSS MiB", "notes"]
    write_page(
        args.results, "Target-trial emulation: timings (issue 13, item 9)", preamble, header, rows
    )


if __name__ == "__main__":
    main()
