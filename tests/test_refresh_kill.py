"""Crash safety: a refresh killed with SIGKILL at each step, then a clean rerun.

The subprocess pauses at a named point through the REGISTRY_TEST_PAUSE test hook
(registry/refresh/hooks.py), so the kill lands at a known place every time. After the rerun
the registry holds each file once, the build is published once and `latest` is complete.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from registry.cli import main
from registry.refresh.publish import current_stamp
from registry.refresh.status import status_lines
from tests.test_refresh_support import counts, drop_export, kill, refresh, start_paused

PATIENTS = 120


def assert_complete(tmp: Path) -> None:
    """Every file loaded once, one published build, `latest` complete, inbox emptied."""
    db = tmp / "r.duckdb"
    loaded, patients, published, running = counts(
        db,
        "SELECT count(*) FROM ingest_batches WHERE status = 'loaded'",
        "SELECT count(*) FROM patients",
        "SELECT count(*) FROM refresh_builds WHERE status = 'published'",
        "SELECT count(*) FROM refresh_runs WHERE status = 'running'",
    )
    assert (loaded, patients, published, running) == (6, PATIENTS, 1, 0)
    assert counts(db, "SELECT count(DISTINCT sha256) FROM ingest_batches") == [6]
    out = tmp / "out"
    stamp = current_stamp(out)
    assert stamp is not None and (out / "latest" / "index.html").exists()
    results = json.loads((out / "latest" / "results.json").read_text())
    assert results["provenance"]["table_rows"]["patients"] == PATIENTS
    assert sorted(p.name for p in (out / "builds").iterdir()) == [stamp]
    assert stamp in (out / "index.html").read_text()
    assert sorted(p.name for p in (tmp / "inbox").iterdir()) == ["processed"]
    assert len(list((tmp / "inbox" / "processed").rglob("*.csv"))) == 6


@pytest.mark.parametrize("point", ["ingest:file", "checks", "models", "reports", "publish"])
def test_killed_at_a_step_then_rerun_completes_the_work(tmp_path: Path, point: str) -> None:
    drop_export(tmp_path, "day1", patients=PATIENTS)
    kill(start_paused(tmp_path, point))
    assert current_stamp(tmp_path / "out") is None  # nothing was published by the killed run
    shown = "\n".join(status_lines(tmp_path / "r.duckdb", tmp_path / "out", limit=5))
    assert "run 1: interrupted" in shown and "running" not in shown  # before any rerun
    assert f"during step {point.split(':')[0]}" in shown
    assert refresh(tmp_path).status == "published"
    assert_complete(tmp_path)
    interrupted = counts(
        tmp_path / "r.duckdb", "SELECT status FROM refresh_builds WHERE run_id = 1"
    )
    assert interrupted == ["interrupted"]


def test_killed_after_recording_the_build_but_before_latest_moved(tmp_path: Path) -> None:
    drop_export(tmp_path, "day1", patients=PATIENTS)
    kill(start_paused(tmp_path, "publish:swap"))
    assert current_stamp(tmp_path / "out") is None
    outcome = refresh(tmp_path)
    assert outcome.status == "no work"  # the data were already built: only `latest` is repaired
    assert_complete(tmp_path)


def test_a_second_refresh_is_refused_while_one_runs_and_takes_over_after_a_kill(
    tmp_path: Path,
) -> None:
    drop_export(tmp_path, "day1", patients=PATIENTS)
    proc = start_paused(tmp_path, "ingest")
    args = ["refresh", "--db", str(tmp_path / "r.duckdb"), "--inbox", str(tmp_path / "inbox"),
            "--publish", str(tmp_path / "out")]  # fmt: skip
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 1
    assert f"another refresh is running (pid {proc.pid}" in refused.output
    shown = "\n".join(status_lines(tmp_path / "r.duckdb", tmp_path / "out", limit=5))
    assert "run 1: running" in shown and "still running" in shown  # its process holds the lock
    kill(proc)
    assert refresh(tmp_path).status == "published"
    assert_complete(tmp_path)
