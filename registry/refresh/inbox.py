"""The inbox: every new file (new by content hash) ingested, then moved out of the way.

Layout: contract files at the top of the inbox form one export, and each sub-folder is one
export (taken in name order). After its transaction commits, a loaded file moves to
`processed/<build stamp>/`, a refused one to `rejected/<build stamp>/` with a
`<name>.reason.txt`. A file whose content was already ingested (a run killed between commit
and move) is only moved, so a rerun never loads anything twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from registry.db import query
from registry.errors import IngestError
from registry.ingest import discover_files, ingest_paths
from registry.ingest.reading import file_sha256
from registry.refresh.hooks import pause_point

log = logging.getLogger("registry.refresh")
DONE_FOLDERS = ("processed", "rejected")


@dataclass
class InboxSummary:
    """What the ingest step did with the inbox."""

    loaded: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    rows_read: int = 0

    @property
    def message(self) -> str:
        """One line for the run log."""
        if not (self.loaded or self.refused or self.seen):
            return "no new files"
        return (
            f"{len(self.loaded)} loaded, {len(self.refused)} refused, "
            f"{len(self.seen)} already ingested"
        )


def exports(inbox: Path) -> list[Path]:
    """The exports waiting in the inbox: the inbox itself (loose files) and its sub-folders."""
    if not inbox.is_dir():
        return []
    folders = sorted(p for p in inbox.iterdir() if p.is_dir() and p.name not in DONE_FOLDERS)
    return [inbox, *folders]


def ingest_inbox(
    con: duckdb.DuckDBPyConnection,
    inbox: Path,
    *,
    stamp: str,
    as_of: dt.date,
    pseudonym_key: str | None,
) -> InboxSummary:
    """Ingest every new file of every export and move each file once it is dealt with."""
    summary = InboxSummary()
    for export in exports(inbox):
        for path, _spec in discover_files([export]):
            _take_file(con, inbox, path, stamp=stamp, as_of=as_of, key=pseudonym_key, s=summary)
        if export != inbox:
            _clear_folder(inbox, export, stamp)
    return summary


def _take_file(
    con: duckdb.DuckDBPyConnection,
    inbox: Path,
    path: Path,
    *,
    stamp: str,
    as_of: dt.date,
    key: str | None,
    s: InboxSummary,
) -> None:
    seen = query(con, "queries/refresh/file_seen", sha=file_sha256(path))
    if seen.height:
        status, message = seen.row(0)[1], seen.row(0)[2]
        s.seen.append(path.name)
        _move_out(inbox, path, stamp, refused=message if status == "refused" else None)
        return
    (outcome,) = ingest_paths(con, [path], as_of=as_of, pseudonym_key=key)
    pause_point("ingest:file")
    if isinstance(outcome, IngestError):
        log.warning("refused %s: %s", path.name, outcome)
        s.refused.append(path.name)
        _move_out(inbox, path, stamp, refused=str(outcome))
        return
    s.loaded.append(path.name)
    s.rows_read += outcome.rows_read
    log.info("loaded %s: %d rows read", path.name, outcome.rows_read)
    _move_out(inbox, path, stamp, refused=None)


def _move_out(inbox: Path, path: Path, stamp: str, *, refused: str | None) -> Path:
    folder = inbox / ("rejected" if refused is not None else "processed") / stamp
    target = folder / path.relative_to(inbox)
    target.parent.mkdir(parents=True, exist_ok=True)
    if refused is not None:
        reason = target.with_name(target.name + ".reason.txt")
        reason.write_text(refused.strip() + "\n", encoding="utf-8")
    os.replace(path, target)
    return target


def _clear_folder(inbox: Path, export: Path, stamp: str) -> None:
    """Move what is left of an export folder (truth.json, notes) to processed/ and drop it."""
    for leftover in sorted(p for p in export.rglob("*") if p.is_file()):
        _move_out(inbox, leftover, stamp, refused=None)
    shutil.rmtree(export, ignore_errors=True)
