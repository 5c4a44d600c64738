import re
from pathlib import Path

import pytest

from registry.config import Settings, load_settings
from registry.errors import ConfigError


def test_layers_defaults_toml_env_flags(tmp_path: Path) -> None:
    toml = tmp_path / "registry.toml"
    toml.write_text('db = "from_toml.duckdb"\nmin_cell_count = 10\n')
    assert load_settings(toml_path=toml, env={}).db == Path("from_toml.duckdb")
    env = {"REGISTRY_DB": "from_env.duckdb"}
    assert load_settings(toml_path=toml, env=env).db == Path("from_env.duckdb")
    assert load_settings(toml_path=toml, env=env, db="flag.duckdb").db == Path("flag.duckdb")
    assert load_settings(toml_path=toml, env=env).min_cell_count == 10
    assert load_settings(toml_path=tmp_path / "none.toml", env={}) == Settings()


def test_bad_settings_are_reported_with_the_file(tmp_path: Path) -> None:
    toml = tmp_path / "registry.toml"
    toml.write_text("colour = 'red'\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(toml_path=toml, env={})
    with pytest.raises(ConfigError, match="min_cell_count"):
        load_settings(toml_path=tmp_path / "none.toml", env={"REGISTRY_MIN_CELL_COUNT": "zero"})


def test_pseudonym_key_is_never_printed() -> None:
    settings = load_settings(
        toml_path=Path("/nonexistent"), env={"REGISTRY_PSEUDONYM_KEY": "s3cret"}
    )
    assert settings.pseudonym_key == "s3cret"
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("db = 5\n", "registry.toml: db must be a file path"),
        ("db = ''\n", "registry.toml: db must be a file path"),
        ("db = ['a']\n", "registry.toml: db must be a file path"),
        ("min_cell_count = 3.7\n", "registry.toml: min_cell_count must be a whole number, got 3.7"),
        ("min_cell_count = true\n", "registry.toml: min_cell_count must be a whole number"),
        ("min_cell_count = 0\n", "registry.toml: min_cell_count must be at least 1"),
        ("pseudonym_key = 12345\n", "registry.toml: pseudonym_key must be text"),
    ],
)
def test_wrongly_typed_settings_name_the_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    toml = tmp_path / "registry.toml"
    toml.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(toml_path=toml, env={})


def test_the_environment_and_flags_are_named_when_wrong(tmp_path: Path) -> None:
    none = tmp_path / "none.toml"
    with pytest.raises(ConfigError, match=r"environment variable REGISTRY_MIN_CELL_COUNT.*3\.7"):
        load_settings(toml_path=none, env={"REGISTRY_MIN_CELL_COUNT": "3.7"})
    with pytest.raises(ConfigError, match="option --min-cell-count"):
        load_settings(toml_path=none, env={}, min_cell_count="x")
    assert load_settings(toml_path=none, env={"REGISTRY_MIN_CELL_COUNT": " 7 "}).min_cell_count == 7


def test_a_bad_registry_toml_is_one_error_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from registry.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "registry.toml").write_text("db = 5\n")
    result = CliRunner().invoke(main, ["init"])
    assert result.exit_code == 1
    assert "Error:" in result.output and "db must be a file path" in result.output
    assert "Traceback" not in result.output
