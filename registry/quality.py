"""Cross-table data-quality rules: each file in sql/checks returns the offending rows."""

from __future__ import annotations

import duckdb
import polars as pl

from registry.db import query
from registry.resources import sql_names

VIOLATION_SCHEMA = {
    "check": pl.String,
    "table_name": pl.String,
    "patient_id": pl.String,
    "rule": pl.String,
    "detail": pl.String,
}


def check_names() -> list[str]:
    """Names of the checks, one per file in sql/checks."""
    return sql_names("checks")


def run_check(con: duckdb.DuckDBPyConnection, name: str) -> pl.DataFrame:
    """Offending rows of one check, with the check's name."""
    found = query(con, f"checks/{name}")
    return found.with_columns(pl.lit(name).alias("check")).select(list(VIOLATION_SCHEMA))


def run_checks(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every check's offending rows in one frame."""
    frames = [run_check(con, name) for name in check_names()]
    return pl.concat([pl.DataFrame(schema=VIOLATION_SCHEMA), *frames], how="vertical_relaxed")


def summarise_checks(violations: pl.DataFrame) -> pl.DataFrame:
    """Count of violations and patients per check, every check listed (zeros included)."""
    counts = violations.group_by("check").agg(
        pl.len().alias("violations"),
        # as DuckDB's count(DISTINCT patient_id): a row without a patient is no patient
        pl.col("patient_id").drop_nulls().n_unique().alias("patients"),
    )
    names = pl.DataFrame({"check": check_names()})
    return (
        names.join(counts, on="check", how="left")
        .with_columns(pl.col("violations", "patients").fill_null(0).cast(pl.Int64))
        .sort("check")
    )
