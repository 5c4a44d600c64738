"""A small in-memory registry of hand-written assessments, for the PRO tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from registry.db import connect
from registry.migrate import apply_migrations


def tiny_registry(rows: list[tuple[int, str, int, float]], n: int, t0: dt.date) -> Any:
    """An in-memory registry with patients P0..P{n-1} and these assessments."""
    con = connect()
    apply_migrations(con)
    for i in range(n):
        con.execute("INSERT INTO patients (patient_id, sex, birth_year) VALUES (?, 'F', 1940)",
                    [f"P{i}"])  # fmt: skip
    for patient, instrument, day, score in rows:
        con.execute(
            "INSERT INTO assessments (patient_id, assessed_on, instrument, score) "
            "VALUES (?, ?, ?, ?)",
            [f"P{patient}", t0 + dt.timedelta(days=day), instrument, score],
        )
    return con
