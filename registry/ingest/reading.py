"""Reading one contract file: header checks, encoding, malformed lines, checksum."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import polars as pl

from registry.errors import IngestError
from registry.ingest.contract import FileSpec, identifier_label, normalise_column
from registry.ingest.rules import QUARANTINE_SCHEMA


def read_header(path: Path) -> list[str]:
    """Column names of a file, as written (CSV header parsed with the csv module)."""
    try:
        if path.suffix.lower() == ".parquet":
            return list(pl.read_parquet_schema(path))
        with path.open(encoding="utf-8-sig", newline="") as handle:
            first = handle.readline()
        if not first.strip():
            _refuse_empty(path)
        headers = next(csv.reader([first]), [])
        refuse_other_separator(path, headers)
        return headers
    except UnicodeDecodeError:
        raise IngestError(f"{path}: the file is not UTF-8 text; nothing of it was stored") from None
    except (pl.exceptions.PolarsError, OSError, csv.Error) as exc:
        raise IngestError(f"{path}: the file cannot be read ({exc}); nothing was stored") from None


def _refuse_empty(path: Path) -> None:
    if path.stat().st_size == 0 or not path.read_bytes()[:65536].strip():
        raise IngestError(f"{path}: the file is empty (no header, no rows); nothing was stored")
    raise IngestError(
        f"{path}: the first line is blank; the column names must be on line 1. Nothing was stored"
    )


SEPARATORS = {";": "';'", "\t": "tabs", "|": "'|'"}


def refuse_other_separator(path: Path, headers: list[str]) -> None:
    """Refuse a file whose header is one column holding another separator (Excel's
    European CSV uses ';' and decimal commas, which would be read as wrong values)."""
    if len(headers) != 1:
        return
    found = [(n, sep) for sep, n in SEPARATORS.items() if headers[0].count(sep)]
    if found:
        name = max(found, key=lambda item: headers[0].count(item[1]))[0]
        raise IngestError(
            f"{path}: the columns are separated by {name}, not commas; export it as "
            "comma-separated CSV (with '.' as the decimal mark) and ingest again. "
            "Nothing was stored"
        )


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
    return tuple(
        c or f"(unnamed column {i})"
        for i, c in enumerate(normalised, start=1)
        if c not in spec.column_names
    )


def refuse_bad_encoding(path: Path, rejects: pl.DataFrame) -> None:
    bad = rejects.filter(pl.col("error_type") == "INVALID ENCODING")
    if bad.height:
        first = int(bad.get_column("line").min())  # type: ignore[arg-type]
        raise IngestError(
            f"{path}: the file is not UTF-8 text (first at line {first}); save it as UTF-8 "
            "and ingest again. Nothing of it was stored"
        )


def no_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema=QUARANTINE_SCHEMA)


def shape_rejects(rejects: pl.DataFrame) -> pl.DataFrame:
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
    repeated = sorted({n for n in normalised if n and normalised.count(n) > 1})
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
