"""`registry status`: the last refresh runs and the report that is current."""

from __future__ import annotations

from pathlib import Path

import duckdb

from registry.db import query
from registry.errors import RegistryError
from registry.refresh import publish
from registry.refresh.runlog import registry


def status_lines(db: Path, publish_dir: Path, *, limit: int) -> list[str]:
    """Lines describing the last `limit` runs and the current report."""
    try:
        with registry(db, read_only=True) as con:
            runs = query(con, "queries/refresh/last_runs", limit=limit).to_dicts()
    except duckdb.IOException:
        raise RegistryError(f"{db} is in use (a refresh may be running); try again") from None
    lines = [_current(publish_dir)]
    if not runs:
        return [*lines, "No refresh has run yet; start one with: registry refresh"]
    lines.append(f"Last {len(runs)} runs (newest first):")
    lines.extend(_run_line(run) for run in runs)
    return lines


def _current(publish_dir: Path) -> str:
    stamp = publish.current_stamp(publish_dir)
    if stamp is None:
        return f"Current report: none published in {publish_dir}"
    page = publish_dir / publish.LATEST / "index.html"
    return f"Current report: {page} (build {stamp}); history: {publish_dir / 'index.html'}"


def _run_line(run: dict[str, object]) -> str:
    started, finished = run["started_at"], run["finished_at"]
    took = f"{(finished - started).total_seconds():.1f} s" if finished and started else "-"  # type: ignore[operator]
    line = f"  run {run['run_id']}: {run['status']}, started {started:%Y-%m-%d %H:%M} UTC, {took}"
    if run["failed_step"]:
        line += f"; step {run['failed_step']}: {run['message']}"
    return line
