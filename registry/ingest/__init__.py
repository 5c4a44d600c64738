"""Contract files -> validated rows in the registry, with quarantine, upsert and audit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import duckdb
import polars as pl

from registry.contract import LOAD_ORDER, FileSpec, normalise_column, spec_for_file
from registry.db import query
from registry.errors import IngestError
from registry.ingest.reading import check_header, file_sha256, read_header, read_rows
from registry.ingest.storing import IngestResult, record_refusal, store
from registry.validate import pseudonymise, validate_rows

__all__ = ["IngestResult", "discover_files", "ingest_file", "ingest_paths"]
SUFFIXES = (".csv", ".parquet")


def discover_files(paths: Iterable[Path]) -> list[tuple[Path, FileSpec]]:
    """Expand folders and order contract files so that patients load first."""
    found: list[tuple[Path, FileSpec]] = []
    for path in paths:
        if path.is_dir():
            candidates = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES)
            found.extend((p, spec) for p in candidates if (spec := spec_for_file(p.stem)))
        elif not path.exists():
            raise IngestError(f"{path}: no such file or folder")
        else:
            found.append((path, _spec_for(path)))
    return sorted(found, key=lambda item: (LOAD_ORDER.index(item[1].name), str(item[0])))


def _spec_for(path: Path) -> FileSpec:
    if path.suffix.lower() not in SUFFIXES:
        raise IngestError(f"{path}: only .csv and .parquet files can be ingested")
    spec = spec_for_file(path.stem)
    if spec is None:
        names = ", ".join(f"{n}.csv" for n in LOAD_ORDER)
        raise IngestError(f"{path}: the file name names no contract table; expected one of {names}")
    return spec


def prepare_file(
    con: duckdb.DuckDBPyConnection, path: Path, spec: FileSpec, *, pseudonym_key: str | None
) -> tuple[pl.DataFrame, pl.DataFrame, tuple[str, ...]]:
    """Check the header, read and pseudonymise one file: (rows, malformed lines, extras)."""
    headers = read_header(path)
    extras = check_header(headers, spec, path)
    raw, rejects = read_rows(con, path, headers)
    raw = raw.rename({c: normalise_column(c) for c in headers}).drop(extras)
    if pseudonym_key:
        ids = raw.get_column("patient_id").str.strip_chars()
        raw = raw.with_columns(pseudonymise(ids, pseudonym_key).alias("patient_id"))
    return raw, rejects, extras


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    spec: FileSpec,
    *,
    as_of: dt.date,
    pseudonym_key: str | None = None,
) -> IngestResult:
    """Load one file in one transaction; a refused file is recorded and re-raised."""
    started = dt.datetime.now()
    sha = file_sha256(path) if path.is_file() else None
    try:
        raw, rejects, extras = prepare_file(con, path, spec, pseudonym_key=pseudonym_key)
    except IngestError as exc:
        record_refusal(con, path, spec, sha, started, str(exc))
        raise
    patients = query(con, "queries/ingest/known_patients")
    checked = validate_rows(raw, spec, as_of=as_of, patients=patients, rejects=rejects)
    rows_read = raw.height + rejects.height
    return store(con, path, spec, checked, rows_read, sha=sha, started=started, extras=extras)


def ingest_paths(
    con: duckdb.DuckDBPyConnection,
    paths: Iterable[Path],
    *,
    as_of: dt.date,
    pseudonym_key: str | None = None,
) -> list[IngestResult | IngestError]:
    """Ingest files and folders in dependency order; a refusal does not stop the others."""
    outcomes: list[IngestResult | IngestError] = []
    for path, spec in discover_files(paths):
        try:
            outcomes.append(ingest_file(con, path, spec, as_of=as_of, pseudonym_key=pseudonym_key))
        except IngestError as exc:
            outcomes.append(exc)
    return outcomes
