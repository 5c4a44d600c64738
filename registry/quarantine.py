"""Quarantined rows as a CSV to send back to the sites: pure frame -> frame, then one write.

Ids in the rows are pseudonyms (raw ids are never stored), so the file can leave the
registry; each site matches them against its own key-derived list, or by file and line.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

FIXED = {
    "file_name": "file",
    "line": "line",
    "column_name": "column",
    "rule": "rule",
    "value": "value",
    "detail": "message",
}


def sendback_frame(rows: pl.DataFrame) -> pl.DataFrame:
    """file, line, column, rule, value, message and the row's fields (one column each, in the
    order they first appear; a malformed line has its text in `csv_line`), as text."""
    fields = [json.loads(r) if r else {} for r in rows.get_column("raw_row").to_list()]
    names = list(dict.fromkeys(k for f in fields for k in f))
    clash = {n: f"field_{n}" if n in FIXED.values() else n for n in names}
    base = rows.select(pl.col(k).cast(pl.String).alias(v) for k, v in FIXED.items())
    extra = pl.DataFrame(
        {clash[n]: [_text(f.get(n)) for f in fields] for n in names},
        schema=dict.fromkeys(clash.values(), pl.String),
    )
    frame = pl.concat([base, extra], how="horizontal") if names else base
    return frame.with_columns(_defused(c) for c in frame.columns)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _defused(name: str) -> pl.Expr:
    """A cell a spreadsheet would run as a formula gets a leading quote (numbers stay)."""
    cell = pl.col(name)
    risky = cell.str.contains(r"^[=+\-@\t\r]") & cell.cast(pl.Float64, strict=False).is_null()
    return pl.when(risky).then(pl.lit("'") + cell).otherwise(cell).alias(name)


def write_sendback(rows: pl.DataFrame, path: Path) -> int:
    """Write the send-back CSV of quarantined rows; return the rows written."""
    frame = sendback_frame(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_csv(path)
    return frame.height
