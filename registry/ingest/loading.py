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
from registry.ingest.staging import Staged, drop_staged, stage_rows, stage_sheet
from registry.ingest.storing import IngestResult, record_refusal, store
from registry.ingest.workbook import is_workbook, read_sheet, sheet_label


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
    Python. A workbook (.xlsx) is read for the sheet named after spec's table, and named
    `workbook.xlsx[table]` in messages, the batch and the quarantine."""
    started = dt.datetime.now()
    sha = file_sha256(path) if path.is_file() else None
    label = sheet_label(path, spec.name) if is_workbook(path) else path
    try:
        try:
            extras, staged = _stage(con, path, label, spec)
            if not staged.rows and not staged.rejects.height:
                raise IngestError(
                    f"{label}: the file has a header but no rows; nothing was stored. "
                    "Check the export (a filter or an empty sheet?)"
                )
        except IngestError as exc:
            record_refusal(con, label, spec, sha, started, str(exc))
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
        return store(con, label, spec, checked, sha=sha, started=started, extras=extras)
    finally:
        drop_staged(con)
        drop_checked(con)


def _stage(
    con: duckdb.DuckDBPyConnection, path: Path, label: Path, spec: FileSpec
) -> tuple[tuple[str, ...], Staged]:
    """Check the header and stage the rows of a file, or of a workbook's sheet (label)."""
    if label != path:
        sheet = read_sheet(path, spec)
        extras = check_header(sheet.headers, spec, label)
        return extras, stage_sheet(con, sheet, keep=spec.column_names)
    headers = read_header(path)
    extras = check_header(headers, spec, path)
    return extras, stage_rows(con, path, headers, keep=spec.column_names)
