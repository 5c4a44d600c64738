"""Storing one validated file in one transaction: batch, quarantine, upsert and audit."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from registry.db import fetch_row, scalar
from registry.ingest.chunks import QUARANTINED, TYPED, Checked, quarantine_reasons
from registry.ingest.contract import FileSpec


@dataclass(frozen=True)
class IngestResult:
    """What one file did to the registry."""

    path: Path
    table: str
    batch_id: int
    rows_read: int
    inserted: int
    updated: int
    unchanged: int
    quarantined: int
    repeats: int = 0
    top_reasons: tuple[tuple[str, int], ...] = ()
    ignored_columns: tuple[str, ...] = ()
    same_as_batch: int | None = None
    warnings: tuple[str, ...] = field(default=())

    @property
    def changed(self) -> bool:
        """True when the file inserted or updated anything."""
        return bool(self.inserted or self.updated)


def record_refusal(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    spec: FileSpec,
    sha: str | None,
    started: dt.datetime,
    message: str,
) -> None:
    con.execute(
        "INSERT INTO ingest_batches (file_path, file_name, table_name, sha256, started_at, "
        "finished_at, status, message) VALUES (?, ?, ?, ?, ?, ?, 'refused', ?)",
        [str(path), path.name, spec.name, sha, started, dt.datetime.now(), message],
    )


def store(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    spec: FileSpec,
    checked: Checked,
    *,
    sha: str | None,
    started: dt.datetime,
    extras: tuple[str, ...],
) -> IngestResult:
    previous = fetch_row(
        con,
        "SELECT max(batch_id) FROM ingest_batches WHERE sha256 = ? AND status = 'loaded' "
        "AND table_name = ?",  # a workbook's sheets share the file's SHA-256
        [sha, spec.name],
    )
    con.execute("BEGIN TRANSACTION")
    try:
        batch_id = _open_batch(con, path, spec, sha, started)
        _write_quarantine(con, batch_id, path)
        inserted, updated, unchanged = upsert(con, spec, checked.rows, batch_id=batch_id)
        result = IngestResult(
            path=path,
            table=spec.name,
            batch_id=batch_id,
            rows_read=checked.rows_read,
            inserted=inserted,
            updated=updated,
            unchanged=unchanged + checked.repeats,
            quarantined=checked.quarantined,
            repeats=checked.repeats,
            top_reasons=top_reasons(quarantine_reasons(con)) if checked.quarantined else (),
            ignored_columns=extras,
            same_as_batch=previous[0] if previous else None,
        )
        _close_batch(con, result)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return result


def _open_batch(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    spec: FileSpec,
    sha: str | None,
    started: dt.datetime,
) -> int:
    row = fetch_row(
        con,
        "INSERT INTO ingest_batches (file_path, file_name, table_name, sha256, started_at, status) "
        "VALUES (?, ?, ?, ?, ?, 'loaded') RETURNING batch_id",
        [str(path), path.name, spec.name, sha, started],
    )
    assert row is not None
    return int(row[0])


def _close_batch(con: duckdb.DuckDBPyConnection, r: IngestResult) -> None:
    note = f"ignored columns: {', '.join(r.ignored_columns)}" if r.ignored_columns else None
    con.execute(
        "UPDATE ingest_batches SET rows_read = ?, rows_inserted = ?, rows_updated = ?, "
        "rows_unchanged = ?, rows_quarantined = ?, finished_at = ?, message = ? WHERE batch_id = ?",
        [
            r.rows_read,
            r.inserted,
            r.updated,
            r.unchanged,
            r.quarantined,
            dt.datetime.now(),
            note,
            r.batch_id,
        ],
    )


def _write_quarantine(con: duckdb.DuckDBPyConnection, batch_id: int, path: Path) -> None:
    con.execute(
        "INSERT INTO quarantine (batch_id, file_name, line, column_name, rule, value, detail, "
        f"raw_row) SELECT ?, ?, line, column_name, rule, value, detail, raw_row FROM {QUARANTINED} "
        "ORDER BY line",
        [batch_id, path.name],
    )


def top_reasons(counts: pl.DataFrame, limit: int = 5) -> tuple[tuple[str, int], ...]:
    """The most frequent (column rule, count) pairs, from counts per column_name and rule."""
    counts = counts.sort(["len", "column_name", "rule"], descending=[True, False, False]).head(
        limit
    )
    return tuple(
        (f"{r['rule']} in {r['column_name']}" if r["column_name"] else r["rule"], int(r["len"]))
        for r in counts.iter_rows(named=True)
    )


def upsert(
    con: duckdb.DuckDBPyConnection, spec: FileSpec, rows: int, *, batch_id: int
) -> tuple[int, int, int]:
    """Insert the new keys of ingest_typed, update changed values (old ones to audit) and
    return (inserted, updated, unchanged). Only the changed rows come back to Python.

    The SQL is built here because it names the table and columns of the contract;
    every identifier comes from registry.ingest.contract, never from the input file.
    """
    if not rows:
        return 0, 0, 0
    columns = ", ".join(spec.column_names)
    if not scalar(con, f"SELECT count(*) FROM (SELECT 1 FROM {spec.name} LIMIT 1)"):
        con.execute(f"INSERT INTO {spec.name} SELECT {columns} FROM {TYPED}")  # first load
        return rows, 0, 0
    new = int(scalar(con, f"SELECT count(*) FROM {TYPED} i {_anti_join(spec)}"))
    changed = con.sql(_changed_sql(spec)).pl()
    if new:
        selected = ", ".join(f"i.{c}" for c in spec.column_names)
        con.execute(f"INSERT INTO {spec.name} SELECT {selected} FROM {TYPED} i {_anti_join(spec)}")
    if changed.height:
        _apply_updates(con, spec, changed, batch_id)
    return new, changed.height, rows - new - changed.height


def _anti_join(spec: FileSpec) -> str:
    on = " AND ".join(f"t.{k} = i.{k}" for k in spec.key)
    return f"WHERE NOT EXISTS (SELECT 1 FROM {spec.name} t WHERE {on})"


def _changed_sql(spec: FileSpec) -> str:
    """Stored keys whose incoming values differ: new values, old ones as text, diff flags."""
    on = " AND ".join(f"t.{k} = i.{k}" for k in spec.key)
    diffs = [f"(t.{c} IS DISTINCT FROM i.{c})" for c in spec.value_columns] or ["false"]
    olds = [f"t.{c}::VARCHAR AS __old_{c}" for c in spec.value_columns]
    flags = [f"(t.{c} IS DISTINCT FROM i.{c}) AS __diff_{c}" for c in spec.value_columns]
    selected = [f"i.{c}" for c in spec.column_names] + olds + flags
    return (
        f"SELECT {', '.join(selected)} FROM {TYPED} i JOIN {spec.name} t ON {on} "
        f"WHERE {' OR '.join(diffs)}"
    )


def _apply_updates(
    con: duckdb.DuckDBPyConnection, spec: FileSpec, changed: pl.DataFrame, batch_id: int
) -> None:
    key_text = pl.concat_str(
        [pl.format(f"{k}={{}}", pl.col(k).cast(pl.String)) for k in spec.key], separator=", "
    )
    audit = pl.concat(
        [
            changed.filter(pl.col(f"__diff_{c}")).select(
                key_text.alias("row_key"),
                pl.lit(c).alias("column_name"),
                pl.col(f"__old_{c}").alias("old_value"),
                pl.col(c).cast(pl.String).alias("new_value"),
            )
            for c in spec.value_columns
        ]
    )
    con.register("audit_rows", audit)
    con.register("updates", changed.select(spec.column_names))
    try:
        con.execute(
            "INSERT INTO audit (batch_id, table_name, row_key, column_name, old_value, "
            "new_value, changed_at) SELECT ?, ?, row_key, column_name, old_value, new_value, "
            "current_timestamp FROM audit_rows",
            [batch_id, spec.name],
        )
        sets = ", ".join(f"{c} = u.{c}" for c in spec.value_columns)
        on = " AND ".join(f"{spec.name}.{k} = u.{k}" for k in spec.key)
        con.execute(f"UPDATE {spec.name} SET {sets} FROM updates u WHERE {on}")
    finally:
        con.unregister("audit_rows")
        con.unregister("updates")
