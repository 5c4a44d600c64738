"""Settings: defaults < registry.toml < REGISTRY_* environment < CLI flags."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from registry.db import Limits
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
    memory_limit: str | None = None  # DuckDB's memory_limit ("4GB"); None: DuckDB's own
    temp_directory: Path | None = None  # where DuckDB spills; None: <db>.tmp beside the file

    def __repr__(self) -> str:  # never print the key
        key = "set" if self.pseudonym_key else "unset"
        return (
            f"Settings(db={self.db!s}, pseudonym_key={key}, min_cell_count={self.min_cell_count})"
        )

    def duckdb_limits(self) -> Limits:
        """What every DuckDB connection of a command applies (registry.db.limits)."""
        return Limits(self.memory_limit, self.temp_directory)


def _path(value: Any, where: str) -> Path:
    if not isinstance(value, str | Path) or not str(value).strip():
        raise ConfigError(f"{where}: db must be a file path in quotes, got {value!r}")
    return _home(Path(value), where)  # "~/registry.duckdb" in a TOML file is the home folder


def _home(path: Path, where: str) -> Path:
    """The path with a leading ~ or ~user expanded; an error naming the setting when there is
    no such home folder (an unknown user, HOME unset)."""
    try:
        return path.expanduser()
    except RuntimeError:
        raise ConfigError(
            f"{where}: {path} starts with ~ but that home folder is unknown; write the full path"
        ) from None


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


_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
          "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}  # fmt: skip
_AMOUNT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+|%)\s*", re.IGNORECASE)


def _memory_limit(value: Any, where: str) -> str | None:
    # Checked here, not by DuckDB at the first connection: its "Memory must have a number"
    # would not say which setting was wrong. Below 100 MB the registry's queries cannot run.
    if value is None or value == "":
        return None
    found = _AMOUNT.fullmatch(value) if isinstance(value, str) else None
    unit = found.group(2).lower() if found else ""
    if not found or (unit != "%" and unit not in _UNITS):
        raise ConfigError(
            f'{where}: memory_limit must be an amount with a unit in quotes, like "4GB", '
            f'"512MiB" or "50%" (of the machine\'s memory), got {value!r}'
        )
    number = float(found.group(1))
    if unit == "%" and not 1 <= number <= 100:  # under 1 %, a small machine is under 100MB
        raise ConfigError(
            f"{where}: memory_limit as a percentage must be at least 1% and at most 100%, "
            f"got {value!r}"
        )
    if unit != "%" and number * _UNITS[unit] < 100 * 1000**2:
        raise ConfigError(f"{where}: memory_limit must be at least 100MB, got {value!r}")
    return f"{found.group(1)}{'%' if unit == '%' else found.group(2)}"


def _temp_directory(value: Any, where: str) -> Path | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str | Path) or not str(value).strip():
        raise ConfigError(f"{where}: temp_directory must be a folder path in quotes, got {value!r}")
    path = _home(Path(value), where)  # DuckDB would create a folder named "~"
    if path.exists() and not path.is_dir():
        raise ConfigError(
            f"{where}: temp_directory {path} is a file, not a folder; name a folder DuckDB "
            "may create and spill into"
        )
    return path


COERCE: dict[str, Callable[[Any, str], Any]] = {
    "db": _path,
    "min_cell_count": _whole_number,
    "pseudonym_key": _key,
    "workers": _workers,
    "dask_scheduler": _scheduler,
    "memory_limit": _memory_limit,
    "temp_directory": _temp_directory,
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
