import duckdb
import pytest

from registry.db import connect
from registry.errors import MigrationError
from registry.migrate import apply_migrations, available_migrations


def test_migrations_apply_once_and_are_recorded() -> None:
    con = connect()
    applied = apply_migrations(con)
    assert applied == available_migrations()
    assert apply_migrations(con) == []
    recorded = con.execute("SELECT name FROM schema_migrations ORDER BY name").fetchall()
    assert [name for (name,) in recorded] == applied
    tables = {
        r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    for name in (
        "patients",
        "index_fractures",
        "procedures",
        "assessments",
        "fractures",
        "follow_up",
        "ingest_batches",
        "quarantine",
        "audit",
        "schema_migrations",
    ):
        assert name in tables


def test_unknown_migration_in_database_is_refused() -> None:
    con = connect()
    apply_migrations(con)
    con.execute("INSERT INTO schema_migrations (name) VALUES ('9999_from_the_future')")
    with pytest.raises(MigrationError, match="9999_from_the_future"):
        apply_migrations(con)


def test_check_constraints_are_the_last_line_of_defence(con) -> None:  # type: ignore[no-untyped-def]
    import duckdb

    with pytest.raises(duckdb.ConstraintException):
        con.execute("INSERT INTO patients VALUES ('P1', NULL, 'X', 1950, NULL, NULL, NULL)")
    con.execute("INSERT INTO patients VALUES ('P1', NULL, 'F', 1950, NULL, NULL, NULL)")
    with pytest.raises(duckdb.ConstraintException):
        con.execute("INSERT INTO assessments VALUES ('P1', DATE '2020-01-01', 'VAS', 11)")


def test_migration_0004_keeps_rows_and_checks_but_drops_key_indexes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from registry import migrate
    from registry.quality import run_check

    con = connect(tmp_path / "old.duckdb")
    older = [m for m in available_migrations() if m < "0004"]
    migrate.applied_migrations(con)  # creates schema_migrations
    for name in older:
        migrate._apply_one(con, name)
    con.execute("INSERT INTO patients VALUES ('P1', 'S1', 'F', 1950, -2.5, false, 0)")
    with pytest.raises(duckdb.ConstraintException, match=r"(?i)constraint"):
        con.execute("INSERT INTO patients VALUES ('P1', 'S1', 'F', 1950, -2.5, false, 0)")
    assert apply_migrations(con)[0] == "0004_drop_primary_key_indexes"
    assert con.execute("SELECT patient_id, birth_year FROM patients").fetchall() == [("P1", 1950)]
    with pytest.raises(duckdb.ConstraintException, match=r"(?i)constraint"):
        con.execute("INSERT INTO patients VALUES ('P2', 'S1', 'X', 1950, NULL, NULL, NULL)")
    con.execute("INSERT INTO patients VALUES ('P1', 'S1', 'F', 1950, -2.5, false, 0)")
    assert run_check(con, "duplicate_natural_key").height == 1
