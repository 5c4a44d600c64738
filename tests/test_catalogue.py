"""The catalogue: every outcome and model declared once, and everything reads it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, get_args

import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from scipy import stats

from registry import catalogue, constants
from registry import console as terminal
from registry.catalogue import Model, Outcome
from registry.cli import main
from registry.report import figures
from registry.report.sections import hr_rows, km_item
from registry.result_types import CoxModels, FitName, OutcomeResults
from registry.study import parse_study
from registry.time_to_event import first_events


def test_fit_name_literal_lists_the_catalogue_models_in_order() -> None:
    # a Literal cannot be built from a tuple for mypy: this keeps the two equal
    assert get_args(FitName) == tuple(m.key for m in catalogue.MODELS)


def test_every_model_is_a_key_of_an_outcome_result() -> None:
    # fine_gray sits beside `cox` in an outcome; every other model inside it
    places = set(CoxModels.__annotations__) | set(OutcomeResults.__annotations__)
    assert {m.key for m in catalogue.MODELS} <= places
    # the complete-case twins of pooled models (analysis/missing.py) are the same models
    twins = {k for k in CoxModels.__annotations__ if k.endswith("_complete_case")}
    assert {k.removesuffix("_complete_case") for k in twins} <= {
        m.key for m in catalogue.MODELS
    } | {"piecewise"}
    cox_hr_models = set(CoxModels.__annotations__) - {"piecewise"} - twins
    assert cox_hr_models <= {m.key for m in catalogue.MODELS}


def test_keys_and_labels_are_unique_and_one_model_is_primary() -> None:
    for table in (catalogue.OUTCOMES, catalogue.MODELS):
        for field in ("key", "label"):
            values = [getattr(entry, field) for entry in table]
            assert len(values) == len(set(values)), field
    assert [m.key for m in catalogue.MODELS if m.primary] == [catalogue.PRIMARY_MODEL]
    assert catalogue.terminal_models()[0].key == catalogue.PRIMARY_MODEL
    assert catalogue.PRIMARY_OUTCOME in catalogue.outcome_keys()


def test_unknown_keys_name_the_known_ones() -> None:
    with pytest.raises(KeyError, match="adjacent, remote"):
        catalogue.outcome("two_levels_away")
    with pytest.raises(KeyError, match="time_varying_adjusted"):
        catalogue.model("cure")
    assert catalogue.outcome_label("from_an_older_build") == "from_an_older_build"


def test_constants_are_the_statistical_ones() -> None:
    assert float(stats.norm.ppf(0.975)) == constants.Z95  # exactly, not approximately
    assert constants.DAYS_PER_YEAR == 365.25


@given(st.lists(st.integers(min_value=0, max_value=23), max_size=30))
def test_outcome_filters_split_fractures_by_distance(distances: list[int]) -> None:
    frame = pl.DataFrame({"distance": distances}, schema={"distance": pl.Int16})
    picked = {o.key: frame.filter(o.selects()).height for o in catalogue.OUTCOMES}
    assert picked["adjacent"] == distances.count(1)
    assert picked["same_level"] == distances.count(0)
    assert picked["remote"] == sum(d >= 2 for d in distances)
    # same-level, adjacent and remote partition the new fractures; any_new is all of them
    assert picked["same_level"] + picked["adjacent"] + picked["remote"] == len(distances)
    assert picked["any_new"] == len(distances)


def fit(hr: float = 0.9) -> dict[str, Any]:
    return {"hr": hr, "ci_lower": hr - 0.2, "ci_upper": hr + 0.3, "p": 0.04, "n": 120, "events": 30}


NEW_MODEL = Model("g_formula", "G-formula, adjusted", "G-formula", "counting", "g-formula",
                  on_terminal=True)  # fmt: skip


def outcome_with(model_fits: dict[str, Any]) -> Any:
    failed = {"error": "not fitted"}
    cox = {m.key: model_fits.get(m.key, failed) for m in catalogue.MODELS if m.key != "fine_gray"}
    return {"cox": cox, "fine_gray": model_fits.get("fine_gray", failed)}


def test_a_new_model_is_one_catalogue_entry_for_forest_table_and_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(catalogue, "MODELS", (*catalogue.MODELS, NEW_MODEL))
    outcomes = {"adjacent": outcome_with({"g_formula": fit(0.8), "time_varying_adjusted": fit()})}

    labels = list(figures.forest_figure(outcomes).layout.yaxis.ticktext)
    assert "G-formula · n 120 · events 30" in labels

    rows = hr_rows(outcomes, 5)
    assert [r["label"] for r in rows] == [m.label for m in catalogue.MODELS]
    assert rows[-1]["estimate"] == "0.80 (0.60–1.10)" and rows[-1]["primary"] is False

    out = Console(width=80, record=True, force_terminal=False, color_system=None)
    terminal.print_primary(out, {"small_cell_threshold": 5, "outcomes": outcomes})  # type: ignore[typeddict-item]
    assert "g_formula" in out.export_text()


def test_a_new_outcome_is_one_catalogue_entry_for_study_frames_and_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    two_away = Outcome("two_away", "Fracture two levels away", "new fractures two levels away",
                       "a new fracture two levels from a reference level", 2, 2)  # fmt: skip
    monkeypatch.setattr(catalogue, "OUTCOMES", (*catalogue.OUTCOMES, two_away))

    study = parse_study({"outcomes": ["adjacent", "two_away"]})
    assert study.outcomes == ("adjacent", "two_away")

    classified = pl.DataFrame(
        {"patient_id": ["a", "a", "b"], "detected_on": [1, 2, 3], "distance": [1, 2, 3],
         "position": [5, 6, 7]},
        schema_overrides={"distance": pl.Int16},
    )  # fmt: skip
    firsts = first_events(classified, study.outcomes)
    assert firsts.filter(pl.col("outcome") == "two_away").get_column("detected_on").to_list() == [2]

    km = {"treated": {"error": "none"}, "untreated": {"error": "none"}}
    item = km_item("two_away", {"km": km, "logrank": {"error": "none"},  # type: ignore[arg-type]
                                "logrank_stratified_site": {"error": "none"}}, 5)  # fmt: skip
    assert item["caption"] == "Fracture two levels away"


def test_labels_are_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    renamed = tuple(
        replace(m, forest_label=m.forest_label.upper()) if m.primary else m
        for m in catalogue.MODELS
    )
    monkeypatch.setattr(catalogue, "MODELS", renamed)
    outcomes = {"adjacent": outcome_with({"time_varying_adjusted": fit()})}
    labels = list(figures.forest_figure(outcomes).layout.yaxis.ticktext)
    assert labels[1].startswith("<b>TIME-VARYING, ADJUSTED (PRIMARY) · n 120")


@pytest.mark.slow
def test_demo_results_have_exactly_the_catalogue_outcomes_and_models(tmp_path: Path) -> None:
    run = CliRunner().invoke(main, ["demo", "--out", str(tmp_path), "--as-of", "2026-01-01"])
    assert run.exit_code == 0, run.output
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert tuple(results["outcomes"]) == catalogue.outcome_keys()
    for name, outcome in results["outcomes"].items():
        found = {k for k in outcome["cox"] if k != "piecewise"} | {"fine_gray"}
        found = {k for k in found if not k.endswith("_complete_case")}  # pooled models' twins
        assert found == {m.key for m in catalogue.MODELS}, name
        for m in catalogue.MODELS:
            fitted = outcome["fine_gray"] if m.key == "fine_gray" else outcome["cox"][m.key]
            assert fitted.get("label", m.description) == m.description, (name, m.key)
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert all(o.label in page for o in catalogue.OUTCOMES)
    assert all(m.label in page for m in catalogue.MODELS)
