"""Shared fixtures: an in-memory migrated registry and tiny contract files."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from registry.db import connect
from registry.migrate import apply_migrations

AS_OF = dt.date(2026, 1, 1)


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh in-memory registry with every migration applied."""
    connection = connect()
    apply_migrations(connection)
    yield connection
    connection.close()


def write_csv(folder: Path, name: str, text: str) -> Path:
    """Write a CSV file from a dedented block of text."""
    path = folder / f"{name}.csv"
    lines = [line.strip() for line in text.strip().splitlines()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


PATIENTS = """
patient_id,site_id,sex,birth_year,bmd_t_score,glucocorticoids,prior_vertebral_fractures
P1,S1,F,1950,-2.5,yes,0
P2,S1,M,1945,-3.1,no,1
"""


def pytest_addoption(parser: pytest.Parser) -> None:
    """--reverse: run the collected tests in reverse order (shows that tests are independent
    without adding pytest-randomly)."""
    parser.addoption("--reverse", action="store_true", help="Run the tests in reverse order.")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Reverse the collected tests when --reverse is given."""
    if config.getoption("--reverse"):
        items.reverse()
