"""Reading one contract file: header checks, cells as text, malformed lines."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import duckdb
import polars as pl

from registry.contract import FileSpec, identifier_label, normalise_column
from registry.db import query
from registry.errors import IngestError
from registry.validate import QUARANTINE_SCHEMA


def read_header(path: Path) -> list[str]:
    """Column names of a file, as written (CSV header parsed with the csv module)."""
    try:
        if path.suffix.lower() == ".parquet":
            return list(pl.read_parquet_schema(path))
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return next(csv.reader(handle), [])
    except UnicodeDecodeError:
        raise IngestError(f"{path}: the file is not UTF-8 text; nothing of it was stored") from None
    except (pl.exceptions.PolarsError, OSError, csv.Error) as exc:
        raise IngestError(f"{path}: the file cannot be read ({exc}); nothing was stored") from None


def check_header(headers: list[str], spec: FileSpec, path: Path) -> tuple[str, ...]:
    """Refuse identifiers, repeated and missing columns; return the unknown extras."""
    flagged = [(c, label) for c in headers if (label := identifier_label(c))]
    if flagged:
        listed = ", ".join(f"'{c}' ({label})" for c, label in flagged)
        raise IngestError(
            f"{path}: column {listed} looks like a direct identifier; the registry holds "
            "pseudonyms only. Drop or pseudonymise the column and ingest again; nothing was stored"
        )
    normalised = [normalise_column(c) for c in headers]
    _refuse_repeated(path, normalised)
    missing = [c for c in spec.required if c not in normalised]
    if missing:
        raise IngestError(
            f"{path}: required column '{missing[0]}' is missing"
            + (f" (also {', '.join(missing[1:])})" if missing[1:] else "")
            + f"; {spec.name} needs {', '.join(spec.required)}. Nothing was stored"
        )
    return tuple(c for c in normalised if c not in spec.column_names)


def read_rows(
    con: duckdb.DuckDBPyConnection, path: Path, headers: list[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """All cells as text with a `line` column, and the malformed lines as quarantine rows."""
    if path.suffix.lower() == ".parquet":
        try:
            frame = pl.read_parquet(path).select(pl.all().cast(pl.String))
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise IngestError(
                f"{path}: the file cannot be read ({exc}); nothing was stored"
            ) from None
        return frame.with_row_index("line", offset=1), _no_rejects()
    columns = {f"c{i}": "VARCHAR" for i in range(len(headers))}
    try:
        con.execute("DROP TABLE IF EXISTS reject_errors; DROP TABLE IF EXISTS reject_scans")
        frame = query(con, "queries/ingest/read_csv", path=str(path), columns=columns)
        rejects = query(con, "queries/ingest/csv_rejects")
    except duckdb.Error:
        # DuckDB's fast reader gives up on some quoting; the csv module reads anything.
        return _read_csv_slowly(path, headers)
    _refuse_bad_encoding(path, rejects)
    frame = frame.rename(dict(zip(columns, headers, strict=True)))
    return frame.with_columns(_line_numbers(frame.height, rejects)), _shape_rejects(rejects)


def _read_csv_slowly(path: Path, headers: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Row by row with the csv module: the fallback for files DuckDB cannot parse."""
    good: list[list[str]] = []
    lines: list[int] = []
    bad: list[tuple[int, str, str]] = []
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            next(reader, None)
            start = reader.line_num + 1
            for row in reader:
                if len(row) == len(headers):
                    good.append(row)
                    lines.append(start)
                else:
                    found = f"Expected {len(headers)} fields, found {len(row)}"
                    bad.append((start, ",".join(row), found))
                start = reader.line_num + 1
    except UnicodeDecodeError:
        raise IngestError(f"{path}: the file is not UTF-8 text; nothing of it was stored") from None
    except csv.Error as exc:
        raise IngestError(f"{path}: the file cannot be read ({exc}); nothing was stored") from None
    frame = pl.DataFrame(good, schema=[f"c{i}" for i in range(len(headers))], orient="row")
    frame = frame.rename(dict(zip(frame.columns, headers, strict=True)))
    rejects = pl.DataFrame(
        bad,
        schema={"line": pl.Int64, "csv_line": pl.String, "error_message": pl.String},
        orient="row",
    )
    return frame.with_columns(pl.Series("line", lines, dtype=pl.Int64)), _shape_rejects(rejects)


def _line_numbers(height: int, rejects: pl.DataFrame) -> pl.Series:
    """File line of each well-formed row: the lines after the header not rejected, in order.

    Exact for one record per line; a quoted value spanning lines shifts the later numbers.
    """
    last = int(rejects.get_column("line").max() or 0)  # type: ignore[arg-type]
    lines = pl.int_range(2, max(last, height + rejects.height) + 2, eager=True, dtype=pl.Int64)
    kept = lines.filter(~lines.is_in(rejects.get_column("line").implode()))
    return kept.head(height).alias("line")


def _refuse_bad_encoding(path: Path, rejects: pl.DataFrame) -> None:
    bad = rejects.filter(pl.col("error_type") == "INVALID ENCODING")
    if bad.height:
        first = int(bad.get_column("line").min())  # type: ignore[arg-type]
        raise IngestError(
            f"{path}: the file is not UTF-8 text (first at line {first}); save it as UTF-8 "
            "and ingest again. Nothing of it was stored"
        )


def _no_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema=QUARANTINE_SCHEMA)


def _shape_rejects(rejects: pl.DataFrame) -> pl.DataFrame:
    """Malformed CSV lines as quarantine rows (rule bad_row_shape)."""
    return rejects.select(
        "line",
        pl.lit(None, dtype=pl.String).alias("column_name"),
        pl.lit("bad_row_shape").alias("rule"),
        pl.col("csv_line").alias("value"),
        pl.format("the line is malformed: {}", pl.col("error_message")).alias("detail"),
        pl.struct(pl.col("csv_line")).struct.json_encode().alias("raw_row"),
    )


def _refuse_repeated(path: Path, headers: list[str]) -> None:
    normalised = [normalise_column(c) for c in headers]
    repeated = sorted({n for n in normalised if normalised.count(n) > 1})
    if repeated:
        raise IngestError(
            f"{path}: column '{repeated[0]}' appears more than once; nothing was stored"
        )


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
