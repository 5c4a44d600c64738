"""DuckDB's memory_limit and temp_directory: settings, validation, and every connection."""

import re
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from registry import db
from registry.cli import main
from registry.config import Settings, load_settings
from registry.db import Limits, connect, current_limits, limits
from registry.errors import ConfigError
from registry.pipeline import init_registry, open_registry


def setting(con: duckdb.DuckDBPyConnection, name: str) -> Any:
    """DuckDB's current value of a setting."""
    return con.execute(f"SELECT current_setting('{name}')").fetchall()[0][0]


def test_settings_read_from_toml_then_environment(tmp_path: Path) -> None:
    toml = tmp_path / "registry.toml"
    toml.write_text('memory_limit = "4GB"\ntemp_directory = "spill"\n')
    read = load_settings(toml_path=toml, env={})
    assert (read.memory_limit, read.temp_directory) == ("4GB", Path("spill"))
    env = {"REGISTRY_MEMORY_LIMIT": " 512 MiB ", "REGISTRY_TEMP_DIRECTORY": str(tmp_path)}
    read = load_settings(toml_path=toml, env=env)
    assert (read.memory_limit, read.temp_directory) == ("512MiB", tmp_path)
    assert read.duckdb_limits() == Limits("512MiB", tmp_path)
    assert Settings().duckdb_limits() == Limits()  # DuckDB's own defaults


def test_home_folder_in_paths_is_expanded(tmp_path: Path) -> None:
    # DuckDB would otherwise create a folder literally named "~" in the working directory
    toml = tmp_path / "registry.toml"
    toml.write_text('db = "~/r.duckdb"\ntemp_directory = "~/spill"\n')
    read = load_settings(toml_path=toml, env={})
    assert (read.db, read.temp_directory) == (Path.home() / "r.duckdb", Path.home() / "spill")
    read = load_settings(toml_path=toml, env={"REGISTRY_TEMP_DIRECTORY": "~/other"})
    assert read.temp_directory == Path.home() / "other"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('memory_limit = "lots"\n', 'registry.toml: memory_limit must be an amount with a unit in quotes, like "4GB"'),
        ('memory_limit = "4"\n', "memory_limit must be an amount with a unit"),
        ('memory_limit = "4 parsecs"\n', "got '4 parsecs'"),
        ("memory_limit = 4\n", "got 4"),
        ('memory_limit = "10MB"\n', "registry.toml: memory_limit must be at least 100MB, got '10MB'"),
        ('memory_limit = "0%"\n', "percentage must be at least 1% and at most 100%"),
        ('memory_limit = "0.1%"\n', "percentage must be at least 1% and at most 100%"),
        ('memory_limit = "150%"\n', "percentage must be at least 1% and at most 100%"),
        ("temp_directory = 5\n", "registry.toml: temp_directory must be a folder path"),
        ('temp_directory = " "\n', "temp_directory must be a folder path"),
    ],
)  # fmt: skip
def test_bad_values_name_the_file_and_setting(tmp_path: Path, text: str, message: str) -> None:
    toml = tmp_path / "registry.toml"
    toml.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(toml_path=toml, env={})


def test_a_file_is_no_temp_directory(tmp_path: Path) -> None:
    a_file = tmp_path / "spill"
    a_file.write_text("")
    env = {"REGISTRY_TEMP_DIRECTORY": str(a_file)}
    with pytest.raises(
        ConfigError, match=r"environment variable REGISTRY_TEMP_DIRECTORY: .* is a file"
    ):
        load_settings(toml_path=tmp_path / "none.toml", env=env)


@settings(deadline=None)  # each example opens a DuckDB connection: 350 ms on a loaded machine
@given(
    number=st.integers(min_value=1, max_value=4000),
    unit=st.sampled_from(["GB", "GiB", "gb", "TB", "MB", "MiB"]),
)
def test_every_accepted_limit_is_the_amount_duckdb_applies(number: int, unit: str) -> None:
    """What validation lets through, DuckDB accepts, as the same number of bytes (to its
    rounding): no value passes the settings only to fail at the first connection."""
    factor = {"gb": 1000**3, "gib": 1024**3, "tb": 1000**4, "mb": 1000**2, "mib": 1024**2}
    wanted = number * factor[unit.lower()]
    value = f"{number}{unit}"
    if wanted < 100 * 1000**2:
        with pytest.raises(ConfigError, match="at least 100MB"):
            load_settings(toml_path=Path("/nonexistent"), env={"REGISTRY_MEMORY_LIMIT": value})
        return
    read = load_settings(toml_path=Path("/nonexistent"), env={"REGISTRY_MEMORY_LIMIT": value})
    con = duckdb.connect(config={"memory_limit": str(read.memory_limit)})
    try:
        shown = setting(con, "memory_limit")  # like "3.7 GiB": one decimal of its unit, cut
    finally:
        con.close()
    amount, unit_shown = re.fullmatch(r"([\d.]+) (\w+)", shown).groups()  # type: ignore[union-attr]
    units = {"MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4, "PiB": 1024**5}
    # DuckDB cuts to one decimal of its unit after a floating-point division, so a value a
    # hair under x.9 shows as x.8 (3189GB = 2.9004 TiB shows "2.8 TiB"): allow 0.1 of the
    # unit plus 0.1 % for that rounding
    slack = 0.1 * units[unit_shown] + 1e-3 * wanted
    assert float(amount) * units[unit_shown] == pytest.approx(wanted, abs=slack)


def test_connections_inside_the_block_apply_the_limits(tmp_path: Path) -> None:
    spill = tmp_path / "spill"
    with limits(Limits("1GiB", spill)):
        con = connect()
        assert setting(con, "memory_limit") == "1.0 GiB"
        assert setting(con, "temp_directory") == str(spill)
        con.close()
    con = connect()  # outside the block: DuckDB's own
    assert setting(con, "memory_limit") != "1.0 GiB"
    con.close()
    assert current_limits() == Limits()


def test_the_registry_opens_under_the_limits(tmp_path: Path) -> None:
    path = tmp_path / "registry.duckdb"
    init_registry(path)
    with limits(Limits("300MB", tmp_path / "spill")):
        con = open_registry(path, read_only=True)
        assert setting(con, "memory_limit") == "286.1 MiB"
        assert setting(con, "temp_directory") == str(tmp_path / "spill")
        con.close()


def test_a_deferred_source_is_read_once_at_the_first_connection() -> None:
    reads: list[int] = []

    def source() -> Limits:
        reads.append(1)
        return Limits("2GiB")

    with limits(source):
        assert not reads  # nothing read until a connection opens
        for _ in range(3):
            con = connect()
            assert setting(con, "memory_limit") == "2.0 GiB"
            con.close()
    assert len(reads) == 1


def test_cli_commands_apply_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    real = duckdb.connect

    def spy(path: str, read_only: bool = False, config: dict[str, Any] | None = None) -> Any:
        seen.append(dict(config or {}))
        return real(path, read_only=read_only, config=config or {})

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(db.duckdb, "connect", spy)
    (tmp_path / "registry.toml").write_text('memory_limit = "2GB"\ntemp_directory = "spill"\n')
    result = CliRunner().invoke(main, ["init", "--db", str(tmp_path / "r.duckdb")])
    assert result.exit_code == 0, result.output
    assert seen and all(c["memory_limit"] == "2GB" for c in seen)
    assert all(c["temp_directory"] == "spill" for c in seen)
    seen.clear()
    result = CliRunner(env={"REGISTRY_MEMORY_LIMIT": "3GB"}).invoke(
        main, ["check", "--db", str(tmp_path / "r.duckdb")]
    )
    assert result.exit_code == 0, result.output
    assert seen and all(c["memory_limit"] == "3GB" for c in seen)  # the environment wins


def test_a_bad_limit_is_one_error_line_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner(env={"REGISTRY_MEMORY_LIMIT": "plenty"})
    result = runner.invoke(main, ["init", "--db", str(tmp_path / "r.duckdb")])
    assert result.exit_code == 1
    assert (
        "Error: environment variable REGISTRY_MEMORY_LIMIT: memory_limit must be" in result.output
    )
    assert "Traceback" not in result.output
    # a command that never opens the database does not read the settings
    result = runner.invoke(main, ["synth", "--out", str(tmp_path / "s"), "--patients", "20"])
    assert result.exit_code == 0, result.output


def test_an_unknown_home_folder_is_one_error_naming_the_setting(tmp_path: Path) -> None:
    toml = tmp_path / "registry.toml"
    toml.write_text('temp_directory = "~nosuchuser_zz/spill"\n')
    with pytest.raises(ConfigError, match=r"registry.toml.*~nosuchuser_zz/spill starts with ~"):
        load_settings(toml_path=toml, env={})
