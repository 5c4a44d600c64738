"""Loading one contract file: read, stage, check every row rule, store in one transaction."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from registry.db import query
from registry.errors import IngestError
from registry.ingest.chunks import CHUNK_ROWS, drop_checked, validate_staged
from registry.ingest.contract import FileSpec
from registry.ingest.reading import check_header, file_sha256, read_header
from registry.ingest.staging import drop_staged, stage_rows
from registry.ingest.storing import IngestResult, record_refusal, store


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
            staged = stage_rows(con, path, headers, keep=spec.column_names)
            if not staged.rows and not staged.rejects.height:
                raise IngestError(
                    f"{path}: the file has a header but no rows; nothing was stored. "
                    "Check the export (a filter or an empty sheet?)"
                )
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
