"""The synthetic cohort goes through ingest: clean rows all stored, dirty rows all caught."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from registry.ingest import IngestResult, ingest_paths
from registry.synth import generate_cohort, write_cohort
from tests.conftest import AS_OF


def load(con: duckdb.DuckDBPyConnection, folder: Path) -> dict[str, IngestResult]:
    outcomes = ingest_paths(con, [folder], as_of=AS_OF)
    assert all(isinstance(o, IngestResult) for o in outcomes), outcomes
    return {o.table: o for o in outcomes}  # type: ignore[union-attr]


def test_clean_cohort_is_stored_whole_and_breaks_no_check(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    cohort = generate_cohort(patients=500, seed=7)
    write_cohort(cohort, tmp_path)
    results = load(con, tmp_path)
    for table, frame in cohort.tables.items():
        assert (results[table].inserted, results[table].quarantined) == (frame.height, 0), table
    from registry.quality import run_checks

    assert run_checks(con).is_empty()


def test_every_injected_dirty_row_is_quarantined_under_its_rule(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    cohort = generate_cohort(patients=2000, seed=11, dirty=0.05)
    write_cohort(cohort, tmp_path)
    results = load(con, tmp_path)
    counts = con.sql("SELECT file_name, rule, count(*) AS n FROM quarantine GROUP BY ALL").pl()
    for table, injected in cohort.truth["dirty"].items():
        found = counts.filter(pl.col("file_name") == f"{table}.csv")
        by_rule = dict(zip(found["rule"], found["n"], strict=True))
        for rule, n in injected.items():
            # a conflicting copy quarantines the original line too; rows of a quarantined
            # patient become unknown patients in the later files
            assert by_rule.get(rule, 0) >= n, (table, rule, by_rule)
        result = results[table]
        assert result.rows_read == result.inserted + result.unchanged + result.quarantined
    patients = counts.filter(pl.col("file_name") == "patients.csv")
    exact = dict(zip(patients["rule"], patients["n"], strict=True))
    for rule in ("missing_value", "bad_type", "bad_enum", "out_of_range"):
        assert exact[rule] == cohort.truth["dirty"]["patients"][rule]
