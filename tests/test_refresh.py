"""The nightly refresh: steps and run log, atomic publish, idempotency, failures, lock, CLI."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from registry.cli import main
from registry.refresh import STEPS, RefreshFailed, steps
from registry.refresh.lock import RefreshLocked, lock_path, refresh_lock
from registry.refresh.publish import current_stamp
from tests.conftest import write_csv
from tests.test_refresh_support import counts, drop_export, options, refresh


@pytest.fixture(scope="module")
def built_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One published refresh of a 120-patient export, then a second run with nothing new.
    Never handed to a test: each test gets its own copy (`built`), so tests that refresh
    again or break a step cannot change what the others see, in any order."""
    tmp = tmp_path_factory.mktemp("refresh")
    drop_export(tmp, "day1")
    bad = tmp / "inbox" / "day1b"
    bad.mkdir()
    write_csv(bad, "patients", "patient_id,sex,birth_year,email\nQ1,F,1950,a@b.c")
    first = refresh(tmp)
    assert first.status == "published"
    second = refresh(tmp)
    assert second.status == "no work" and "Nothing to do" in second.message
    return tmp


@pytest.fixture
def built(built_once: Path, tmp_path: Path) -> Path:
    """A fresh copy of the built registry, inbox and publish folder for one test (the
    `latest` link is relative, so it points into the copy)."""
    copy = tmp_path / "built"
    shutil.copytree(built_once, copy, symlinks=True)
    return copy


def test_every_step_is_timed_and_recorded(built: Path) -> None:
    (rows,) = counts(
        built / "r.duckdb",
        "SELECT list(step ORDER BY started_at) FROM refresh_runs WHERE run_id = 1 AND status = 'ok' AND finished_at >= started_at",
    )
    assert rows == list(STEPS)


def test_publish_makes_a_dated_build_current_through_latest(built: Path) -> None:
    out = built / "out"
    stamp = current_stamp(out)
    assert stamp and stamp.endswith("-run000001") and (out / "latest").is_symlink()
    assert os.readlink(out / "latest") == f"builds/{stamp}"
    results = json.loads((out / "latest" / "results.json").read_text())
    assert results["cohort"]["n"] > 100
    assert (out / "latest" / "index.html").exists() and (out / "latest" / "tte").is_dir()
    assert (out / "index.html").exists()
    assert not [p for p in (out / "builds").iterdir() if p.name.startswith(".tmp")]


def test_inbox_files_move_to_processed_or_rejected_with_a_reason(built: Path) -> None:
    inbox = built / "inbox"
    assert sorted(p.name for p in inbox.iterdir()) == ["processed", "rejected"]
    processed = sorted(p.name for p in (inbox / "processed").rglob("*.csv"))
    assert len(processed) == 6
    (reason,) = (inbox / "rejected").rglob("*.reason.txt")
    assert reason.name == "patients.csv.reason.txt" and "email" in reason.read_text()
    assert reason.with_name("patients.csv").exists()


def test_a_second_run_with_nothing_new_does_no_work(built: Path) -> None:
    db = built / "r.duckdb"
    (skipped,) = counts(
        db, "SELECT count(*) FROM refresh_runs WHERE run_id = 2 AND status = 'skipped'"
    )
    assert skipped == 4  # tte, models, reports, publish
    assert counts(db, "SELECT count(*) FROM refresh_builds WHERE status = 'published'") == [1]


def test_the_same_file_again_is_only_moved(built: Path, tmp_path: Path) -> None:
    again = built / "inbox" / "again"
    again.mkdir()
    for path in (built / "inbox" / "processed").rglob("patients.csv"):
        (again / "patients.csv").write_bytes(path.read_bytes())
    before = counts(built / "r.duckdb", "SELECT count(*) FROM ingest_batches")
    assert refresh(built).status == "no work"
    assert counts(built / "r.duckdb", "SELECT count(*) FROM ingest_batches") == before
    assert not again.exists()


def test_force_rebuilds_and_history_lists_every_build(built: Path) -> None:
    outcome = refresh(built, force=True)
    assert outcome.status == "published" and current_stamp(built / "out") == outcome.stamp
    page = (built / "out" / "index.html").read_text()
    assert page.count('class="published') == 2 and "history-hr" in page
    assert "first build" in page and f"builds/{outcome.stamp}/index.html" in page


def test_a_failed_step_keeps_the_current_report_and_records_why(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = current_stamp(built / "out")

    def broken(ctx: steps.Context) -> steps.StepResult:
        raise ValueError("the design matrix is singular\n(details)")

    monkeypatch.setattr("registry.refresh.BUILD_STEPS", (("tte", steps.tte), ("models", broken)))
    with pytest.raises(RefreshFailed, match="failed at step models: the design matrix is singular"):
        refresh(built, force=True)
    assert current_stamp(built / "out") == before
    db = built / "r.duckdb"
    failed = counts(
        db, "SELECT failed_step || ': ' || message FROM refresh_builds WHERE status = 'failed'"
    )
    assert failed == ["models: the design matrix is singular (details)"]
    assert not [p for p in (built / "out" / "builds").iterdir() if p.name.startswith(".tmp")]
    assert "at step models" in (built / "out" / "index.html").read_text()


def test_the_cli_refresh_and_status(built: Path) -> None:
    runner = CliRunner()
    args = ["--db", str(built / "r.duckdb"), "--publish", str(built / "out")]
    result = runner.invoke(main, ["refresh", *args, "--inbox", str(built / "inbox")])
    assert result.exit_code == 0 and "Nothing to do" in result.output
    shown = runner.invoke(main, ["status", *args, "--limit", "3"])
    assert shown.exit_code == 0 and "Current report:" in shown.output
    assert "no work" in shown.output
    assert "Nothing to do" in (built / "out" / "refresh.log").read_text()


def test_the_cli_says_why_a_run_failed_in_one_line(tmp_path: Path) -> None:
    study = tmp_path / "broken.toml"
    study.write_text("title = 3\n")
    (tmp_path / "inbox").mkdir()
    args = ["refresh", "--db", str(tmp_path / "r.duckdb"), "--publish", str(tmp_path / "out"),
            "--inbox", str(tmp_path / "inbox"), "--study", str(study)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    error = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and "failed at step" in error[0]


def test_a_second_refresh_at_the_same_time_is_refused(tmp_path: Path) -> None:
    opts = options(tmp_path)
    opts.inbox.mkdir()
    with refresh_lock(lock_path(opts.db), started="now"), pytest.raises(RefreshLocked) as exc:
        refresh(tmp_path)
    assert "another refresh is running" in str(exc.value) and f"pid {os.getpid()}" in str(exc.value)


def test_a_lock_left_by_a_dead_run_is_taken_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = lock_path(tmp_path / "r.duckdb")
    path.write_text("pid 999999 since yesterday\n")
    with caplog.at_level(logging.WARNING, "registry.refresh"):
        with refresh_lock(path, started="now") as stale:
            assert stale == "pid 999999 since yesterday"
        assert "took over the lock" in caplog.text
    assert path.read_text() == ""


def test_history_suppresses_small_changes_in_patients_and_events() -> None:
    from registry.refresh.history import changes

    row = {"status": "published", "has_previous": True, "n_patients": 503, "prev_patients": 500,
           "events": 110, "prev_events": 103, "corrected_rows": 2, "quarantined_rows": 1,
           "hr": 1.1, "prev_hr": 1.0}  # fmt: skip
    found = changes(row, 5)
    assert found["new_patients"] == "withheld"  # 3 new patients is a small cell
    assert found["new_events"] == 7
    assert (found["corrected_rows"], found["quarantined_rows"]) == (2, 1)  # rows, not patients


def test_the_settings_threshold_for_small_cells_reaches_the_report(tmp_path: Path) -> None:
    drop_export(tmp_path, "day1")
    assert refresh(tmp_path, min_cell_count=40).status == "published"
    results = json.loads((tmp_path / "out" / "latest" / "results.json").read_text())
    assert results["small_cell_threshold"] == 40
    again = refresh(tmp_path, min_cell_count=40)
    assert again.status == "no work"
    assert refresh(tmp_path, min_cell_count=10).status == "published"  # a new threshold rebuilds
