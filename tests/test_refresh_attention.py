"""What needs attention after a refresh: refused, unrecognised and entirely quarantined
files are recorded (refresh_warnings), make the CLI exit 2 with a message that says what,
and are listed by `registry status` and the history page; a killed run shows as interrupted;
a missing inbox is an error; messages count in the right number and fit 80 columns."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from registry.cli import main
from registry.pipeline import init_registry
from registry.refresh import runlog
from registry.refresh.history import render_history
from registry.refresh.lock import lock_is_held, lock_path, refresh_lock
from registry.refresh.status import status_lines
from registry.refresh.wording import listing, plural
from tests.conftest import write_csv
from tests.test_refresh_support import counts, drop_export

NOW = dt.datetime(2026, 1, 2, 2, 0, tzinfo=dt.UTC)


def cli_refresh(tmp: Path, *extra: str) -> Result:
    args = ["refresh", "--db", str(tmp / "r.duckdb"), "--inbox", str(tmp / "inbox"),
            "--publish", str(tmp / "out"), "--as-of", "2026-01-01", *extra]  # fmt: skip
    return CliRunner().invoke(main, args)


def cli_status(tmp: Path) -> list[str]:
    result = CliRunner().invoke(
        main, ["status", "--db", str(tmp / "r.duckdb"), "--publish", str(tmp / "out")]
    )
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def fits(lines: list[str]) -> bool:
    """Every line fits 80 columns, except a lone path too long to break."""
    return all(len(line) <= 80 or " " not in line.strip() for line in lines)


@pytest.fixture(scope="module")
def troubled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result]:
    """A night whose inbox holds a good export plus a refused file, files that are not
    contract files, a file whose every row is quarantined, a hidden file and truth.json.
    Tests only read what it left."""
    tmp = tmp_path_factory.mktemp("attention")
    day1 = drop_export(tmp, "day1")
    (day1 / "notes.txt").write_text("<b>export notes</b>\n")
    write_csv(day1, "visits", "patient_id,visited_on\nX,2020-01-01")
    (day1 / "extra").mkdir()
    write_csv(day1 / "extra", "patients", "patient_id,sex,birth_year\nX,F,1950")
    (day1 / ".DS_Store").write_bytes(b"\0")
    bad = tmp / "inbox" / "day1b"
    bad.mkdir()
    write_csv(bad, "patients", "patient_id,sex,birth_year,email\nQ1,F,1950,a@b.c")
    write_csv(bad, "assessments", "patient_id,assessed_on,instrument,score\n"
              "NOBODY1,2024-01-01,VAS,5\nNOBODY2,2024-01-01,VAS,6")  # fmt: skip
    return tmp, cli_refresh(tmp)


def test_a_night_with_problems_publishes_and_exits_2_saying_what(
    troubled: tuple[Path, Result],
) -> None:
    _, result = troubled
    assert result.exit_code == 2, result.output
    (first, *_) = result.stdout.splitlines()
    assert first.startswith("published ") and first.endswith(
        "; needs attention: 1 file refused, 3 files not recognised, 1 file entirely quarantined"
    )
    assert "refused day1b/patients.csv: column" in result.output
    assert "not recognised day1/notes.txt: .txt: text files are not read" in result.output
    assert "not recognised day1/visits.csv: not a contract table; expected one of" in (
        result.output
    )
    assert "entirely quarantined day1b/assessments.csv: every row (2) was quarantined" in (
        result.output
    )
    assert "truth.json" not in result.output and "DS_Store" not in result.output


def test_the_warnings_are_recorded_with_the_run(troubled: tuple[Path, Result]) -> None:
    tmp, _ = troubled
    kinds = counts(tmp / "r.duckdb", "SELECT list(kind || ' ' || file ORDER BY file) "
                   "FROM refresh_warnings WHERE run_id = 1")  # fmt: skip
    assert kinds == [[
        "unrecognised day1/extra/patients.csv",
        "unrecognised day1/notes.txt",
        "unrecognised day1/visits.csv",
        "quarantined day1b/assessments.csv",
        "refused day1b/patients.csv",
    ]]  # fmt: skip


def test_unrecognised_files_move_to_rejected_with_their_reason(
    troubled: tuple[Path, Result],
) -> None:
    tmp, _ = troubled
    rejected = tmp / "inbox" / "rejected"
    reasons = sorted(p.relative_to(rejected).parts[1:] for p in rejected.rglob("*.reason.txt"))
    assert reasons == [
        ("day1", "extra", "patients.csv.reason.txt"),
        ("day1", "notes.txt.reason.txt"),
        ("day1", "visits.csv.reason.txt"),
        ("day1b", "patients.csv.reason.txt"),
    ]
    (notes,) = rejected.rglob("notes.txt.reason.txt")
    assert notes.read_text().startswith("not recognised: .txt: text files are not read")
    assert list((tmp / "inbox" / "processed").rglob("truth.json"))  # set aside, quietly
    assert sorted(p.name for p in (tmp / "inbox").iterdir()) == ["processed", "rejected"]


def test_status_lists_what_needs_attention_in_80_columns(troubled: tuple[Path, Result]) -> None:
    tmp, _ = troubled
    lines = cli_status(tmp)
    text = "\n".join(lines)
    assert "Last 1 run (newest first):" in text
    assert "needs attention: 1 file refused, 3 files not recognised, 1 file entirely" in text
    assert "refused day1b/patients.csv" in text and "not recognised day1/notes.txt" in text
    assert fits(lines), [line for line in lines if len(line) > 80]


def test_the_history_page_lists_the_warnings_escaped(troubled: tuple[Path, Result]) -> None:
    tmp, _ = troubled
    page = (tmp / "out" / "index.html").read_text()
    assert 'class="attention"' in page and "Needs attention (5 files;" in page
    assert "<code>day1b/patients.csv</code>" in page
    assert "not recognised <code>day1/notes.txt</code>" in page
    assert "every row (2) was quarantined" in page


def test_the_run_log_counts_in_the_right_number(troubled: tuple[Path, Result]) -> None:
    tmp, _ = troubled
    messages = dict(
        counts(tmp / "r.duckdb", "SELECT list((step, message)) FROM refresh_runs WHERE run_id = 1")[
            0
        ]
    )
    assert messages["tte"].endswith(" files for 1 study")
    assert messages["models"].startswith("1 study analysed; ")
    assert messages["reports"] == "1 report"
    assert messages["ingest"].startswith("7 files loaded, 1 refused, 3 not recognised")


def test_a_night_with_only_a_refused_file_has_no_work_but_exits_2(tmp_path: Path) -> None:
    drop_export(tmp_path, "day1")
    assert cli_refresh(tmp_path).exit_code == 0  # a clean night
    bad = tmp_path / "inbox" / "day2"
    bad.mkdir()
    write_csv(bad, "patients", "patient_id,sex,birth_year,phone\nQ1,F,1950,0123")
    result = cli_refresh(tmp_path)
    assert result.exit_code == 2
    (first,) = result.stdout.splitlines()
    assert first.startswith("Nothing to do: ")
    assert first.endswith("; needs attention: 1 file refused.")
    page = (tmp_path / "out" / "index.html").read_text()
    assert "no work (nothing new to build)" in page and "day2/patients.csv" in page
    assert cli_refresh(tmp_path).exit_code == 0  # dealt with: the next night is clean


def test_a_missing_inbox_is_an_error_and_nothing_is_published(tmp_path: Path) -> None:
    result = cli_refresh(tmp_path)
    assert result.exit_code == 1
    (error,) = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert f"the inbox {tmp_path / 'inbox'} does not exist" in error and "--inbox" in error
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no registry, no report folder


def killed_run(tmp: Path) -> Path:
    """A registry whose run 1 was left 'running' at step models (as by SIGKILL)."""
    db = tmp / "r.duckdb"
    init_registry(db)
    run_id = runlog.begin_run(db, started=NOW, as_of=NOW.date())
    runlog.start_step(db, run_id, "models", at=NOW)
    return db


def test_a_run_whose_process_is_gone_shows_as_interrupted(tmp_path: Path) -> None:
    db = killed_run(tmp_path)
    assert not lock_is_held(db)
    lines = status_lines(db, tmp_path / "out", limit=5)
    assert "  run 1: interrupted, started 2026-01-02 02:00 UTC, -" in lines
    assert any("the process stopped during step models" in line for line in lines)
    assert "None" not in "\n".join(lines) and fits(lines)


def test_a_run_whose_process_holds_the_lock_shows_as_running(tmp_path: Path) -> None:
    db = killed_run(tmp_path)
    with refresh_lock(lock_path(db), started="now"):
        assert lock_is_held(db)
        lines = status_lines(db, tmp_path / "out", limit=5)
    assert "  run 1: running, started 2026-01-02 02:00 UTC, still running" in lines
    assert not lock_is_held(db)


def test_an_interrupted_step_is_not_shown_as_step_none(tmp_path: Path) -> None:
    db = killed_run(tmp_path)
    run_id = runlog.begin_run(db, started=NOW, as_of=NOW.date())  # the next run marks run 1
    runlog.start_step(db, run_id, "migrate", at=NOW)
    runlog.end_step(db, run_id, "migrate", at=NOW, status="ok")
    lines = status_lines(db, tmp_path / "out", limit=5)
    assert "Last 2 runs (newest first):" in lines
    assert any("stopped at step models (the process was killed)" in line for line in lines)
    assert "None" not in "\n".join(lines)


def test_the_history_page_shows_a_dead_running_build_as_interrupted() -> None:
    row = {"run_id": 3, "stamp": "s3", "as_of": "2026-01-01", "started_at": NOW,
           "finished_at": None, "status": "running", "failed_step": None}  # fmt: skip
    assert 'class="interrupted"' in render_history([row], current=None, lock_held=False)
    assert 'class="running"' in render_history([row], current=None, lock_held=True)


@pytest.mark.parametrize(
    ("n", "noun", "expected"),
    [(1, "study", "1 study"), (2, "study", "2 studies"), (0, "file", "0 files"),
     (1, "run", "1 run"), (1_500, "patient", "1,500 patients")],
)  # fmt: skip
def test_plural(n: int, noun: str, expected: str) -> None:
    assert plural(n, noun) == expected


def test_listing_names_at_most_three() -> None:
    assert listing(["a"]) == "a" and listing(["a", "b"]) == "a and b"
    assert listing(["a", "b", "c", "d", "e"]) == "a, b, c and 2 more"


def test_a_misnamed_inbox_file_gets_ingests_suggestion(tmp_path: Path) -> None:
    """The inbox names stray files with ingest's own reasons, nearest table name included."""
    from registry.refresh.inbox import not_recognised_because

    export = tmp_path / "day1"
    export.mkdir()
    (export / "fracture.csv").write_text("patient_id\n")
    (export / "book.xlsx").write_bytes(b"PK")
    assert "did you mean fractures.csv?" in not_recognised_because(export, export / "fracture.csv")
    assert "the workbook cannot be read" in not_recognised_because(export, export / "book.xlsx")
