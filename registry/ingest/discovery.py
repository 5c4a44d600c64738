"""Which files of the paths given to ingest are contract files, and why the others are not.

Every file of a folder is either taken (a contract table, in load order) or named with a
reason: an operator's misnamed or mis-saved export is never skipped in silence.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from registry.errors import IngestError
from registry.ingest.contract import LOAD_ORDER, FileSpec, normalise_column, spec_for_file
from registry.ingest.workbook import contract_sheets, is_workbook, sheet_label

SUFFIXES = (".csv", ".parquet")  # and Excel workbooks: one sheet per table (workbook.py)
EXPECTED = ", ".join(f"{n}.csv" for n in LOAD_ORDER)
# files an export folder carries beside the tables; named as ignored, never read
COMPANIONS = ("truth.json",)
UNSUPPORTED = {
    ".xls": "old Excel workbooks are not read — save it as .xlsx (Excel Workbook)",
    ".ods": "spreadsheets are not read — save each sheet as CSV ({expected})",
    ".tsv": "tab-separated files are not read — export it as comma-separated CSV",
    ".txt": "text files are not read — if it is a table, export it as comma-separated CSV",
    ".json": "JSON files are not read — export the table as CSV or Parquet",
}


@dataclass(frozen=True)
class SkippedFile:
    """A path that is not ingested, with the reason; `ignored` ones need no attention."""

    path: Path
    reason: str
    ignored: bool = False  # hidden files, README, truth.json, *.reason.txt, sub-folders


@dataclass(frozen=True)
class Discovery:
    """The contract files to load (in load order) and every other path, with its reason."""

    files: list[tuple[Path, FileSpec]] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)

    @property
    def unrecognised(self) -> list[SkippedFile]:
        """The skipped paths that need the operator's attention (not merely ignored)."""
        return [s for s in self.skipped if not s.ignored]


def discover(paths: Iterable[Path]) -> Discovery:
    """Expand folders, keep contract files in load order and name every other path."""
    files: list[tuple[Path, FileSpec]] = []
    skipped: list[SkippedFile] = []
    for path in paths:
        if path.is_dir():
            found, others = _folder(path)
            files.extend(found)
            skipped.extend(others)
        elif not path.exists():
            skipped.append(SkippedFile(path, "no such file or folder"))
        elif is_workbook(path):
            found, others = workbook_entries(path)
            files.extend(found)
            skipped.extend(others)
        else:
            spec, reason = classify(path)
            if spec is not None:
                files.append((path, spec))
            else:
                skipped.append(SkippedFile(path, reason or "not a contract table"))
    order = sorted(files, key=lambda item: (LOAD_ORDER.index(item[1].name), str(item[0])))
    return Discovery(order, skipped)


def _folder(folder: Path) -> tuple[list[tuple[Path, FileSpec]], list[SkippedFile]]:
    files: list[tuple[Path, FileSpec]] = []
    skipped: list[SkippedFile] = []
    for path in sorted(folder.iterdir()):
        if path.is_dir():
            note = "a sub-folder: not searched; give it to ingest on its own"
            skipped.append(SkippedFile(path, note, ignored=True))
            continue
        if why := ignored_reason(path):
            skipped.append(SkippedFile(path, why, ignored=True))
            continue
        if is_workbook(path):
            found, others = workbook_entries(path)
            files.extend(found)
            skipped.extend(others)
            continue
        spec, reason = classify(path)
        if spec is not None:
            files.append((path, spec))
        else:
            skipped.append(SkippedFile(path, reason or "not a contract table"))
    if not files:
        skipped.append(SkippedFile(folder, f"no contract file in this folder; expected {EXPECTED}"))
    return files, skipped


def workbook_entries(path: Path) -> tuple[list[tuple[Path, FileSpec]], list[SkippedFile]]:
    """One entry per contract sheet of a workbook; every other sheet named with its reason
    (`workbook.xlsx[notes]`), and a workbook that cannot be opened or has no contract sheet
    as a whole."""
    try:
        found, others = contract_sheets(path)
    except IngestError as exc:
        return [], [SkippedFile(path, str(exc).removeprefix(f"{path}: "))]
    skipped = [SkippedFile(sheet_label(path, name), reason) for name, reason in others]
    if not found:
        skipped.append(SkippedFile(path, _no_sheet(path)))
    return [(path, spec) for _, spec in found], skipped


def _no_sheet(path: Path) -> str:
    return f"no sheet of this workbook is named after a contract table ({', '.join(LOAD_ORDER)})"


def ignored_reason(path: Path) -> str | None:
    """Why a file beside the tables of an export is ignored (None: it should be a table)."""
    name = path.name.lower()
    if name.startswith("."):
        return "ignored: a hidden file"
    if name.startswith("readme"):
        return "ignored: a README"
    if name in COMPANIONS:
        return "ignored: the synthetic cohort's truth, not a table"
    if name.endswith(".reason.txt"):
        return "ignored: the reason a file was refused earlier"
    return None


def classify(path: Path) -> tuple[FileSpec | None, str | None]:
    """The contract table of a file, or None and the reason it is not one."""
    suffix = path.suffix.lower()
    if is_workbook(path):
        return None, _workbook_reason(path)
    spec = spec_for_file(path.stem)
    if suffix in SUFFIXES and spec is not None:
        return spec, None
    if suffix in SUFFIXES:
        return None, f"not a contract table{_suggestion(path.stem, suffix)}"
    if spec is not None:
        return None, f"{suffix or 'no extension'}: only .csv and .parquet files are read; " + (
            f"save it as {spec.name}.csv"
        )
    hint = UNSUPPORTED.get(suffix, "only .csv and .parquet files are read")
    return None, f"{suffix or 'no extension'}: {hint.format(expected=EXPECTED)}"


def _workbook_reason(path: Path) -> str:
    """Why a workbook (or one of its sheets) is not read, for the inbox's rejected/ note."""
    return "; ".join(s.reason for s in workbook_entries(path)[1]) or "not a contract table"


def _suggestion(stem: str, suffix: str) -> str:
    close = difflib.get_close_matches(normalise_column(stem), LOAD_ORDER, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]}{suffix}?"
    return f"; expected one of {EXPECTED}"
