"""Where the memory goes: peak RSS of each step of a refresh, and of the functions inside it.

Usage: python benchmarks/memory_stages.py --inbox DIR [--study FILE] [--root DIR]
       [--memory-limit 4GB] [--watch MODULE:FUNCTION ...]

Runs one `registry refresh` in process on a fresh registry under ROOT (default: a scratch
folder under benchmarks/out/, deleted afterwards) with the contract files of DIR copied into
its inbox; with --root naming a folder that already holds a registry, a forced rebuild of it.
A thread samples the process's resident set (VmRSS) every 20 ms; each refresh step
(from the run log) and each function named in WATCH gets the largest sample seen while it ran
and the RSS when it started. Prints a Markdown table; the function rows show what one call
adds on top of what was already held. Make the inbox with `registry synth --out DIR`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import importlib
import resource
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from registry.db import Limits, connect, limits
from registry.refresh import RefreshOptions, run_refresh

HERE = Path(__file__).resolve().parent
AS_OF = dt.date(2026, 1, 1)
# module:function -> wrapped in place; calls are timed and given their peak RSS
WATCH = (
    "registry.pipeline:read_registry",
    "registry.pipeline:query",
    "registry.pipeline:data_quality",
    "registry.pipeline:build_frames",
    "registry.pipeline:write_tte",
    "registry.analysis.pro:visits",
    "registry.pipeline:analyse",
    "registry.analysis.results:analyse_outcome",
    "registry.analysis.results:impute_covariates",
    "registry.analysis.results:pool_outcomes",
    "registry.analysis.results:table_one",
    "registry.analysis.results:target_trial",
    "registry.analysis.results:publish",
    "registry.refresh.steps:write_json",
    "registry.refresh.steps:write_report",
    "registry.refresh.steps:run_checks",
    "registry.refresh.steps:ingest_inbox",
)


def rss_mib() -> float:
    """The process's resident set now, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Sampler(threading.Thread):
    """Samples (epoch seconds, RSS MiB) until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, float]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.samples.append((time.time(), rss_mib()))
            time.sleep(0.02)

    def peak(self, start: float, end: float) -> float:
        """Largest sample in [start, end]."""
        inside = [rss for at, rss in self.samples if start <= at <= end]
        return max(inside, default=0.0)


CALLS: list[tuple[str, float, float, float]] = []  # name, start, end, RSS at start
SAMPLER: Sampler | None = None


def watched(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """The function, recording each call's span."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start, before = time.time(), rss_mib()
        try:
            return function(*args, **kwargs)
        finally:
            end = time.time()
            CALLS.append((name, start, end, before))
            if SAMPLER is not None and end - start >= 0.2:  # live, for runs of an hour
                top = SAMPLER.peak(start, end)
                print(f"| {name} | {end - start:.1f} | {before:.0f} | {top:.0f} |", flush=True)

    return wrapper


def watch_all(extra: list[str]) -> None:
    """Wrap every function of WATCH and `extra` (module:function) in its module."""
    for target in (*WATCH, *extra):
        module_name, name = target.split(":")
        module = importlib.import_module(module_name)
        setattr(module, name, watched(target.split(".")[-1], getattr(module, name)))


def step_spans(db: Path) -> list[tuple[str, float, float]]:
    """(step, epoch start, epoch end) of the run, in order."""
    con = connect(db, read_only=True)
    try:
        return con.execute(
            "SELECT step, epoch(started_at), epoch(finished_at) FROM refresh_runs "
            "WHERE run_id = (SELECT max(run_id) FROM refresh_runs) AND finished_at IS NOT NULL "
            "ORDER BY started_at"
        ).fetchall()
    finally:
        con.close()


def main() -> None:
    """Run one refresh and print peak RSS per step and per watched function."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inbox", type=Path, required=True)
    parser.add_argument("--study", type=Path)
    parser.add_argument("--root", type=Path)
    parser.add_argument("--memory-limit")
    parser.add_argument(
        "--watch", action="append", default=[], metavar="MODULE:FUNCTION",
        help="also sample this function (repeatable), e.g. registry.analysis.pro:quantiles",
    )  # fmt: skip
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="memory-", dir=HERE / "out"))
    again = (root / "r.duckdb").exists()  # a kept registry: rebuild it (--force), no new data
    if not again:
        shutil.copytree(args.inbox, root / "inbox" / "day1")
    watch_all(args.watch)
    global SAMPLER
    sampler = SAMPLER = Sampler()
    sampler.start()
    print("| function | s | RSS at start MiB | peak RSS MiB |\n|---|---|---|---|", flush=True)
    opts = RefreshOptions(
        db=root / "r.duckdb",
        inbox=root / "inbox",
        publish=root / "publish",
        studies=(args.study,) if args.study else (),
        force=again,
    )
    started = time.time()
    try:
        with limits(Limits(args.memory_limit)):
            outcome = run_refresh(opts, as_of=AS_OF, clock=lambda: dt.datetime.now(dt.UTC))
        wall = time.time() - started
        sampler.done.set()
        sampler.join()
        print(f"\n{outcome.status}: {outcome.message}")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"wall {wall:.1f} s; peak RSS {peak:.0f} MiB")
        print("\n| step | s | peak RSS MiB |\n|---|---|---|")
        for step, start, end in step_spans(opts.db):
            print(f"| {step} | {end - start:.1f} | {sampler.peak(start, end):.0f} |")
    finally:
        if args.root is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
