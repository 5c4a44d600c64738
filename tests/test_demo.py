"""`registry demo`: never overwrites a folder it did not write, reuses its own, and honours
the settings (pseudonym key, small-cell threshold) like every other command."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner, Result

from registry.db import connect
from registry.demo_folder import MARKER, WRITES
from registry.ingest.rules import pseudonymise

ARGS = ["--patients", "150", "--as-of", "2026-01-01"]


def demo(out: Path, *extra: str, env: dict[str, str] | None = None) -> Result:
    from registry.cli import main

    return CliRunner().invoke(main, ["demo", "--out", str(out), *ARGS, *extra], env=env)


@pytest.fixture(autouse=True)
def no_settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in an empty folder with no REGISTRY_* variables, so no registry.toml applies."""
    monkeypatch.chdir(tmp_path)
    for name in ("REGISTRY_DB", "REGISTRY_PSEUDONYM_KEY", "REGISTRY_MIN_CELL_COUNT"):
        monkeypatch.delenv(name, raising=False)


def stored_ids(db: Path) -> set[str]:
    con = connect(db, read_only=True)
    try:
        return {row[0] for row in con.execute("SELECT patient_id FROM patients").fetchall()}
    finally:
        con.close()


def test_a_demo_folder_is_reused_run_after_run(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    for _ in range(2):
        result = demo(out)
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [MARKER, "checklist.md", "index.html", "input", "registry.duckdb", "results.json", "tte"]
    )
    listed = (out / MARKER).read_text().splitlines()
    assert set(WRITES) <= set(listed)


def test_an_empty_folder_is_used(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert demo(tmp_path / "empty").exit_code == 0
    assert (tmp_path / "empty" / "index.html").is_file()


def test_a_folder_with_other_files_is_refused_and_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "project"
    (out / "input").mkdir(parents=True)
    (out / "input" / "patients.csv").write_text("real data\n")
    (out / "registry.duckdb").write_bytes(b"the real registry")
    for name in ("a.txt", "b.txt", "c.txt"):
        (out / name).write_text("mine\n")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    result = demo(out)
    assert result.exit_code == 2
    (error,) = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert "a.txt, b.txt, c.txt and 2 more" in error and "--force" in error
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_a_folder_a_previous_demo_shares_with_other_files_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    assert demo(out).exit_code == 0
    (out / "notes.txt").write_text("my notes\n")
    result = demo(out)
    assert result.exit_code == 2 and "notes.txt" in result.output
    assert (out / "notes.txt").read_text() == "my notes\n"


def test_force_writes_into_a_foreign_folder_and_keeps_the_other_files(tmp_path: Path) -> None:
    out = tmp_path / "project"
    out.mkdir()
    (out / "notes.txt").write_text("my notes\n")
    (out / "registry.duckdb").write_bytes(b"not a database")
    result = demo(out, "--force")
    assert result.exit_code == 0, result.output
    assert (out / "notes.txt").read_text() == "my notes\n"
    assert stored_ids(out / "registry.duckdb")  # replaced by the demo's registry
    assert demo(out).exit_code == 2  # notes.txt is still not the demo's


def test_a_file_as_the_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    result = demo(tmp_path / "f")
    assert result.exit_code == 1 and "is a file" in result.output


def test_the_pseudonym_key_from_the_environment_is_used(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = demo(out, env={"REGISTRY_PSEUDONYM_KEY": "night-key"})
    assert result.exit_code == 0, result.output
    ids = pl.read_csv(out / "input" / "patients.csv")["patient_id"].cast(pl.String)
    assert stored_ids(out / "registry.duckdb") == set(pseudonymise(ids, "night-key"))
    assert not stored_ids(out / "registry.duckdb") & set(ids)


def test_the_min_cell_count_from_the_environment_reaches_the_report(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = demo(out, env={"REGISTRY_MIN_CELL_COUNT": "40"})
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["small_cell_threshold"] == 40


def test_the_database_is_always_the_demo_folders(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.duckdb"
    result = demo(tmp_path / "demo", env={"REGISTRY_DB": str(elsewhere)})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "demo" / "registry.duckdb").is_file() and not elsewhere.exists()


def test_help_says_where_the_database_is_and_what_force_does() -> None:
    from registry.cli import main

    text = " ".join(CliRunner().invoke(main, ["demo", "--help"]).output.split())
    assert "DIR/registry.duckdb" in text and "REGISTRY_PSEUDONYM_KEY" in text
    assert "--force" in text and "REGISTRY_MIN_CELL_COUNT" in text


def test_a_demo_folder_from_before_the_marker_is_reused(tmp_path: Path) -> None:
    """`make demo` keeps working on a build/demo an older version wrote (no marker file)."""
    out = tmp_path / "old-demo"
    assert demo(out).exit_code == 0
    (out / MARKER).unlink()
    result = demo(out)
    assert result.exit_code == 0, result.output
    (out / "input" / "truth.json").unlink()  # without the synthetic cohort's truth: a registry
    (out / MARKER).unlink()
    assert demo(out).exit_code == 2
