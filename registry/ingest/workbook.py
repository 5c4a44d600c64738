"""Excel workbooks (.xlsx, .xlsm): one sheet per contract table, each cell turned into the
text a CSV export would hold, with its sheet row as the line.

openpyxl reads each cell with its own type, so a date cell, an Excel serial number and a
date typed as text are told apart: a date cell becomes ISO text; a whole number in a date
column is a serial (days since 1899-12-30, the workbook's own epoch for 1904 workbooks)
from 61 on (1900-03-01), while serials 1-60 are left as they are and quarantined as
bad_date, because Excel counts a 29 February 1900 that never was; a boolean becomes
true/false; an error cell (#N/A, #REF!, ...) keeps its code, which the row rules
quarantine (rule excel_error); an empty cell is empty; a formula gives its cached value.
"""

from __future__ import annotations

import datetime as dt
import difflib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.errors import IngestError
from registry.ingest.contract import LOAD_ORDER, FileSpec, normalise_column, spec_for_file

WORKBOOKS = (".xlsx", ".xlsm")
FIRST_SERIAL = 61  # 1900-03-01: Excel's serials 1-60 count a 29 February 1900 that never was
LAST_SERIAL = 2_958_465  # 9999-12-31
EXPECTED_SHEETS = ", ".join(LOAD_ORDER)


def is_workbook(path: Path) -> bool:
    """True for an Excel workbook ingest reads (by its extension)."""
    return path.suffix.lower() in WORKBOOKS


def sheet_label(path: Path, table: str) -> Path:
    """How a sheet is named in messages, batches and quarantine: `workbook.xlsx[patients]`."""
    return path.with_name(f"{path.name}[{table}]")


def sheet_names(path: Path) -> list[str]:
    """The sheet names of a workbook; IngestError when it cannot be opened."""
    workbook = _open(path)
    try:
        return list(workbook.sheetnames)
    finally:
        workbook.close()


def contract_sheets(path: Path) -> tuple[list[tuple[str, FileSpec]], list[tuple[str, str]]]:
    """(sheet, spec) of the contract sheets and (sheet, reason) of the others."""
    found: list[tuple[str, FileSpec]] = []
    others: list[tuple[str, str]] = []
    for name in sheet_names(path):
        spec = spec_for_file(name)
        if spec is not None and any(s == spec for _, s in found):
            again = f"sheet '{name}' repeats table {spec.name}; only the first is read"
            others.append((name, again))
        elif spec is not None:
            found.append((name, spec))
        else:
            others.append((name, f"sheet '{name}' is not a contract table{_suggestion(name)}"))
    return found, others


def _suggestion(name: str) -> str:
    close = difflib.get_close_matches(normalise_column(name), LOAD_ORDER, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]}? (rename the sheet)"
    return f"; the sheets read are {EXPECTED_SHEETS}"


def _open(path: Path) -> Any:
    import openpyxl  # imported here: only ingest of a workbook needs it

    try:
        return openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (OSError, zipfile.BadZipFile, KeyError, ValueError, TypeError) as exc:
        raise IngestError(
            f"{path}: the workbook cannot be read ({type(exc).__name__}: {exc}); open it in "
            "Excel and save it again as .xlsx. Nothing was stored"
        ) from None


@dataclass(frozen=True)
class SheetRows:
    """A sheet as text: its header (row 1; a column holding values without a name gets an
    empty one, which ingest reports as an unnamed extra) and every non-empty data row."""

    headers: list[str]
    rows: list[list[str | None]]  # as wide as the header
    lines: list[int]  # the sheet row of each row


def read_sheet(path: Path, spec: FileSpec) -> SheetRows:
    """Every cell of the contract table's sheet as text (see the module docstring)."""
    workbook = _open(path)
    try:
        sheet = next((n for n in workbook.sheetnames if spec_for_file(n) == spec), None)
        if sheet is None:
            raise IngestError(f"{path}: no sheet is named {spec.name}; nothing was stored")
        worksheet = workbook[sheet]
        worksheet.reset_dimensions()  # some writers record wrong dimensions: read every row
        rows = enumerate(worksheet.iter_rows(min_row=1), start=1)
        first = next(rows, None)
        headers = _header(first, sheet_label(path, spec.name))
        dates = {i for i, h in enumerate(headers) if _kind(spec, h) == "date"}
        lines, texts = _body(rows, dates, workbook.epoch)
    finally:
        workbook.close()
    width = max([len(headers), *(len(t) for t in texts)])
    padded = [(t + [None] * width)[:width] for t in texts]
    return SheetRows(headers + [""] * (width - len(headers)), padded, lines)


def _kind(spec: FileSpec, header: str) -> str | None:
    name = normalise_column(header)
    return spec.column(name).kind if name in spec.column_names else None


def _header(first: tuple[int, tuple[Any, ...]] | None, label: Path) -> list[str]:
    values = [_header_text(c.value) for c in first[1]] if first else []
    while values and not values[-1]:
        values.pop()
    if not values:
        raise IngestError(
            f"{label}: row 1 is empty; the column names must be in row 1 of the sheet. "
            "Nothing was stored"
        )
    return values


def _header_text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _body(
    rows: Iterator[tuple[int, tuple[Any, ...]]], dates: set[int], epoch: dt.datetime
) -> tuple[list[int], list[list[str | None]]]:
    """The sheet rows and cell texts of the non-empty rows, trailing empty cells dropped."""
    lines: list[int] = []
    texts: list[list[str | None]] = []
    for number, cells in rows:
        values = [cell_text(c, i in dates, epoch) for i, c in enumerate(cells)]
        while values and values[-1] in (None, ""):
            values.pop()
        if values:  # an empty row is no record (like a blank line of a CSV file)
            lines.append(number)
            texts.append(values)
    return lines, texts


def cell_text(cell: Any, is_date: bool, epoch: dt.datetime) -> str | None:
    """The text a cell stands for (None: empty), `is_date` for a contract date column."""
    value = cell.value
    if value is None:
        return None
    if getattr(cell, "data_type", None) == "e":
        return str(value)  # an error code such as #N/A: the excel_error rule quarantines it
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, int | float):
        return _number_text(value, is_date, epoch)
    return str(value)


def _number_text(value: float, is_date: bool, epoch: dt.datetime) -> str:
    whole = float(value).is_integer()
    first = FIRST_SERIAL if epoch.year < 1900 else 0  # the 1904 date system has no such bug
    if is_date and whole and first <= value <= LAST_SERIAL:
        return (epoch + dt.timedelta(days=int(value))).date().isoformat()
    if whole and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))
