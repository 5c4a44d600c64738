"""`registry status`: the last refresh runs, what needed attention, and the current report.

Lines fit an 80-column terminal. A run still marked 'running' whose process is gone (nobody
holds the refresh lock: killed, or the machine went down) shows as 'interrupted'.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from registry.db import query
from registry.errors import RegistryError
from registry.refresh import attention, publish
from registry.refresh.lock import lock_is_held
from registry.refresh.runlog import registry
from registry.refresh.wording import plural

Run = dict[str, Any]


def status_lines(db: Path, publish_dir: Path, *, limit: int) -> list[str]:
    """Lines describing the last `limit` runs and the current report."""
    try:
        with registry(db, read_only=True) as con:
            runs = query(con, "queries/refresh/last_runs", limit=limit).to_dicts()
            first = min((r["run_id"] for r in runs), default=0)
            noted = query(con, "queries/refresh/run_warnings", first_run=first).rows()
    except duckdb.IOException:
        raise RegistryError(f"{db} is in use (a refresh may be running); try again") from None
    lines = _current(publish_dir)
    if not runs:
        return [*lines, "No refresh has run yet; start one with: registry refresh"]
    held = lock_is_held(db)
    lines.append(f"Last {plural(len(runs), 'run')} (newest first):")
    for run in runs:
        warnings = [(k, f, r) for run_id, k, f, r in noted if run_id == run["run_id"]]
        lines.extend(run_lines(run, warnings, lock_held=held))
    return lines


def _current(publish_dir: Path) -> list[str]:
    stamp = publish.current_stamp(publish_dir)
    if stamp is None:
        return attention.wrap(f"Current report: none published in {publish_dir}", indent="")
    page = publish_dir / publish.LATEST / "index.html"
    return [
        *attention.wrap(f"Current report: {page} (build {stamp})", indent=""),
        *attention.wrap(f"History: {publish_dir / 'index.html'}", indent=""),
    ]


def shown_status(run: Run, *, lock_held: bool) -> str:
    """The run's status as shown: a 'running' run nobody holds the lock for was killed."""
    return "interrupted" if run["status"] == "running" and not lock_held else run["status"]


def run_lines(run: Run, warnings: list[attention.FileWarning], *, lock_held: bool) -> list[str]:
    """One run: status, start and duration; the failed step and why; files needing attention."""
    status = shown_status(run, lock_held=lock_held)
    started, finished = run["started_at"], run["finished_at"]
    took = f"{(finished - started).total_seconds():.1f} s" if finished and started else "-"
    if status == "running":
        took = "still running"
    lines = [f"  run {run['run_id']}: {status}, started {started:%Y-%m-%d %H:%M} UTC, {took}"]
    for why in _why(run, status):
        lines.extend(attention.wrap(why, indent="    "))
    if warnings:
        lines.extend(
            attention.wrap(f"needs attention: {attention.summary(warnings)}", indent="    ")
        )
        lines.extend(attention.detail_lines(warnings, indent="      "))
    return lines


def _why(run: Run, status: str) -> list[str]:
    """Why a run did not finish: the failed step and its message, or how it was stopped."""
    step, message = run["failed_step"], run["message"]
    if status == "interrupted" and run["status"] == "running":
        where = f" during step {run['running_step']}" if run.get("running_step") else ""
        return [f"the process stopped{where} (killed or the machine went down); "
                "the next refresh marks it and takes over"]  # fmt: skip
    if not step:
        return []
    if status == "interrupted":
        return [f"stopped at step {step} (the process was killed); a later run took over"]
    return [f"failed at step {step}: {message}" if message else f"failed at step {step}"]
