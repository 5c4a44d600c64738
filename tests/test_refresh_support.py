"""Helpers shared by the refresh tests (no tests here): synthetic exports, a clock, counts."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from registry.db import connect
from registry.refresh import RefreshOptions, RefreshOutcome, run_refresh
from registry.synth import generate_cohort, write_cohort

AS_OF = dt.date(2026, 1, 1)
ROOT = Path(__file__).resolve().parent.parent


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def options(tmp: Path, **extra: Any) -> RefreshOptions:
    return RefreshOptions(db=tmp / "r.duckdb", inbox=tmp / "inbox", publish=tmp / "out", **extra)


def drop_export(tmp: Path, name: str, *, patients: int = 120, seed: int = 7) -> Path:
    """Write a synthetic export into the inbox as one sub-folder."""
    folder = tmp / "inbox" / name
    write_cohort(generate_cohort(patients=patients, seed=seed), folder)
    return folder


def refresh(tmp: Path, **extra: Any) -> RefreshOutcome:
    return run_refresh(options(tmp, **extra), as_of=AS_OF, clock=utc_now)


def counts(db: Path, *sql: str) -> list[Any]:
    con = connect(db, read_only=True)
    try:
        return [con.execute(s).fetchall()[0][0] for s in sql]
    finally:
        con.close()


def start_paused(tmp: Path, point: str) -> subprocess.Popen[bytes]:
    """Start `registry refresh` in a subprocess that pauses at `point` (test hook); wait for it."""
    marker = tmp / f"paused-{point.replace(':', '-')}"
    env = os.environ | {"REGISTRY_TEST_PAUSE": point, "REGISTRY_TEST_PAUSE_MARKER": str(marker)}
    args = [sys.executable, "-m", "registry.cli", "refresh", "--db", str(tmp / "r.duckdb"),
            "--inbox", str(tmp / "inbox"), "--publish", str(tmp / "out"), "--as-of", "2026-01-01"]  # fmt: skip
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 90
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"never paused at {point}: {proc.stderr.read()!r}")  # type: ignore[union-attr]
        time.sleep(0.05)
    return proc


def kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
