"""Apply sql/migrations in order, each in a transaction with its record."""

from __future__ import annotations

import duckdb

from registry.db import load_sql
from registry.errors import MigrationError
from registry.resources import sql_names


def available_migrations() -> list[str]:
    """Names of the migration files, in the order they apply."""
    return [name for name in sql_names("migrations") if name[:1].isdigit()]


def applied_migrations(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Names already recorded in schema_migrations."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(name VARCHAR PRIMARY KEY, applied_at TIMESTAMP DEFAULT current_timestamp)"
    )
    return [
        r[0] for r in con.execute("SELECT name FROM schema_migrations ORDER BY name").fetchall()
    ]


def apply_migrations(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply the pending migrations and re-create the views; return what was applied."""
    done = applied_migrations(con)
    unknown = sorted(set(done) - set(available_migrations()))
    if unknown:
        raise MigrationError(
            f"the database has migrations this code does not know: {', '.join(unknown)}; "
            "upgrade vertebral-registry"
        )
    pending = [name for name in available_migrations() if name not in done]
    for name in pending:
        _apply_one(con, name)
    apply_views(con)
    return pending


def _apply_one(con: duckdb.DuckDBPyConnection, name: str) -> None:
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(load_sql(f"migrations/{name}"))
        con.execute("INSERT INTO schema_migrations (name) VALUES (?)", [name])
        con.execute("COMMIT")
    except duckdb.Error as exc:
        con.execute("ROLLBACK")
        raise MigrationError(f"migration {name} failed: {exc}") from None


def apply_views(con: duckdb.DuckDBPyConnection) -> None:
    """(Re-)create every view in sql/views."""
    for name in sql_names("views"):
        con.execute(load_sql(f"views/{name}"))
