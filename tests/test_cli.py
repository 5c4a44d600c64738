"""The CLI: every command has help, errors are one red line with an exit code."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from registry.cli import main
from tests.conftest import PATIENTS, write_csv

COMMANDS = sorted(main.commands)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_text(name: str) -> None:
    command = main.commands[name]
    assert command.help and len(command.help) > 20, name
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{name} {param.opts} has no help"
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def test_init_then_ingest_then_quarantine_and_check(tmp_path: Path) -> None:
    runner = CliRunner()
    db = str(tmp_path / "r.duckdb")
    assert "Initialised" in runner.invoke(main, ["init", "--db", db]).output
    assert "up to date" in runner.invoke(main, ["init", "--db", db]).output
    write_csv(tmp_path, "patients", PATIENTS + "P3,S1,X,1950,,,")
    result = runner.invoke(main, ["ingest", str(tmp_path / "patients.csv"), "--db", db])
    assert result.exit_code == 0, result.output
    assert "inserted 2" in result.output and "quarantined 1 of 3 rows" in result.output
    assert "registry quarantine --batch 1" in result.output
    again = runner.invoke(main, ["ingest", str(tmp_path / "patients.csv"), "--db", db])
    assert "identical to batch 1: nothing changed" in again.output
    shown = runner.invoke(main, ["quarantine", "--db", db, "--batch", "1"])
    assert "bad_enum" in shown.output and "sex" in shown.output
    checked = runner.invoke(main, ["check", "--db", db])
    assert checked.exit_code == 0 and "patient_without_index_fracture" in checked.output


def test_refused_file_exits_2_with_one_error_line(tmp_path: Path) -> None:
    runner = CliRunner()
    db = str(tmp_path / "r.duckdb")
    runner.invoke(main, ["init", "--db", db])
    path = write_csv(tmp_path, "patients", "patient_id,sex,birth_year,email\nP1,F,1950,a@b.c")
    result = runner.invoke(main, ["ingest", str(path), "--db", db])
    assert result.exit_code == 2
    assert "Error:" in result.output and "patients.csv" in result.output
    assert "Traceback" not in result.output


def test_missing_registry_tells_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["check", "--db", str(tmp_path / "none.duckdb")])
    assert result.exit_code == 1
    assert "registry init --db" in result.output


def test_db_path_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "env.duckdb"
    monkeypatch.setenv("REGISTRY_DB", str(db))
    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(main, ["init"]).exit_code == 0
    assert db.exists()


def test_synth_rejects_bad_options_without_a_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["synth", "--out", str(tmp_path), "--patients", "-3"])
    assert result.exit_code == 1 and "Error: synth:" in result.output


def test_demo_builds_a_registry_from_the_synthetic_cohort(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["demo", "--out", str(tmp_path), "--patients", "200", "--as-of", "2026-01-01"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "registry.duckdb").exists()
    assert "quarantined 0" in result.output


def test_tte_writes_parquet_csv_and_a_data_dictionary(tmp_path: Path) -> None:
    runner = CliRunner()
    demo = runner.invoke(main, ["demo", "--out", str(tmp_path / "d"), "--patients", "150",
                                "--as-of", "2026-01-01"])  # fmt: skip
    assert demo.exit_code == 0, demo.output
    out = tmp_path / "tte"
    db = str(tmp_path / "d" / "registry.duckdb")
    result = runner.invoke(main, ["tte", "--db", db, "--out", str(out), "--csv"])
    assert result.exit_code == 0, result.output
    import polars as pl

    outcomes = pl.read_parquet(out / "outcomes.parquet")
    assert set(outcomes["outcome"]) == {"adjacent", "remote", "same_level", "any_new"}
    assert pl.read_csv(out / "counting.csv").height >= outcomes.height
    dictionary = pl.read_csv(out / "data_dictionary.csv")
    described = dictionary.filter(pl.col("file") != "data_policy")
    assert described["description"].null_count() == 0, described.filter(
        pl.col("description").is_null()
    )


def test_tte_reports_every_study_problem_at_once(tmp_path: Path) -> None:
    study = tmp_path / "s.toml"
    study.write_text('outcomes = ["adjacent", "elbow"]\nhorizon_days = -1\ncolour = 1\n')
    db = str(tmp_path / "r.duckdb")
    CliRunner().invoke(main, ["init", "--db", db])
    result = CliRunner().invoke(
        main, ["tte", "--db", db, "--study", str(study), "--out", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "3 problem(s)" in result.output and "s.toml" in result.output
