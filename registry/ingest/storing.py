"""Storing one validated file in one transaction: batch, quarantine, upsert and audit."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from registry.contract import FileSpec
from registry.db import fetch_row, scalar
from registry.validate import Validated


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
    checked: Validated,
    rows_read: int,
    *,
    sha: str | None,
    started: dt.datetime,
    extras: tuple[str, ...],
) -> IngestResult:
    previous = fetch_row(
        con,
        "SELECT max(batch_id) FROM ingest_batches WHERE sha256 = ? AND status = 'loaded'",
        [sha],
    )
    con.execute("BEGIN TRANSACTION")
    try:
        batch_id = _open_batch(con, path, spec, sha, started)
        _write_quarantine(con, batch_id, path, checked.quarantine)
        inserted, updated, unchanged = upsert(con, spec, checked.rows, batch_id=batch_id)
        result = IngestResult(
            path=path,
            table=spec.name,
            batch_id=batch_id,
            rows_read=rows_read,
            inserted=inserted,
            updated=updated,
            unchanged=unchanged + checked.repeats,
            quarantined=checked.quarantine.height,
            repeats=checked.repeats,
            top_reasons=top_reasons(checked.quarantine),
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


def _write_quarantine(
    con: duckdb.DuckDBPyConnection, batch_id: int, path: Path, rows: pl.DataFrame
) -> None:
    if rows.is_empty():
        return
    staged = rows.with_columns(
        pl.lit(batch_id, dtype=pl.Int64).alias("batch_id"), pl.lit(path.name).alias("file_name")
    )
    con.register("staged_quarantine", staged)
    try:
        con.execute(
            "INSERT INTO quarantine (batch_id, file_name, line, column_name, rule, value, detail, "
            "raw_row) SELECT batch_id, file_name, line, column_name, rule, value, detail, raw_row "
            "FROM staged_quarantine"
        )
    finally:
        con.unregister("staged_quarantine")


def top_reasons(quarantine: pl.DataFrame, limit: int = 5) -> tuple[tuple[str, int], ...]:
    """The most frequent (column rule, count) pairs among quarantined lines."""
    if quarantine.is_empty():
        return ()
    counts = (
        quarantine.group_by("column_name", "rule")
        .len()
        .sort(["len", "column_name", "rule"], descending=[True, False, False])
        .head(limit)
    )
    return tuple(
        (f"{r['rule']} in {r['column_name']}", int(r["len"])) for r in counts.iter_rows(named=True)
    )


def upsert(
    con: duckdb.DuckDBPyConnection, spec: FileSpec, rows: pl.DataFrame, *, batch_id: int
) -> tuple[int, int, int]:
    """Insert new keys, update changed values (old ones to audit); return the three counts.

    The SQL is built here because it names the table and columns of the contract;
    every identifier comes from registry.contract, never from the input file.
    """
    if rows.is_empty():
        return 0, 0, 0
    incoming = rows.drop("line")
    con.register("incoming", incoming)
    try:
        if not scalar(con, f"SELECT count(*) FROM (SELECT 1 FROM {spec.name} LIMIT 1)"):
            con.execute(f"INSERT INTO {spec.name} SELECT * FROM incoming")  # first load
            return incoming.height, 0, 0
        compared = con.sql(_compare_sql(spec)).pl()
        new = compared.filter(pl.col("__is_new"))
        changed = compared.filter(~pl.col("__is_new") & pl.col("__changed"))
        if new.height:
            con.execute(f"INSERT INTO {spec.name} SELECT i.* FROM incoming i " + _anti_join(spec))
        if changed.height:
            _apply_updates(con, spec, changed, batch_id)
    finally:
        con.unregister("incoming")
    return new.height, changed.height, compared.height - new.height - changed.height


def _anti_join(spec: FileSpec) -> str:
    on = " AND ".join(f"t.{k} = i.{k}" for k in spec.key)
    return f"WHERE NOT EXISTS (SELECT 1 FROM {spec.name} t WHERE {on})"


def _compare_sql(spec: FileSpec) -> str:
    on = " AND ".join(f"t.{k} = i.{k}" for k in spec.key)
    diffs = [f"(t.{c} IS DISTINCT FROM i.{c})" for c in spec.value_columns] or ["false"]
    olds = [f"t.{c}::VARCHAR AS __old_{c}" for c in spec.value_columns]
    flags = [f"(t.{c} IS DISTINCT FROM i.{c}) AS __diff_{c}" for c in spec.value_columns]
    return (
        f"SELECT i.*, t.{spec.key[0]} IS NULL AS __is_new, ({' OR '.join(diffs)}) AS __changed"
        + "".join(f", {x}" for x in olds + flags)
        + f" FROM incoming i LEFT JOIN {spec.name} t ON {on}"
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
