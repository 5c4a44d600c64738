"""The run log: refresh_runs (one row per step) and refresh_builds (one row per run).

Each write is its own short connection and statement, so a run killed at any moment leaves
at most rows marked 'running', which the next run (holding the lock) marks 'interrupted'.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from registry.db import scalar
from registry.pipeline import open_registry


@contextmanager
def registry(db: Path, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the registry, closed after the block."""
    con = open_registry(db, read_only=read_only)
    try:
        yield con
    finally:
        con.close()


def naive_utc(moment: dt.datetime) -> dt.datetime:
    """Timestamps are stored as naive UTC."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def begin_run(db: Path, *, started: dt.datetime, as_of: dt.date) -> int:
    """Mark runs left 'running' by a killed process as interrupted; open a new run."""
    with registry(db) as con:
        con.execute("BEGIN TRANSACTION")
        con.execute("UPDATE refresh_runs SET status = 'interrupted' WHERE status = 'running'")
        con.execute(
            "UPDATE refresh_builds SET status = 'interrupted', "
            "message = coalesce(message, 'the run was killed') WHERE status = 'running'"
        )
        run_id = int(scalar(con, "SELECT nextval('refresh_run_seq')"))
        con.execute(
            "INSERT INTO refresh_builds (run_id, stamp, as_of, started_at, status) "
            "VALUES (?, ?, ?, ?, 'running')",
            [run_id, build_stamp(started, run_id), as_of, naive_utc(started)],
        )
        con.execute("COMMIT")
    return run_id


def build_stamp(started: dt.datetime, run_id: int) -> str:
    """The build folder name: UTC time then run id, so names sort in run order."""
    return f"{naive_utc(started):%Y%m%dT%H%M%SZ}-run{run_id:06d}"


def start_step(db: Path, run_id: int, step: str, *, at: dt.datetime) -> None:
    """Record that a step began."""
    with registry(db) as con:
        con.execute(
            "INSERT OR REPLACE INTO refresh_runs (run_id, step, started_at, status) "
            "VALUES (?, ?, ?, 'running')",
            [run_id, step, naive_utc(at)],
        )


def end_step(
    db: Path,
    run_id: int,
    step: str,
    *,
    at: dt.datetime,
    status: str,
    rows: int | None = None,
    message: str | None = None,
) -> None:
    """Record how a step ended (ok, skipped or failed), its row count and message."""
    with registry(db) as con:
        con.execute(
            "UPDATE refresh_runs SET finished_at = ?, status = ?, rows = ?, message = ? "
            "WHERE run_id = ? AND step = ?",
            [naive_utc(at), status, rows, message, run_id, step],
        )


def skip_step(db: Path, run_id: int, step: str, *, at: dt.datetime, message: str) -> None:
    """Record a step that had nothing to do."""
    start_step(db, run_id, step, at=at)
    end_step(db, run_id, step, at=at, status="skipped", message=message)


def end_build(db: Path, run_id: int, *, at: dt.datetime, status: str, **facts: Any) -> None:
    """Close the run's build row with its status and any facts (fingerprint, numbers)."""
    names = sorted(facts)
    sets = "".join(f", {name} = ?" for name in names)
    with registry(db) as con:
        con.execute(
            f"UPDATE refresh_builds SET status = ?, finished_at = ?{sets} WHERE run_id = ?",
            [status, naive_utc(at), *(facts[n] for n in names), run_id],
        )


def record_warnings(db: Path, run_id: int, warnings: list[tuple[str, str, str]]) -> None:
    """Store what needs attention in this run: (kind, file, reason) rows."""
    if not warnings:
        return
    with registry(db) as con:
        con.executemany(
            "INSERT INTO refresh_warnings (run_id, kind, file, reason) VALUES (?, ?, ?, ?)",
            [[run_id, *warning] for warning in warnings],
        )


def published_stamps(db: Path) -> set[str]:
    """Stamps of every published build (their folders are kept)."""
    with registry(db, read_only=True) as con:
        rows = con.execute("SELECT stamp FROM refresh_builds WHERE status = 'published'")
        return {str(row[0]) for row in rows.fetchall()}
