"""Tiny hand-built registries for the cohort and time-to-event tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb

from registry.cohort import Cohort, build_cohort, read_registry
from registry.study import Study
from registry.time_to_event import TimeToEvent, build_time_to_event

T0 = dt.date(2020, 1, 1)


def day(n: int) -> dt.date:
    """The date n days after the default t0."""
    return T0 + dt.timedelta(days=n)


def add(con: duckdb.DuckDBPyConnection, table: str, *rows: tuple[Any, ...]) -> None:
    """Insert rows into a registry table."""
    for row in rows:
        marks = ", ".join("?" for _ in row)
        con.execute(f"INSERT INTO {table} VALUES ({marks})", list(row))


def patient(
    con: duckdb.DuckDBPyConnection,
    pid: str,
    *levels: str,
    etiology: str = "osteoporotic",
    sex: str = "F",
    birth_year: int = 1947,
    bmd: float | None = -2.8,
) -> None:
    """A patient with index fractures diagnosed on T0 at the given levels."""
    add(con, "patients", (pid, "S1", sex, birth_year, bmd, False, 1))
    for level in levels:
        add(con, "index_fractures", (pid, level, T0, etiology, 2))


def contact(con: duckdb.DuckDBPyConnection, pid: str, n: int, status: str = "alive") -> None:
    """A follow-up contact n days after T0."""
    add(con, "follow_up", (pid, day(n), status))


def fracture(con: duckdb.DuckDBPyConnection, pid: str, level: str, n: int) -> None:
    """A new fracture detected n days after T0."""
    add(con, "fractures", (pid, level, day(n), "radiographic"))


def procedure(
    con: duckdb.DuckDBPyConnection, pid: str, level: str, n: int, kind: str = "vertebroplasty"
) -> None:
    """A procedure n days after T0."""
    add(con, "procedures", (pid, level, day(n), kind, 4.0, "none"))


def build(con: duckdb.DuckDBPyConnection, study: Study | None = None) -> tuple[Cohort, TimeToEvent]:
    """Cohort and time-to-event frames of the registry."""
    study = study or Study()
    frames = read_registry(con)
    cohort = build_cohort(frames, study)
    return cohort, build_time_to_event(cohort, frames.fractures, study)


def row(tte: TimeToEvent, pid: str, outcome: str) -> dict[str, Any]:
    """The outcome row of one patient."""
    found = tte.outcomes.filter(
        (tte.outcomes["patient_id"] == pid) & (tte.outcomes["outcome"] == outcome)
    )
    assert found.height == 1, found
    return found.row(0, named=True)
