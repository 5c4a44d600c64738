"""The target trial in results.json: built for every outcome of the study by
registry.analysis.results (build_results -> emulate), typed, validated by the schema, and
rendered without breaking the page; null when the study disables it."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import registry.analysis.results
from registry import pipeline
from registry.analysis.target_trial.result import protocol_table
from registry.report.write import render_report
from registry.result_types import Results
from registry.study import Study
from registry.trial_protocol import Protocol
from tests.test_pipeline import small_registry  # noqa: F401 (a fixture)
from tests.test_result_schema import errors

AS_OF = dt.date(2026, 1, 1)
ELEMENTS = ["Eligibility", "Treatment strategies", "Assignment", "Time zero", "Grace period",
            "Outcomes", "Competing event", "Follow-up", "Causal contrast", "Analysis"]  # fmt: skip


def analysed(db: Path, study: Study | None = None) -> Results:
    analysis = pipeline.build_analysis(db, None)
    if study is not None:
        analysis = dataclasses.replace(analysis, study=study)
    return pipeline.analyse(analysis, as_of=AS_OF)


def test_every_outcome_gets_a_block_and_the_results_validate(
    small_registry: Path,  # noqa: F811
) -> None:
    results = analysed(small_registry)
    trial = results["target_trial"]
    assert trial is not None
    assert [row["element"] for row in trial["protocol"]] == ELEMENTS
    assert (trial["grace_days"], trial["primary_outcome"]) == (56, "adjacent")
    assert trial["settings"]["years"] == [1, 2, 5] and trial["settings"]["margin_year"] == 5
    assert list(trial["outcomes"]) == list(results["study"]["outcomes"])
    for block in trial["outcomes"].values():
        assert block["status"] in ("estimated", "not_estimable")
        assert set(block["strategies"]) == {"treat", "no_treat"}
        assert set(block["risk_difference"]) == {"1", "2", "5"}
    assert "target_trial" not in results["study"]  # its settings are in target_trial
    assert errors(results) == []


def test_build_results_hands_each_outcome_its_rows_and_the_assessments(
    small_registry: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, set[str], int, Protocol]] = []
    real = registry.analysis.results.emulate

    def spy(frame: pl.DataFrame, assessments: pl.DataFrame, protocol: Protocol, *,
            outcome: str, imputed: Any = (), runner: Any = None) -> Any:  # fmt: skip
        calls.append((outcome, set(frame.get_column("outcome")), assessments.height, protocol))
        return real(frame, assessments, protocol, outcome=outcome, imputed=imputed, runner=runner)

    monkeypatch.setattr(registry.analysis.results, "emulate", spy)
    analysis = pipeline.build_analysis(small_registry, None)
    pipeline.analyse(analysis, as_of=AS_OF)
    assert [c[0] for c in calls] == list(analysis.study.outcomes)
    assert all(c[1] == {c[0]} for c in calls)
    assert all(c[2] == analysis.assessments.height > 0 for c in calls)
    assert all(c[3] == analysis.study.target_trial for c in calls)


def test_a_disabled_target_trial_is_null_validates_and_renders(
    small_registry: Path,  # noqa: F811
) -> None:
    study = Study(target_trial=Protocol(enabled=False))
    results = analysed(small_registry, study)
    assert results["target_trial"] is None
    assert errors(results) == []
    assert "<html" in render_report(results, built_at=dt.datetime(2026, 1, 2))


def test_the_protocol_table_follows_the_study() -> None:
    study = Study(treatment_procedures=("vertebroplasty", "kyphoplasty"),
                  target_trial=Protocol(grace_days=28, years=(1, 3), margin_year=3))  # fmt: skip
    rows = {r["element"]: r for r in protocol_table(study)}
    assert list(rows) == ELEMENTS
    assert "vertebroplasty or kyphoplasty" in rows["Treatment strategies"]["specification"]
    assert "within 28 days" in rows["Treatment strategies"]["specification"]
    assert rows["Grace period"]["specification"] == "28 days"
    assert "1, 3 years" in rows["Analysis"]["specification"]
