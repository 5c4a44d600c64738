"""Settings: defaults < registry.toml < REGISTRY_* environment < CLI flags."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from registry.errors import ConfigError


@dataclass(frozen=True)
class Scheduler:
    """A Dask scheduler address and the setting it came from (named when it cannot be reached)."""

    address: str
    source: str


@dataclass(frozen=True)
class Settings:
    """Everything the CLI can configure, validated once."""

    db: Path = Path("registry.duckdb")
    pseudonym_key: str | None = None
    min_cell_count: int = 5
    workers: int | None = None  # processes for replicate work; None: the machine's cores
    dask_scheduler: Scheduler | None = None  # a Dask cluster for replicate work

    def __repr__(self) -> str:  # never print the key
        key = "set" if self.pseudonym_key else "unset"
        return (
            f"Settings(db={self.db!s}, pseudonym_key={key}, min_cell_count={self.min_cell_count})"
        )


def _path(value: Any, where: str) -> Path:
    if isinstance(value, Path):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: db must be a file path in quotes, got {value!r}")
    return Path(value)


def _whole_number(value: Any, where: str) -> int:
    # TOML gives int or float; the environment and flags give text or int. 3.7 or "3.7" is an
    # error, not 3: a silently lowered small-cell threshold would publish smaller counts.
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"{where}: min_cell_count must be a whole number, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(
            f"{where}: min_cell_count must be a whole number, got {value!r}"
        ) from None
    if number < 1:
        raise ConfigError(f"{where}: min_cell_count must be at least 1, got {number}")
    return number


def _key(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(
            f"{where}: pseudonym_key must be text in quotes, got a {type(value).__name__}"
        )
    return value


def _workers(value: Any, where: str) -> int:
    # like min_cell_count: 2.5 or "two" is an error, not a guess
    text = str(value).strip() if isinstance(value, int | str) else ""
    if isinstance(value, bool) or not text.lstrip("-").isdigit():
        raise ConfigError(f"{where}: workers must be a whole number, got {value!r}")
    if int(text) < 1:
        raise ConfigError(f"{where}: workers must be at least 1, got {int(text)}")
    return int(text)


SCHEMES = ("tcp://", "tls://", "ws://", "wss://", "ucx://")
FLAGS = {"dask_scheduler": "scheduler"}  # settings whose command-line flag has another name


def _scheduler(value: Any, where: str) -> Scheduler | None:
    if value is None or value == "":
        return None
    address = value.strip() if isinstance(value, str) else ""
    host, _, port = address.removeprefix(address.split("://")[0] + "://").rpartition(":")
    known = address.startswith(SCHEMES) or "://" not in address
    if not known or not host or not port.isdigit() or any(c.isspace() for c in address):
        raise ConfigError(
            f"{where}: dask_scheduler must be a scheduler address such as "
            f"tcp://scheduler-host:8786, got {value!r}"
        )
    return Scheduler(address, where)


COERCE: dict[str, Callable[[Any, str], Any]] = {
    "db": _path,
    "min_cell_count": _whole_number,
    "pseudonym_key": _key,
    "workers": _workers,
    "dask_scheduler": _scheduler,
}


def _read_toml(path: Path, names: set[str]) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    unknown = sorted(set(data) - names)
    if unknown:
        known = ", ".join(sorted(names))
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: {known}")
    return {name: (value, str(path)) for name, value in data.items()}


def _flag(name: str) -> str:
    return f"option --{FLAGS.get(name, name).replace('_', '-')}"


def load_settings(
    *, toml_path: Path | None = None, env: Mapping[str, str] | None = None, **flags: Any
) -> Settings:
    """Merge the layers of configuration into one Settings, naming the source of a bad value."""
    names = {f.name for f in fields(Settings)}
    values: dict[str, tuple[Any, str]] = {}
    path = toml_path or Path("registry.toml")
    if path.exists():
        values.update(_read_toml(path, names))
    environ = os.environ if env is None else env
    for name in names:
        variable = f"REGISTRY_{name.upper()}"
        if variable in environ:
            values[name] = (environ[variable], f"environment variable {variable}")
    values.update({k: (v, _flag(k)) for k, v in flags.items() if v is not None})
    return replace(Settings(), **{k: COERCE[k](v, where) for k, (v, where) in values.items()})
