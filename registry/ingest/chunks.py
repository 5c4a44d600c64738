"""Row rules over a staged file, chunk by chunk, then the duplicate-key rule over all of it.

The typed rows that pass go to the temporary table ingest_typed and the quarantined lines
to ingest_quarantine; storing reads both from there. Python holds one chunk at a time,
plus the copies of keys that repeat inside the file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import polars as pl

from registry.db import query, scalar
from registry.ingest.contract import FileSpec
from registry.ingest.rules import (
    EXCEL_ERROR,
    check_rows,
    clean_strings,
    conflicting_keys,
    first_violation_per_line,
    pseudonymise,
)
from registry.ingest.staging import Staged, raw_chunks, raw_rows_at
from registry.pseudonyms import scrub_rejects

TYPED = "ingest_typed"  # rows of the file that passed every rule, typed, with `line`
QUARANTINED = "ingest_quarantine"  # one row per rejected line (QUARANTINE_SCHEMA)
CHUNK_ROWS = 500_000  # lines validated at a time


@dataclass(frozen=True)
class Checked:
    """Counts of a validated file whose rows wait in ingest_typed / ingest_quarantine."""

    rows_read: int
    rows: int  # typed rows to store
    quarantined: int
    repeats: int  # exact repeats of a line inside the file (no-ops)


def validate_staged(
    con: duckdb.DuckDBPyConnection,
    staged: Staged,
    spec: FileSpec,
    *,
    as_of: dt.date,
    patients: pl.DataFrame,
    pseudonym_key: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Checked:
    """Apply every row rule of the contract to a staged file; see the module docstring."""
    _create_tables(con, spec)
    for raw in raw_chunks(con, staged, chunk_rows):
        typed, quarantine = check_rows(
            _pseudonymised(raw, pseudonym_key), spec, as_of=as_of, patients=patients
        )
        _append(con, TYPED, typed)
        _append(con, QUARANTINED, quarantine)
    repeats = _settle_repeated_keys(con, staged, spec, pseudonym_key)
    # the whole header: a malformed line's fields are aligned with every column of the file
    names = list(staged.header)
    _append(con, QUARANTINED, scrub_rejects(staged.rejects, names=names, key=pseudonym_key))
    return Checked(
        rows_read=staged.rows + staged.rejects.height,
        rows=int(scalar(con, f"SELECT count(*) FROM {TYPED}")),
        quarantined=int(scalar(con, f"SELECT count(*) FROM {QUARANTINED}")),
        repeats=repeats,
    )


def _pseudonymised(raw: pl.DataFrame, key: str | None) -> pl.DataFrame:
    """Replace raw ids by pseudonyms; a blank id stays blank (missing_value), never HMAC("")."""
    if not key or "patient_id" not in raw.columns:
        return raw
    ids = raw.get_column("patient_id").cast(pl.String).str.strip_chars().replace("", None)
    # an Excel error (#N/A) is no identifier: kept so that the excel_error rule names it
    errors = ids.str.contains(EXCEL_ERROR).fill_null(False)
    hashed = pseudonymise(ids, key)
    return raw.with_columns(pl.when(errors).then(ids).otherwise(hashed).alias("patient_id"))


def _create_tables(con: duckdb.DuckDBPyConnection, spec: FileSpec) -> None:
    """Empty ingest_typed (line + the contract table's typed columns) and ingest_quarantine.

    The SQL is built here because it names the contract table; identifiers come from
    registry.ingest.contract, never from the input file."""
    columns = ", ".join(spec.column_names)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {TYPED} AS "
        f"SELECT 0::BIGINT AS line, {columns} FROM {spec.name} LIMIT 0"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {QUARANTINED} (line BIGINT, column_name VARCHAR, "
        "rule VARCHAR, value VARCHAR, detail VARCHAR, raw_row VARCHAR)"
    )


def _append(con: duckdb.DuckDBPyConnection, table: str, rows: pl.DataFrame) -> None:
    if rows.is_empty():
        return
    con.register("appended_rows", rows)
    try:
        names = ", ".join(rows.columns)
        con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM appended_rows")
    finally:
        con.unregister("appended_rows")


def _settle_repeated_keys(
    con: duckdb.DuckDBPyConnection, staged: Staged, spec: FileSpec, pseudonym_key: str | None
) -> int:
    """Keep one copy of a key repeated with the same values and quarantine every copy of a
    key repeated with different ones; return the number of exact repeats dropped."""
    keys = ", ".join(spec.key)
    doubles = con.sql(
        f"SELECT t.* FROM {TYPED} t SEMI JOIN (SELECT {keys} FROM {TYPED} "
        f"GROUP BY {keys} HAVING count(*) > 1) d USING ({keys}) ORDER BY t.line"
    ).pl()
    if doubles.is_empty():
        return 0
    clean, clashes = conflicting_keys(doubles, spec)
    dropped = doubles.join(clean.select("line"), on="line", how="anti").select("line")
    con.register("dropped_lines", dropped)
    try:
        con.execute(f"DELETE FROM {TYPED} WHERE line IN (SELECT line FROM dropped_lines)")
    finally:
        con.unregister("dropped_lines")
    if clashes.height:
        raw = _pseudonymised(raw_rows_at(con, staged, clashes.get_column("line")), pseudonym_key)
        _append(con, QUARANTINED, first_violation_per_line(clashes, clean_strings(raw, spec)))
    return doubles.height - clean.height - clashes.height


def quarantine_reasons(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Count of quarantined lines per (column_name, rule) of the file being ingested."""
    return query(con, "queries/ingest/quarantine_reasons")


def drop_checked(con: duckdb.DuckDBPyConnection) -> None:
    """Forget the checked rows (the temporary tables)."""
    con.execute(f"DROP TABLE IF EXISTS {TYPED}; DROP TABLE IF EXISTS {QUARANTINED}")
