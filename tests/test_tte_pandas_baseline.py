"""The pandas baseline of benchmarks/tte_pandas.py builds the same frames as the package.

So the benchmark cannot silently compare against a baseline that has drifted from the
definitions. A small synthetic cohort with the edge cases of tests/test_tte_reference.py
(perturb) is loaded straight into an in-memory registry.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import duckdb
import pytest

from registry.cohort import read_registry
from registry.db import connect
from registry.migrate import apply_migrations
from registry.study import Study
from registry.synth import generate_cohort
from tests.test_tte_reference import perturb

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "tte_pandas.py"
STUDIES = {
    "default": Study(),
    "kyphoplasty_landmark30": Study(
        treatment_procedures=("vertebroplasty", "kyphoplasty"), landmark_days=30
    ),
}


@pytest.fixture(scope="module")
def baseline() -> ModuleType:
    # the script imports its sibling modules (tte_pandas_frames, ...) as top-level modules
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(SCRIPT.parent))
        return importlib.import_module(SCRIPT.stem)


@pytest.fixture(scope="module")
def registry() -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect()
    apply_migrations(con)
    for name, frame in perturb(generate_cohort(patients=2000, seed=11).tables, 11).items():
        con.register("frame", frame)
        con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM frame")
        con.unregister("frame")
    yield con
    con.close()


@pytest.mark.parametrize("study_name", list(STUDIES))
def test_pandas_baseline_matches_package(
    baseline: ModuleType, registry: duckdb.DuckDBPyConnection, study_name: str
) -> None:
    study = STUDIES[study_name]
    cohort, tte = baseline.build_ours(read_registry(registry), study)
    theirs = baseline.build_pandas(baseline.read_tables(registry), study)

    assert baseline.compare(theirs, cohort, tte) == dict.fromkeys(
        ("outcomes", "counting", "landmark", "attrition", "policy"), 0
    )
    assert len(theirs.counting) == tte.counting.height > tte.outcomes.height > 0
    assert set(tte.outcomes["event"].unique()) == {0, 1, 2}
    assert baseline.unmatched_rows(tte.counting, tte.counting.head(-1)) == 1
