"""Discovery: every path given to ingest is loaded or named with a reason; exit statuses."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from registry.cli import main
from registry.ingest import discover, discover_files
from tests.conftest import PATIENTS, write_csv


def reasons(folder: Path) -> dict[str, str]:
    return {s.path.name: s.reason for s in discover([folder]).skipped}


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("fracture.csv", "not a contract table; did you mean fractures.csv?"),
        ("patient.csv", "not a contract table; did you mean patients.csv?"),
        ("Follow-Ups.parquet", "did you mean follow_up.parquet?"),
        ("visits.csv", "not a contract table; expected one of patients.csv, index_fractures.csv"),
        ("index_fractures.txt", ".txt: only .csv and .parquet files are read; save it as "),
        ("export.xls", ".xls: old Excel workbooks are not read — save it as .xlsx"),
        ("patients.tsv", "save it as patients.csv"),
        ("notes", "no extension: only .csv and .parquet files are read"),
    ],
)
def test_a_file_that_is_not_a_contract_table_is_named_with_a_reason(
    tmp_path: Path, name: str, reason: str
) -> None:
    write_csv(tmp_path, "patients", PATIENTS)
    (tmp_path / name).write_text("a,b\n1,2\n")
    found = discover([tmp_path])
    assert [p.name for p, _ in found.files] == ["patients.csv"]
    (skipped,) = found.skipped
    assert skipped.path.name == name and not skipped.ignored
    assert reason in skipped.reason


def test_companion_files_are_named_as_ignored_and_need_no_attention(tmp_path: Path) -> None:
    write_csv(tmp_path, "patients", PATIENTS)
    for name in (".DS_Store", "README.md", "truth.json", "fractures.csv.reason.txt"):
        (tmp_path / name).write_text("x")
    (tmp_path / "2026-01-01").mkdir()
    found = discover([tmp_path])
    assert {s.path.name for s in found.skipped} == {
        ".DS_Store",
        "README.md",
        "truth.json",
        "fractures.csv.reason.txt",
        "2026-01-01",
    }
    assert all(s.ignored for s in found.skipped) and found.unrecognised == []
    assert reasons(tmp_path)["2026-01-01"].startswith("a sub-folder: not searched")


@pytest.mark.parametrize("content", ["nothing", "only a sub-folder", "only misnamed files"])
def test_a_folder_without_a_contract_file_needs_attention(tmp_path: Path, content: str) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    if content == "only a sub-folder":
        (folder / "inner").mkdir()
    if content == "only misnamed files":
        (folder / "fracture.csv").write_text("x\n")
    found = discover([folder])
    assert found.files == []
    assert found.unrecognised[-1].path == folder
    assert found.unrecognised[-1].reason.startswith("no contract file in this folder")


def test_discover_files_keeps_load_order_and_drops_the_rest(tmp_path: Path) -> None:
    for name in ("follow_up", "patients", "fracture"):
        (tmp_path / f"{name}.csv").write_text("x\n")
    assert [s.name for _, s in discover_files([tmp_path])] == ["patients", "follow_up"]


def cli(tmp_path: Path, *args: str) -> tuple[int, str]:
    db = str(tmp_path / "r.duckdb")
    CliRunner().invoke(main, ["init", "--db", db])
    result = CliRunner().invoke(main, ["ingest", *args, "--db", db, "--as-of", "2026-01-01"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_cli_names_unrecognised_files_and_exits_2(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    write_csv(folder, "patients", PATIENTS)
    (folder / "fracture.csv").write_text("patient_id,level,detected_on\n")
    (folder / "book.xlsx").write_bytes(b"PK")
    (folder / ".DS_Store").write_bytes(b"\0")
    code, output = cli(tmp_path, str(folder))
    assert code == 2
    assert "fracture.csv: not a contract table; did you mean fractures.csv?" in output
    assert "book.xlsx: the workbook cannot be read" in output
    assert ".DS_Store: ignored: a hidden file" in output
    assert "patients.csv -> patients (batch 1): read 2" in output
    closing = output.strip().splitlines()[-1]
    assert closing.startswith("Needs attention: 2 not recognised (book.xlsx, fracture.csv)")
    assert closing.endswith("1 file(s) committed.")


def test_cli_empty_folder_exits_2_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, output = cli(tmp_path, str(tmp_path / "empty"))
    assert code == 2 and "no contract file in this folder" in output


def test_cli_clean_folder_exits_0_with_a_done_line(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    write_csv(folder, "patients", PATIENTS)
    (folder / "truth.json").write_text("{}")
    code, output = cli(tmp_path, str(folder))
    assert code == 0, output
    assert output.strip().splitlines()[-1] == "Done: 1 file(s) committed."


def test_cli_entirely_quarantined_file_exits_2(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "follow_up", "patient_id,contact_on,status\nP9,2020-01-01,alive")
    code, output = cli(tmp_path, str(path))
    assert code == 2
    assert "every row of follow_up.csv was quarantined" in output
    assert "1 entirely quarantined (follow_up.csv)" in output


def test_cli_partly_quarantined_file_exits_0(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "patients", PATIENTS + "P3,S1,X,1950,,,")
    code, output = cli(tmp_path, str(path))
    assert code == 0 and "quarantined 1 of 3 rows" in output


def test_cli_refused_file_is_named_in_the_closing_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "patients", "patient_id,sex\nP1,F")
    code, output = cli(tmp_path, str(path))
    assert code == 2 and "1 refused (patients.csv)" in output


@pytest.mark.parametrize("command", [["ingest", "x.csv"], ["check"], ["quarantine"]])
def test_ctrl_c_in_any_command_is_one_line_and_exit_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    def pressed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("registry.config.load_settings", pressed)
    monkeypatch.setattr("registry.cli.load_settings", pressed)
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 130
    assert result.output.strip() == ("Interrupted: the command stopped (Ctrl-C) before it finished")


def test_progress_is_plain_lines_off_a_terminal_and_summaries_come_as_files_commit(
    tmp_path: Path,
) -> None:
    from rich.console import Console

    from registry.console import IngestProgress
    from registry.db import connect
    from registry.ingest import ingest_files
    from registry.migrate import apply_migrations
    from tests.conftest import AS_OF

    write_csv(tmp_path, "patients", PATIENTS)
    write_csv(tmp_path, "follow_up", "patient_id,contact_on,status\nP1,2020-01-01,alive")
    out, err = Console(record=True, width=200), Console(record=True, width=200)
    events: list[str] = []

    class Spy(IngestProgress):
        def start(self, path: Path, index: int, total: int) -> None:
            events.append(f"start {path.name}: {len(out.export_text(clear=False).splitlines())}")
            super().start(path, index, total)

    con = connect()
    apply_migrations(con)
    progress = Spy(out, err)
    run = ingest_files(con, discover([tmp_path]), as_of=AS_OF, reporter=progress)
    progress.close()
    assert run.exit_code == 0
    assert err.export_text().splitlines() == [
        "ingest: ingesting patients.csv (1 of 2)",
        "ingest: ingesting follow_up.csv (2 of 2)",
    ]
    # the patients summary was printed before follow_up.csv started
    assert events == ["start patients.csv: 0", "start follow_up.csv: 1"]


def test_progress_on_a_terminal_is_a_spinner_that_stops(tmp_path: Path) -> None:
    from rich.console import Console

    from registry.console import IngestProgress

    err = Console(force_terminal=True, record=True, width=80)
    progress = IngestProgress(Console(record=True), err)
    progress.start(tmp_path / "patients.csv", 0, 2)
    progress.start(tmp_path / "follow_up.csv", 1, 2)
    assert progress._status is not None
    progress.close()
    assert progress._status is None
    assert "ingest: ingesting" not in err.export_text()
