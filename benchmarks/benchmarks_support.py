"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import duckdb

from registry.cohort import RegistryFrames, read_registry
from registry.db import connect
from registry.migrate import apply_migrations
from registry.synth import SynthCohort


def registry_connection(cohort: SynthCohort) -> duckdb.DuckDBPyConnection:
    """An in-memory registry holding a synthetic cohort (ingest is benchmarked apart)."""
    con = connect()
    apply_migrations(con)
    for name, frame in cohort.tables.items():
        con.register("frame", frame)
        con.execute(f"INSERT INTO {name} SELECT * FROM frame")
        con.unregister("frame")
    return con


def load_registry(cohort: SynthCohort) -> RegistryFrames:
    """The cohort stage's frames of a synthetic cohort."""
    return read_registry(registry_connection(cohort))
