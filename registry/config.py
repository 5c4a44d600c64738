"""Settings: defaults < registry.toml < REGISTRY_* environment < CLI flags."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from registry.errors import ConfigError


@dataclass(frozen=True)
class Settings:
    """Everything the CLI can configure, validated once."""

    db: Path = Path("registry.duckdb")
    pseudonym_key: str | None = None
    min_cell_count: int = 5

    def __repr__(self) -> str:  # never print the key
        key = "set" if self.pseudonym_key else "unset"
        return (
            f"Settings(db={self.db!s}, pseudonym_key={key}, min_cell_count={self.min_cell_count})"
        )


def _coerce(name: str, value: Any) -> Any:
    if name == "db":
        return Path(value)
    if name == "min_cell_count":
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"min_cell_count must be a whole number, got {value!r}") from None
        if number < 1:
            raise ConfigError(f"min_cell_count must be at least 1, got {number}")
        return number
    return None if value in ("", None) else str(value)


def load_settings(
    *, toml_path: Path | None = None, env: dict[str, str] | None = None, **flags: Any
) -> Settings:
    """Merge the layers of configuration into one Settings."""
    names = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    path = toml_path or Path("registry.toml")
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}")
        values.update(data)
    environ = os.environ if env is None else env
    for name in names:
        if f"REGISTRY_{name.upper()}" in environ:
            values[name] = environ[f"REGISTRY_{name.upper()}"]
    values.update({k: v for k, v in flags.items() if v is not None})
    return replace(Settings(), **{k: _coerce(k, v) for k, v in values.items()})
