"""Every SQL file has a header and runs against an empty migrated database."""

from pathlib import Path

import polars as pl
import pytest

from registry.db import load_sql
from registry.models.pro import window_parameters

SQL_DIR = Path(__file__).parent.parent / "sql"  # the source of truth, read through the package

SQL_FILES = sorted(SQL_DIR.rglob("*.sql"))
EMPTY_CSV = Path(__file__).parent / "data" / "empty_patients.csv"
EMPTY_PARQUET = Path(__file__).parent / "data" / "empty_patients.parquet"
PARAMS = {
    "queries/ingest/quarantine_batch": {"batch": 1},
    "queries/ingest/quarantine_rows": {"batch": 1, "site": "S1"},
    "queries/ingest/stage_csv": {"path": str(EMPTY_CSV), "columns": {"c0": "VARCHAR"}},
    "queries/ingest/stage_parquet": {"path": str(EMPTY_PARQUET)},
    "queries/ingest/raw_chunk": {"first": 0, "stop": 10},
    "queries/ingest/loaded_since": {"before": 0, "path": "patients.csv"},
    "queries/refresh/file_seen": {"sha": "0" * 64},
    "queries/refresh/last_runs": {"limit": 10},
    "queries/refresh/run_warnings": {"first_run": 0},
    "queries/analysis/pro_pick": window_parameters(),
    "queries/analysis/pro_pairs": {"instrument": "VAS", "arm": "treated"},
    "queries/analysis/pro_scores": {"instrument": "VAS", "arm": "treated", "visit_code": 0},
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
    if name.startswith("queries/ingest/"):
        # some read what ingesting a file leaves: reject tables and temporary tables
        con.execute(load_sql("queries/ingest/stage_csv"), PARAMS["queries/ingest/stage_csv"])
        con.register("wanted_ordinals", pl.DataFrame(schema={"ordinal": pl.Int64}))
        con.execute("CREATE TEMP TABLE ingest_quarantine (column_name VARCHAR, rule VARCHAR)")
    if name.startswith("queries/analysis/pro_"):  # the caller registers the cohort's anchors
        anchors = {"patient": pl.UInt32, "patient_id": pl.String, "arm": pl.String}
        con.register("pro_anchors", pl.DataFrame(schema=anchors | {"anchor_on": pl.Date}))
        # ... and the other pro_*.sql read the pick (analysis.pro.picked_in_db)
        pick = load_sql("queries/analysis/pro_pick")
        con.execute(f"CREATE TEMP TABLE pro_picked AS {pick}", window_parameters())
    result = con.execute(load_sql(name), PARAMS.get(name) or None)
    rows = result.fetchall()
    if "checks" in path.parts:
        assert rows == []
