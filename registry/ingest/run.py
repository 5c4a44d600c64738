"""One ingest run over discovered files: outcomes as they commit, Ctrl-C, what needs attention."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import duckdb

from registry.db import query
from registry.errors import IngestError, Interrupted
from registry.ingest.discovery import Discovery, SkippedFile
from registry.ingest.loading import ingest_file
from registry.ingest.storing import IngestResult
from registry.pseudonyms import guard_key

Outcome = IngestResult | IngestError


class Reporter(Protocol):
    """Told about a run as it goes, so that each file's summary shows once committed."""

    def skipped(self, skipped: list[SkippedFile]) -> None:
        """The paths that are not ingested, with their reasons (before any file loads)."""

    def start(self, path: Path, index: int, total: int) -> None:
        """A file starts loading (index is 0-based)."""

    def done(self, outcome: Outcome) -> None:
        """A file was committed (IngestResult) or refused (IngestError)."""


def entirely_quarantined(outcome: Outcome) -> bool:
    """True for a file that had rows and all of them were quarantined."""
    return isinstance(outcome, IngestResult) and 0 < outcome.rows_read == outcome.quarantined


@dataclass(frozen=True)
class IngestRun:
    """What a run did: the paths skipped and one outcome per contract file, in load order."""

    skipped: list[SkippedFile]
    outcomes: list[Outcome]
    paths: list[Path]  # the file of each outcome

    @property
    def refused(self) -> list[IngestError]:
        """The files refused whole."""
        return [o for o in self.outcomes if isinstance(o, IngestError)]

    @property
    def refused_paths(self) -> list[Path]:
        """The paths of the files refused whole."""
        pairs = zip(self.paths, self.outcomes, strict=True)
        return [p for p, o in pairs if isinstance(o, IngestError)]

    @property
    def loaded(self) -> list[IngestResult]:
        """The files committed (including entirely quarantined ones)."""
        return [o for o in self.outcomes if isinstance(o, IngestResult)]

    @property
    def all_quarantined(self) -> list[IngestResult]:
        """Committed files of which every row was quarantined."""
        return [o for o in self.loaded if entirely_quarantined(o)]

    @property
    def unrecognised(self) -> list[SkippedFile]:
        """Skipped paths that need attention (not merely ignored)."""
        return [s for s in self.skipped if not s.ignored]

    @property
    def exit_code(self) -> int:
        """0 when done, 2 when a file was refused, not recognised or entirely quarantined."""
        return 2 if self.refused or self.unrecognised or self.all_quarantined else 0


def ingest_files(
    con: duckdb.DuckDBPyConnection,
    discovery: Discovery,
    *,
    as_of: dt.date,
    pseudonym_key: str | None = None,
    reporter: Reporter | None = None,
) -> IngestRun:
    """Ingest the discovered files in order, telling the reporter as each one commits.

    Ctrl-C raises Interrupted, whose message names the file that was not stored and the
    files already committed (each file is one transaction). A key that does not fit the
    registry raises PseudonymKeyError before any file is read."""
    guard_key(con, pseudonym_key)
    if reporter:
        reporter.skipped(discovery.skipped)
    outcomes: list[Outcome] = []
    total = len(discovery.files)
    for index, (path, spec) in enumerate(discovery.files):
        before = _last_batch(con)
        try:
            if reporter:
                reporter.start(path, index, total)
            try:
                outcome: Outcome = ingest_file(
                    con, path, spec, as_of=as_of, pseudonym_key=pseudonym_key
                )
            except IngestError as exc:
                outcome = exc
            outcomes.append(outcome)
            if reporter:
                reporter.done(outcome)
        except BaseException as exc:
            if not is_interrupt(exc):
                raise
            raise _interrupted(con, path, before, outcomes) from None
    return IngestRun(discovery.skipped, outcomes, [p for p, _ in discovery.files])


def is_interrupt(exc: BaseException) -> bool:
    """Ctrl-C, as Python or DuckDB reports it (DuckDB may turn it into an error)."""
    if isinstance(exc, KeyboardInterrupt | duckdb.InterruptException):
        return True
    return isinstance(exc, RuntimeError) and "interrupted" in str(exc).lower()


def _last_batch(con: duckdb.DuckDBPyConnection) -> int:
    return int(query(con, "queries/ingest/last_batch").item())


def _interrupted(
    con: duckdb.DuckDBPyConnection, path: Path, before: int, outcomes: list[Outcome]
) -> Interrupted:
    committed = [o.path.name for o in outcomes if isinstance(o, IngestResult)]
    if _committed_since(con, path, before) and path.name not in committed:
        committed.append(path.name)  # Ctrl-C came after its COMMIT
        return Interrupted(f"stopped after {path.name}; {_listed(committed)} committed")
    return Interrupted(f"{path.name} was not stored; {_listed(committed)} committed")


def _committed_since(con: duckdb.DuckDBPyConnection, path: Path, before: int) -> bool:
    try:
        found = query(con, "queries/ingest/loaded_since", before=before, path=str(path))
    except duckdb.Error:
        return False
    return bool(found.item())


def _listed(names: list[str]) -> str:
    if not names:
        return "nothing was"
    return f"{', '.join(names)} {'was' if len(names) == 1 else 'were'}"
