"""The Python API (registry.api): a handle on a registry, a study's frames as Polars and
pandas, the typed results, and the README's notebook example run as written."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pytest
from rich.console import Console

import registry
from registry.errors import RegistryError
from registry.pipeline import init_registry, run_demo

README = Path(__file__).resolve().parents[1] / "README.md"
AS_OF = dt.date(2026, 1, 1)


def readme_example() -> str:
    """The fenced Python block right under the README's `<!-- api-example -->` marker."""
    found = re.search(r"<!-- api-example -->\n```python\n(.*?)```", README.read_text(), re.S)
    assert found, "README has no fenced python block under <!-- api-example -->"
    return found.group(1)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding build/demo, as `registry demo` writes it."""
    root = tmp_path_factory.mktemp("api")
    run_demo(root / "build" / "demo", patients=400, seed=20260101, as_of=AS_OF,
             console=Console(quiet=True), built_at=dt.datetime(2026, 1, 2))  # fmt: skip
    return root


def test_a_missing_registry_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="registry init --db"):
        registry.open_registry(tmp_path / "none.duckdb")


def test_an_empty_registry_gives_empty_frames_of_the_right_shape(tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"
    init_registry(db)
    data = registry.open_registry(db).load_study()
    assert data.cohort.height == 0 and data.counting.height == 0
    assert {"start", "stop", "event", "treated"} <= set(data.counting.columns)
    assert isinstance(data.to_pandas("counting"), pd.DataFrame)


def test_an_unknown_frame_name_lists_the_known_ones(tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"
    init_registry(db)
    data = registry.open_registry(db).load_study()
    with pytest.raises(RegistryError, match="the frames are: cohort, outcomes, counting"):
        data.to_pandas("nope")


def test_the_threshold_asked_for_is_in_force(tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"
    init_registry(db)
    assert registry.open_registry(db, min_cell_count=11).load_study().study.min_cell_count == 11


@pytest.mark.slow
def test_frames_are_the_exported_ones_in_polars_and_pandas(demo_dir: Path) -> None:
    data = registry.open_registry(demo_dir / "build" / "demo" / "registry.duckdb").load_study()
    tte = demo_dir / "build" / "demo" / "tte"
    for name in ("outcomes", "counting", "landmark", "attrition"):
        frame = data.frames[name]
        assert isinstance(frame, pl.DataFrame)
        assert frame.equals(pl.read_parquet(tte / f"{name}.parquet")), name
        assert data.to_pandas(name).shape == frame.shape
    assert data.cohort.height == data.outcomes.get_column("patient_id").n_unique()


@pytest.mark.slow
def test_the_readme_example_runs_as_written(
    demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(demo_dir)  # the example names build/demo/registry.duckdb
    namespace: dict[str, Any] = {}
    exec(compile(readme_example(), str(README), "exec"), namespace)
    # the example's results are the report's: the HR it matched is the one in results.json
    published = json.loads((demo_dir / "build" / "demo" / "results.json").read_text())
    twin = published["outcomes"]["adjacent"]["cox"]["time_varying_adjusted_complete_case"]
    assert abs(namespace["hr"] - twin["hr"]) < 1e-6
    assert namespace["results"]["outcomes"]["adjacent"]["cox"]["time_varying_adjusted"]["mi"]
