"""DuckDB access: connect, load SQL files, run a named query into Polars."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from registry.resources import sql_text


@dataclass(frozen=True)
class Limits:
    """DuckDB's memory_limit (DuckDB syntax, "4GB") and temp_directory for spilling joins and
    aggregations; None keeps DuckDB's own (80 % of RAM; <database>.tmp next to the file)."""

    memory_limit: str | None = None
    temp_directory: Path | None = None


# The limits every connect() applies: set once per command by the CLI (from the settings) or
# by a library caller with `limits(...)`; a callable is resolved at the first connection, so
# commands that never open the database never read the settings.
_LIMITS: ContextVar[Limits | Callable[[], Limits] | None] = ContextVar(
    "duckdb_limits", default=None
)


@contextmanager
def limits(source: Limits | Callable[[], Limits]) -> Iterator[None]:
    """Apply these DuckDB limits to every connection opened inside the block."""
    token = _LIMITS.set(source)
    try:
        yield
    finally:
        _LIMITS.reset(token)


def current_limits() -> Limits:
    """The limits connect() applies now (a deferred source is resolved once, here)."""
    found = _LIMITS.get()
    if found is None:
        return Limits()
    if callable(found):
        found = found()
        _LIMITS.set(found)
    return found


def connect(path: Path | str = ":memory:", *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the registry database (no extension is ever downloaded) under the current limits."""
    config: dict[str, str | bool | int | float | list[str]] = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    found = current_limits()
    if found.memory_limit is not None:
        config["memory_limit"] = found.memory_limit
    if found.temp_directory is not None:
        config["temp_directory"] = str(found.temp_directory)
    return duckdb.connect(str(path), read_only=read_only, config=config)


def load_sql(name: str) -> str:
    """Text of sql/<name>.sql (name like 'checks/fracture_before_index'), from the package."""
    return sql_text(name)


def query(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> pl.DataFrame:
    """Run sql/<name>.sql with $named parameters and materialise it once as Polars."""
    return con.sql(load_sql(name), params=params or None).pl()


def fetch_row(
    con: duckdb.DuckDBPyConnection, text: str, params: list[Any] | None = None
) -> tuple[Any, ...] | None:
    """First row of a short statement, fetched to the end (DuckDB 2 refuses new work on a
    connection while a result is only partly read)."""
    rows = con.execute(text, params or []).fetchall()
    return rows[0] if rows else None


def scalar(con: duckdb.DuckDBPyConnection, text: str, params: list[Any] | None = None) -> Any:
    """First column of the first row of a short statement."""
    row = fetch_row(con, text, params)
    return None if row is None else row[0]
