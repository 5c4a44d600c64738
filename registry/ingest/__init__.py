"""Contract files -> validated rows in the registry, with quarantine, upsert and audit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import duckdb

from registry.errors import IngestError
from registry.ingest.contract import FileSpec
from registry.ingest.discovery import Discovery, SkippedFile, discover
from registry.ingest.loading import ingest_file
from registry.ingest.run import IngestRun, Reporter, ingest_files
from registry.ingest.storing import IngestResult

__all__ = [
    "Discovery",
    "IngestResult",
    "IngestRun",
    "SkippedFile",
    "discover",
    "discover_files",
    "ingest_file",
    "ingest_files",
    "ingest_paths",
]


def discover_files(paths: Iterable[Path]) -> list[tuple[Path, FileSpec]]:
    """The contract files of the paths, in load order (discover() also names the rest)."""
    return discover(paths).files


def ingest_paths(
    con: duckdb.DuckDBPyConnection,
    paths: Iterable[Path],
    *,
    as_of: dt.date,
    pseudonym_key: str | None = None,
    reporter: Reporter | None = None,
) -> list[IngestResult | IngestError]:
    """Ingest the contract files of files and folders in dependency order; a refusal does
    not stop the others. Paths that are not contract files are left out: discover() and
    ingest_files() name them (as `registry ingest` does)."""
    run = ingest_files(
        con, discover(paths), as_of=as_of, pseudonym_key=pseudonym_key, reporter=reporter
    )
    return run.outcomes
