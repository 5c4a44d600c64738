"""DuckDB access: connect, load SQL files, run a named query into Polars."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from registry.resources import sql_text


def connect(path: Path | str = ":memory:", *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the registry database (no extension is ever downloaded)."""
    config: dict[str, str | bool | int | float | list[str]] = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
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
