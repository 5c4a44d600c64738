"""The inbox: every new file (new by content hash) ingested, then moved out of the way.

Layout: contract files at the top of the inbox form one export, and each sub-folder is one
export (taken in name order). After its transaction commits, a loaded file moves to
`processed/<build stamp>/`, a refused one to `rejected/<build stamp>/` with a
`<name>.reason.txt`. A file whose content was already ingested (a run killed between commit
and move) is only moved, so a rerun never loads anything twice. A file of an export that is
not a contract file (not .csv/.parquet, no contract table's name, or in a nested folder) is
not recognised: it moves to `rejected/<build stamp>/` with its reason too. Hidden files and
the `truth.json` that `registry synth` writes beside its files are set aside in processed/
without a warning.
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
from registry.ingest import IngestResult, discover, ingest_paths
from registry.ingest.discovery import classify
from registry.ingest.reading import file_sha256
from registry.ingest.workbook import is_workbook, sheet_label
from registry.refresh.hooks import pause_point
from registry.refresh.wording import plural

log = logging.getLogger("registry.refresh")
DONE_FOLDERS = ("processed", "rejected")
COMPANIONS = ("truth.json",)  # written by `registry synth` beside its contract files
Noted = list[tuple[str, str]]  # (file relative to the inbox, reason)


@dataclass
class InboxSummary:
    """What the ingest step did with the inbox; files are named relative to the inbox."""

    loaded: list[str] = field(default_factory=list)
    refused: Noted = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    rows_read: int = 0
    unrecognised: Noted = field(default_factory=list)
    quarantined: Noted = field(default_factory=list)  # files whose every row was quarantined

    @property
    def message(self) -> str:
        """One line for the run log."""
        if not (self.loaded or self.refused or self.seen or self.unrecognised):
            return "no new files"
        parts = [f"{plural(len(self.loaded), 'file')} loaded", f"{len(self.refused)} refused"]
        if self.unrecognised:
            parts.append(f"{len(self.unrecognised)} not recognised")
        if self.quarantined:
            parts.append(f"{len(self.quarantined)} entirely quarantined")
        return ", ".join(parts) + f", {len(self.seen)} already ingested"

    def warnings(self) -> list[tuple[str, str, str]]:
        """(kind, file, reason) of every file that needs attention."""
        return [
            *(("refused", f, r) for f, r in self.refused),
            *(("unrecognised", f, r) for f, r in self.unrecognised),
            *(("quarantined", f, r) for f, r in self.quarantined),
        ]


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
        found = discover([export])
        taken = list(dict.fromkeys(p for p, _ in found.files))  # a workbook once, all sheets
        for path in taken:
            _take_file(con, inbox, path, stamp=stamp, as_of=as_of, key=pseudonym_key, s=summary)
        for sheet in found.unrecognised:  # a workbook's sheets that are no contract table
            if sheet.path.parent == export and sheet.path not in taken and not sheet.path.exists():
                summary.unrecognised.append((_name(inbox, sheet.path), sheet.reason))
        for path in unrecognised_files(inbox, export, set(taken)):
            _set_aside(inbox, path, stamp, summary)
        if export != inbox:
            _clear_folder(inbox, export, stamp)
    return summary


def unrecognised_files(inbox: Path, export: Path, found: set[Path]) -> list[Path]:
    """Files of an export that are not contract files (hidden files left out); for the inbox
    itself only its loose files, since each sub-folder is an export of its own."""
    files = export.iterdir() if export == inbox else export.rglob("*")
    return sorted(
        p for p in files if p.is_file() and p not in found and not _hidden(p.relative_to(export))
    )


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def not_recognised_because(export: Path, path: Path) -> str:
    """Why a file of an export is not a contract file (ingest's own reasons and suggestions)."""
    if path.parent != export:
        return "in a folder inside an export; put contract files at the top of the export"
    return classify(path)[1] or "not a contract table"


def _set_aside(inbox: Path, path: Path, stamp: str, s: InboxSummary) -> None:
    """A companion file goes to processed/ quietly; any other to rejected/ with its reason."""
    if path.name in COMPANIONS:
        _move_out(inbox, path, stamp, refused=None)
        return
    export = path.parent if path.parent == inbox else inbox / path.relative_to(inbox).parts[0]
    reason = not_recognised_because(export, path)
    log.warning("not recognised %s: %s", _name(inbox, path), reason)
    s.unrecognised.append((_name(inbox, path), reason))
    _move_out(inbox, path, stamp, refused=f"not recognised: {reason}")


def _name(inbox: Path, path: Path) -> str:
    return path.relative_to(inbox).as_posix()


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
        s.seen.append(_name(inbox, path))
        if status == "refused":
            s.refused.append((_name(inbox, path), f"refused before: {_reason(path, message)}"))
        _move_out(inbox, path, stamp, refused=message if status == "refused" else None)
        return
    outcomes = ingest_paths(con, [path], as_of=as_of, pseudonym_key=key)
    pause_point("ingest:file")
    refusals = []
    for label, outcome in zip(_labels(path), outcomes, strict=True):
        if isinstance(outcome, IngestError):
            log.warning("refused %s: %s", label.name, outcome)
            s.refused.append((_name(inbox, label), _reason(label, str(outcome))))
            refusals.append(str(outcome))
            continue
        s.loaded.append(_name(inbox, label))
        s.rows_read += outcome.rows_read
        if _all_quarantined(outcome):
            s.quarantined.append((_name(inbox, label), _quarantine_reason(outcome)))
        log.info("loaded %s: %d rows read", label.name, outcome.rows_read)
    _move_out(inbox, path, stamp, refused="\n".join(refusals) if refusals else None)


def _labels(path: Path) -> list[Path]:
    """The name of each outcome of ingesting a path: the file, or each contract sheet of a
    workbook (`w.xlsx[patients]`, in load order; a refused sheet leaves the others loaded
    and moves the workbook to rejected/ with its reasons)."""
    if not is_workbook(path):
        return [path]
    return [sheet_label(path, spec.name) for _, spec in discover([path]).files]


def _reason(path: Path, message: str) -> str:
    """The refusal on one line, without the file's path in front (the warning names it)."""
    text = " ".join(message.split())
    return text.removeprefix(f"{path}: ") or text


def _all_quarantined(r: IngestResult) -> bool:
    return r.quarantined > 0 and not (r.inserted or r.updated or r.unchanged)


def _quarantine_reason(r: IngestResult) -> str:
    """'every row (12) was quarantined: unknown patient_id (10), ...; see registry quarantine'"""
    rules = ", ".join(f"{rule} ({n:,})" for rule, n in r.top_reasons)
    why = f": {rules}" if rules else ""
    see = f"see them with: registry quarantine --batch {r.batch_id}"
    return f"every row ({r.quarantined:,}) was quarantined{why}; {see}"


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
