"""The pipeline builds each study's cohort and frames once per run and shares them."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from rich.console import Console

from registry import pipeline
from registry.config import Settings
from registry.errors import ConfigError
from registry.quality import summarise_checks
from registry.resources import default_study
from tests.test_refresh_support import drop_export, refresh

AS_OF = dt.date(2026, 1, 1)


def counted(monkeypatch: pytest.MonkeyPatch, calls: Counter[str], *names: str) -> None:
    """Count the calls of pipeline functions, which still run."""
    for name in names:
        real: Callable[..., Any] = getattr(pipeline, name)

        def wrapper(*args: Any, _real: Callable[..., Any] = real, _name: str = name) -> Any:
            calls[_name] += 1
            return _real(*args)

        monkeypatch.setattr(pipeline, name, wrapper)


def a_second_study(tmp: Path, *, min_cell_count: int) -> Path:
    """The default study under another name, with another small-cell threshold."""
    text = default_study().read_text(encoding="utf-8")
    path = tmp / "second.toml"
    path.write_text(text.replace("min_cell_count = 5", f"min_cell_count = {min_cell_count}"))
    assert path.read_text() != text
    return path


@pytest.fixture(scope="module")
def small_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("pipeline")
    drop_export(tmp, "day1", patients=150)
    db = tmp / "r.duckdb"
    pipeline.init_registry(db)
    pipeline.ingest_into(Settings(db=db), [tmp / "inbox" / "day1"], as_of=AS_OF)
    return db


def test_a_refresh_reads_the_registry_and_builds_each_cohort_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: Counter[str] = Counter()
    counted(monkeypatch, calls, "read_registry", "build_cohort", "build_time_to_event")
    drop_export(tmp_path, "day1")
    second = a_second_study(tmp_path, min_cell_count=7)
    outcome = refresh(tmp_path, studies=(default_study(), second))
    assert outcome.status == "published"
    # one read for both studies; one cohort and one set of frames per study (tte and models
    # each built them before)
    assert calls == {"read_registry": 1, "build_cohort": 2, "build_time_to_event": 2}
    build = tmp_path / "out" / "latest"
    for folder, threshold in ((build, 5), (build / "second", 7)):
        results = json.loads((folder / "results.json").read_text())
        assert results["small_cell_threshold"] == threshold
        # the frames written by the tte step are the ones the models fitted
        outcomes = pl.read_parquet(folder / "tte" / "outcomes.parquet")
        n = outcomes.get_column("patient_id").n_unique()
        assert results["cohort"]["n"] in (n, None)
        assert (folder / "index.html").is_file()


def test_the_demo_builds_the_cohort_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: Counter[str] = Counter()
    counted(monkeypatch, calls, "read_registry", "build_cohort")
    pipeline.run_demo(tmp_path / "demo", patients=150, seed=3, as_of=AS_OF,
                      console=Console(quiet=True), built_at=dt.datetime(2026, 1, 1))  # fmt: skip
    assert calls == {"read_registry": 1, "build_cohort": 1}
    assert (tmp_path / "demo" / "tte" / "outcomes.parquet").is_file()
    assert (tmp_path / "demo" / "index.html").is_file()


def test_build_analyses_shares_one_read_and_keeps_each_study_threshold(
    small_registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: Counter[str] = Counter()
    counted(monkeypatch, calls, "read_registry")
    second = a_second_study(tmp_path, min_cell_count=3)
    first, other = pipeline.build_analyses(small_registry, [None, second], min_cell_count=4)
    assert calls == {"read_registry": 1}
    # the stricter of the study's and the settings' threshold, per study
    assert (first.study.min_cell_count, other.study.min_cell_count) == (5, 4)
    assert other.study_text == second.read_text()
    assert first.cohort.patients.equals(other.cohort.patients)


def test_analysing_a_built_analysis_equals_the_analyze_command(small_registry: Path) -> None:
    analysis = pipeline.build_analysis(small_registry, None)
    direct = pipeline.analyse(analysis, as_of=AS_OF)
    assert direct == pipeline.analyse_registry(small_registry, None, None, as_of=AS_OF)


def test_a_bad_study_file_fails_before_the_registry_is_read(
    small_registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: Counter[str] = Counter()
    counted(monkeypatch, calls, "read_registry")
    broken = tmp_path / "broken.toml"
    broken.write_text("horizon_days = 'long'\n")
    with pytest.raises(ConfigError, match=r"broken\.toml"):
        pipeline.build_analyses(small_registry, [None, broken])
    assert calls == {}


def test_the_tte_export_writes_the_frames_of_a_built_analysis(
    small_registry: Path, tmp_path: Path
) -> None:
    analysis = pipeline.build_analysis(small_registry, None)
    built = pipeline.write_tte(analysis, tmp_path / "a")
    exported = pipeline.export_tte(small_registry, None, tmp_path / "b", csv=False)
    assert [p.name for p in built] == [p.name for p in exported]
    for name in ("outcomes", "counting", "landmark", "attrition", "data_policy"):
        a, b = (pl.read_parquet(tmp_path / d / f"{name}.parquet") for d in ("a", "b"))
        assert a.equals(b), name


def test_only_an_enabled_target_trial_keeps_every_assessment(
    small_registry: Path, tmp_path: Path
) -> None:
    """The assessments are read once for the PRO visits; a study whose target trial is
    disabled lets them go (about 0.9 GiB per million patients through the models)."""
    text = default_study().read_text(encoding="utf-8")
    off = tmp_path / "no_trial.toml"
    off.write_text(text.replace("enabled = true ", "enabled = false"))
    on, without = pipeline.build_analyses(small_registry, [None, off])
    assert not without.study.target_trial.enabled
    assert on.assessments.height > 0 and without.assessments.height == 0
    assert without.assessments.schema == on.assessments.schema
    assert json.dumps(without.pro) == json.dumps(on.pro)  # picked from every assessment
    assert without.baseline_scores.equals(on.baseline_scores)


def test_check_counts_from_the_checks_step_give_the_same_data_quality(tmp_path: Path) -> None:
    # the refresh's checks step counts every rule once; the tte step takes those counts
    # instead of running each check again (a minute at ten million patients)
    pipeline.synthesise(tmp_path / "in", patients=400, dirty=0.05, seed=3)
    db = tmp_path / "r.duckdb"
    pipeline.init_registry(db)
    pipeline.ingest_into(Settings(db=db), [tmp_path / "in"], as_of=AS_OF)
    counts = summarise_checks(pipeline.check_registry(db)).rename(
        {"check": "rule"}
    )  # what steps.checks keeps
    assert counts.get_column("violations").sum() > 0  # some rules are broken here
    (given,) = pipeline.build_analyses(db, [None], check_counts=counts)
    (counted_again,) = pipeline.build_analyses(db, [None])
    assert given.quality == counted_again.quality
