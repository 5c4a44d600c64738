"""CSV records with the physical line each one starts on, for files DuckDB cannot number.

A quoted value may span lines, so one record can take several physical lines. A record
that cannot be parsed (a quote left open, text after a closing quote, the wrong number
of fields over several lines) is rejected on its own first line, and reading resumes on
the line after it: an unterminated quote never swallows the records that follow.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

BLOCK = 1 << 22  # bytes scanned at a time by one_record_per_line


@dataclass(frozen=True)
class Record:
    """One record: its fields, or (fields None) the text of its first line and the error."""

    line: int
    fields: list[str] | None
    text: str = ""
    error: str = ""


def one_record_per_line(path: Path) -> bool:
    """True when no quoted line break, blank line or lone carriage return can make records
    and lines differ, so that DuckDB's fast reader gives exact line numbers.

    Every quote toggles the quoted state (a doubled quote toggles twice), so a line ends
    outside quotes exactly when the quotes up to its end are even in number."""
    previous, quotes = b"", 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            window = previous + block
            if b"\n\n" in window:
                return False
            if b"\r" in block and (b"\n\r\n" in window or _lone_carriage_return(window)):
                return False
            if b'"' in block:
                if _open_quote_at_line_end(block, quotes):
                    return False
                quotes += block.count(b'"')
            previous = block[-2:]
    return True


def _open_quote_at_line_end(block: bytes, quotes_before: int) -> bool:
    data = np.frombuffer(block, dtype=np.uint8)
    counts = np.cumsum(data == ord('"'), dtype=np.int64) + quotes_before
    return bool(np.any(counts[data == ord("\n")] % 2))


def _lone_carriage_return(window: bytes) -> bool:
    return window.count(b"\r") != window.count(b"\r\n") + window.endswith(b"\r")


class _Lines:
    """Physical lines of a text handle, numbered, with the lines of the current record
    kept so that they can be read again."""

    def __init__(self, handle: TextIO, first: int) -> None:
        self._handle = handle
        self._again: list[tuple[int, str]] = []
        self._next = first
        self.taken: list[tuple[int, str]] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self._again:
            item = self._again.pop()
        else:
            text = self._handle.readline()
            if not text:
                raise StopIteration
            item = (self._next, text)
            self._next += 1
        self.taken.append(item)
        return item[1]

    def read_again(self, items: list[tuple[int, str]]) -> None:
        """Give these lines again, in order, before reading on."""
        self._again.extend(reversed(items))


def read_records(handle: TextIO, width: int, *, first_line: int = 2) -> Iterator[Record]:
    """Every record after the header (already read from the handle), with its start line;
    blank lines are skipped. A bad record is rejected on its first line only."""
    handle.readline()
    lines = _Lines(handle, first_line)
    reader = csv.reader(lines, strict=True)
    while True:
        lines.taken = []
        error = ""
        try:
            fields: list[str] | None = next(reader)
        except StopIteration:
            if not lines.taken:
                return
            fields, error = None, "unexpected end of data"
        except csv.Error as exc:
            fields, error = None, str(exc)
        taken = lines.taken
        if fields is not None and len(fields) == width:
            yield Record(taken[0][0], fields)
            continue
        if fields == [] and len(taken) == 1:
            continue  # a blank line is no record
        if fields is not None:
            error = f"Expected {width} fields, found {len(fields)}"
        start, text = taken[0]
        yield Record(start, None, text.rstrip("\r\n"), _reason(error, len(taken)))
        lines.read_again(taken[1:])
        reader = csv.reader(lines, strict=True)


def _reason(error: str, spanned: int) -> str:
    if spanned > 1:
        return f"{error} (a quote opened on this line is not closed where the record ends)"
    return error
