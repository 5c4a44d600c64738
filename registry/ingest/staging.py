"""Staging one contract file in DuckDB, cells as text, and reading it back in chunks.

DuckDB reads CSV and Parquet files itself into the temporary table ingest_raw (spilling
to disk if memory runs short); Python only ever holds one chunk of lines at a time.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl

from registry.db import load_sql, query, scalar
from registry.errors import IngestError
from registry.ingest.contract import normalise_column
from registry.ingest.reading import no_rejects, refuse_bad_encoding, shape_rejects
from registry.ingest.records import one_record_per_line, read_records
from registry.ingest.workbook import SheetRows

STAGED = "ingest_raw"  # temporary table of the file being ingested, cells as text
SLOW_BATCH = 100_000  # rows the csv-module fallback holds before staging them


@dataclass(frozen=True)
class LineMap:
    """File line of each staged row, from its ordinal (0-based rowid in ingest_raw).

    DuckDB stages the well-formed lines in file order and leaves out the malformed ones,
    so the line of ordinal i is first + i + the number of malformed lines before it. With
    the rejected lines r_1 < r_2 < ... that is the number of j (1-based) with
    r_j - first - (j - 1) <= i. Exact because DuckDB only reads files with one record per
    line; the record-by-record reader records each row's line instead (`explicit`).
    """

    first: int
    rejected: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    explicit: np.ndarray | None = None

    def lines(self, ordinals: np.ndarray) -> np.ndarray:
        """Line numbers of the given ordinals."""
        if self.explicit is not None:
            return np.asarray(self.explicit[ordinals], dtype=np.int64)
        thresholds = np.sort(self.rejected) - self.first - np.arange(self.rejected.size)
        found = np.searchsorted(thresholds, ordinals, side="right")
        return np.asarray(ordinals + self.first + found, dtype=np.int64)

    def ordinals(self, lines: np.ndarray) -> np.ndarray:
        """Ordinals of the given line numbers (lines of staged rows only)."""
        if self.explicit is not None:
            return np.asarray(np.searchsorted(self.explicit, lines), dtype=np.int64)
        before = np.searchsorted(np.sort(self.rejected), lines, side="left")
        return np.asarray(lines - self.first - before, dtype=np.int64)


@dataclass(frozen=True)
class Staged:
    """A file staged in ingest_raw: its row count, malformed lines and line numbers."""

    rows: int
    rejects: pl.DataFrame  # quarantine rows (QUARANTINE_SCHEMA) of the malformed lines
    lines: LineMap
    names: dict[str, str]  # staged column (c0..) -> contract column name, for those kept
    header: tuple[str, ...]  # every column of the file, normalised, extras included


def stage_rows(
    con: duckdb.DuckDBPyConnection, path: Path, headers: list[str], *, keep: Collection[str]
) -> Staged:
    """Stage every cell of a file as text in the temporary table ingest_raw (columns c0..).

    Only the contract columns in `keep` are read back (so a file's own column called
    `line` or `__ordinal` is merely an ignored extra). DuckDB reads a CSV file in which
    every record is one line; a file with a quoted line break or a blank line, or one
    DuckDB's parser gives up on, is read record by record (see records.py) so that line
    numbers stay the physical lines where records start.
    """
    named = {f"c{i}": normalise_column(h) for i, h in enumerate(headers)}
    header = tuple(named.values())
    names = {c: n for c, n in named.items() if n in keep}
    if path.suffix.lower() == ".parquet":
        try:
            run_statement(con, "queries/ingest/stage_parquet", path=str(path))
        except duckdb.Error as exc:
            raise IngestError(
                f"{path}: the file cannot be read ({_first_line(exc)}); nothing was stored"
            ) from None
        _rename_parquet_columns(con, headers)
        return Staged(_staged_rows(con), no_rejects(), LineMap(first=1), names, header)
    if not one_record_per_line(path):
        return _stage_slowly(con, path, headers, names)
    columns = dict.fromkeys(named, "VARCHAR")
    try:
        con.execute("DROP TABLE IF EXISTS reject_errors; DROP TABLE IF EXISTS reject_scans")
        run_statement(con, "queries/ingest/stage_csv", path=str(path), columns=columns)
        rejects = query(con, "queries/ingest/csv_rejects")
    except duckdb.Error:
        # DuckDB's fast reader gives up on some quoting; the csv module reads anything.
        return _stage_slowly(con, path, headers, names)
    refuse_bad_encoding(path, rejects)
    rejected = rejects.get_column("line").to_numpy().astype(np.int64)
    return Staged(_staged_rows(con), shape_rejects(rejects), LineMap(2, rejected), names, header)


def run_statement(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> None:
    """Run sql/<name>.sql, a statement returning no rows, with $named parameters."""
    con.execute(load_sql(name), params or None)


def _staged_rows(con: duckdb.DuckDBPyConnection) -> int:
    return int(scalar(con, f"SELECT count(*) FROM {STAGED}"))


def _rename_parquet_columns(con: duckdb.DuckDBPyConnection, headers: list[str]) -> None:
    """Parquet columns keep their own names; rename them c0.. like staged CSV columns (in
    two passes, so that a file whose own columns are called c1, c0 cannot collide)."""
    for i, header in enumerate(headers):
        quoted = '"' + header.replace('"', '""') + '"'
        con.execute(f"ALTER TABLE {STAGED} RENAME {quoted} TO __staged_column_{i}")
    for i in range(len(headers)):
        con.execute(f"ALTER TABLE {STAGED} RENAME __staged_column_{i} TO c{i}")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _stage_slowly(
    con: duckdb.DuckDBPyConnection, path: Path, headers: list[str], names: dict[str, str]
) -> Staged:
    """Record by record with the csv module, each record's physical start line kept."""
    staged = [f"c{i}" for i in range(len(headers))]
    columns = ", ".join(f"{n} VARCHAR" for n in staged)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {STAGED} ({columns})")
    lines: list[int] = []
    bad: list[tuple[int, str, str]] = []
    good: list[list[str]] = []
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for record in read_records(handle, len(headers)):
                if record.fields is None:
                    bad.append((record.line, record.text, record.error))
                    continue
                good.append(record.fields)
                lines.append(record.line)
                if len(good) >= SLOW_BATCH:
                    _append_staged(con, good, staged)
    except UnicodeDecodeError:
        raise IngestError(f"{path}: the file is not UTF-8 text; nothing of it was stored") from None
    _append_staged(con, good, staged)
    rejects = pl.DataFrame(
        bad,
        schema={"line": pl.Int64, "csv_line": pl.String, "error_message": pl.String},
        orient="row",
    )
    explicit = LineMap(2, explicit=np.asarray(lines, dtype=np.int64))
    header = tuple(normalise_column(h) for h in headers)
    return Staged(len(lines), shape_rejects(rejects), explicit, names, header)


def _append_staged(con: duckdb.DuckDBPyConnection, rows: list[list[str]], names: list[str]) -> None:
    if not rows:
        return
    batch = pl.DataFrame(rows, schema=dict.fromkeys(names, pl.String), orient="row")
    con.register("staged_batch", batch)
    try:
        con.execute(f"INSERT INTO {STAGED} SELECT * FROM staged_batch")
    finally:
        con.unregister("staged_batch")
    rows.clear()


def raw_chunks(
    con: duckdb.DuckDBPyConnection, staged: Staged, chunk_rows: int
) -> Iterator[pl.DataFrame]:
    """The staged rows, chunk_rows at a time in file order: the contract columns of the
    file under their names, and `line`."""
    for first in range(0, staged.rows, chunk_rows):
        chunk = query(con, "queries/ingest/raw_chunk", first=first, stop=first + chunk_rows)
        yield _named(chunk, staged)


def raw_rows_at(con: duckdb.DuckDBPyConnection, staged: Staged, lines: pl.Series) -> pl.DataFrame:
    """The staged rows at the given file lines (few: the copies of a repeated key)."""
    ordinals = staged.lines.ordinals(lines.to_numpy().astype(np.int64))
    con.register("wanted_ordinals", pl.DataFrame({"ordinal": ordinals}))
    try:
        chunk = query(con, "queries/ingest/raw_rows_at")
    finally:
        con.unregister("wanted_ordinals")
    return _named(chunk, staged)


def _named(chunk: pl.DataFrame, staged: Staged) -> pl.DataFrame:
    """The contract columns of a staged chunk under their names, with each row's `line`."""
    ordinals = chunk.get_column("__ordinal").to_numpy().astype(np.int64)
    line = pl.Series("line", staged.lines.lines(ordinals), dtype=pl.Int64)
    return chunk.select(list(staged.names)).rename(staged.names).with_columns(line)


def drop_staged(con: duckdb.DuckDBPyConnection) -> None:
    """Forget the staged file (its temporary table)."""
    con.execute(f"DROP TABLE IF EXISTS {STAGED}")


def stage_sheet(
    con: duckdb.DuckDBPyConnection, sheet: SheetRows, *, keep: Collection[str]
) -> Staged:
    """Stage a workbook sheet read as text (workbook.py) in ingest_raw; each row's line is
    its sheet row (header row 1, first data row 2)."""
    named = {f"c{i}": normalise_column(h) for i, h in enumerate(sheet.headers)}
    staged = list(named)
    columns = ", ".join(f"{n} VARCHAR" for n in staged)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {STAGED} ({columns})")
    _append_staged(con, list(sheet.rows), staged)  # type: ignore[arg-type]
    names = {c: n for c, n in named.items() if n in keep}
    lines = LineMap(2, explicit=np.asarray(sheet.lines, dtype=np.int64))
    return Staged(len(sheet.lines), no_rejects(), lines, names, tuple(named.values()))
