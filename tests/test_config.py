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
