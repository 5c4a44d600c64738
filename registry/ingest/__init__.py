"""Contract files -> validated rows in the registry, with quarantine, upsert and audit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import duckdb

from registry.contract import LOAD_ORDER, FileSpec, spec_for_file
from registry.db import query
from registry.errors import IngestError
from registry.ingest.checking import CHUNK_ROWS, drop_checked, validate_staged
from registry.ingest.reading import check_header, file_sha256, read_header
from registry.ingest.staging import drop_staged, stage_rows
from registry.ingest.storing import IngestResult, record_refusal, store
from registry.pseudonyms import guard_key

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


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    spec: FileSpec,
    *,
    as_of: dt.date,
    pseudonym_key: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> IngestResult:
    """Load one file in one transaction; a refused file is recorded and re-raised.

    DuckDB stages the file (cells as text), the row rules run chunk_rows lines at a time
    and the rows that pass wait in DuckDB until stored: the file never sits whole in
    Python."""
    started = dt.datetime.now()
    sha = file_sha256(path) if path.is_file() else None
    try:
        try:
            headers = read_header(path)
            extras = check_header(headers, spec, path)
            staged = stage_rows(con, path, headers)
        except IngestError as exc:
            record_refusal(con, path, spec, sha, started, str(exc))
            raise
        patients = query(con, "queries/ingest/known_patients")
        checked = validate_staged(
            con,
            staged,
            spec,
            as_of=as_of,
            patients=patients,
            pseudonym_key=pseudonym_key,
            chunk_rows=chunk_rows,
        )
        return store(con, path, spec, checked, sha=sha, started=started, extras=extras)
    finally:
        drop_staged(con)
        drop_checked(con)


def ingest_paths(
    con: duckdb.DuckDBPyConnection,
    paths: Iterable[Path],
    *,
    as_of: dt.date,
    pseudonym_key: str | None = None,
) -> list[IngestResult | IngestError]:
    """Ingest files and folders in dependency order; a refusal does not stop the others.

    A key that does not fit the registry raises PseudonymKeyError before any file is read."""
    guard_key(con, pseudonym_key)
    outcomes: list[IngestResult | IngestError] = []
    for path, spec in discover_files(paths):
        try:
            outcomes.append(ingest_file(con, path, spec, as_of=as_of, pseudonym_key=pseudonym_key))
        except IngestError as exc:
            outcomes.append(exc)
    return outcomes
