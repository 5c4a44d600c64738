"""Every SQL file has a header and runs against an empty migrated database."""

from pathlib import Path

import pytest

from registry.db import SQL_DIR, load_sql

SQL_FILES = sorted(SQL_DIR.rglob("*.sql"))
EMPTY_CSV = Path(__file__).parent / "data" / "empty_patients.csv"
PARAMS = {
    "queries/ingest/quarantine_batch": {"batch": 1},
    "queries/ingest/read_csv": {"path": str(EMPTY_CSV), "columns": {"patient_id": "VARCHAR"}},
    "queries/refresh/file_seen": {"sha": "0" * 64},
    "queries/refresh/last_runs": {"limit": 10},
}


def name_of(path: Path) -> str:
    return str(path.relative_to(SQL_DIR).with_suffix(""))


@pytest.mark.parametrize("path", SQL_FILES, ids=name_of)
def test_every_sql_file_starts_with_a_contract_header(path: Path) -> None:
    head = path.read_text(encoding="utf-8").splitlines()[:12]
    text = "\n".join(head)
    assert head[0].startswith("-- Purpose:"), path
    assert "-- Grain:" in text and "-- Parameters:" in text, path


@pytest.mark.parametrize("path", [p for p in SQL_FILES if "migrations" not in p.parts], ids=name_of)
def test_every_query_view_and_check_runs_on_an_empty_registry(con, path: Path) -> None:  # type: ignore[no-untyped-def]
    name = name_of(path)
    if name == "queries/ingest/csv_rejects":  # reads the reject tables of a previous scan
        con.execute(
            load_sql("queries/ingest/read_csv"), PARAMS["queries/ingest/read_csv"]
        ).fetchall()
    result = con.execute(load_sql(name), PARAMS.get(name) or None)
    rows = result.fetchall()
    if "checks" in path.parts:
        assert rows == []
