"""results.json against its committed JSON Schema (registry/results.schema.json), which is
generated from the types in registry/result_types.py."""

from __future__ import annotations

import copy
import datetime as dt
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from jsonschema.exceptions import ValidationError
from rich.console import Console

from registry.pipeline import run_demo
from registry.result_schema import schema, schema_text

COMMITTED = Path(__file__).parents[1] / "registry" / "results.schema.json"


def errors(document: Any) -> list[str]:
    """Every validation error as '<JSON path>: <message>'."""
    validator = jsonschema.Draft202012Validator(json.loads(COMMITTED.read_text()))
    found = [cause for e in validator.iter_errors(document) for cause in explain(e)]
    return sorted(f"{e.json_path}: {e.message}" for e in found)


def explain(error: ValidationError) -> list[ValidationError]:
    """An anyOf failure (a fit or {"error"}, a count or null) as the errors of the branch
    that came closest, the first on a tie (the fitted type comes first in every union)."""
    if not error.context:
        return [error]
    branches: dict[Any, list[ValidationError]] = {}
    for cause in error.context:
        branches.setdefault(cause.relative_schema_path[0], []).append(cause)
    closest = min(branches.values(), key=len)
    return [e for cause in closest for e in explain(cause)]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("schema")
    run_demo(out, patients=1700, seed=20260101, as_of=dt.date(2026, 1, 1),
             console=Console(quiet=True), built_at=dt.datetime(2026, 1, 2))  # fmt: skip
    return dict(json.loads((out / "results.json").read_text()))


def test_committed_schema_is_the_one_the_types_generate() -> None:
    # after changing registry/result_types.py:
    #   .venv/bin/python -m registry.result_schema > registry/results.schema.json
    assert COMMITTED.read_text() == schema_text()
    jsonschema.Draft202012Validator.check_schema(schema())


def test_schema_ships_inside_the_package() -> None:
    shipped = files("registry").joinpath("results.schema.json")
    assert shipped.is_file() and json.loads(shipped.read_text()) == schema()


def test_demo_results_validate(demo: dict[str, Any]) -> None:
    assert errors(demo) == []


def test_small_registry_with_failed_models_and_withheld_counts_validates(
    tmp_path: Path,
) -> None:
    # 60 patients: small arms, models that cannot be fitted ({"error"}), null counts
    run_demo(tmp_path, patients=60, seed=7, as_of=dt.date(2026, 1, 1),
             console=Console(quiet=True), built_at=dt.datetime(2026, 1, 2))  # fmt: skip
    results = json.loads((tmp_path / "results.json").read_text())
    assert errors(results) == []
    assert "null" in (tmp_path / "results.json").read_text()


def test_a_renamed_key_fails_naming_its_path(demo: dict[str, Any]) -> None:
    broken = copy.deepcopy(demo)
    fit = broken["outcomes"]["adjacent"]["cox"]["time_varying_adjusted"]
    fit["hazard_ratio"] = fit.pop("hr")
    found = errors(broken)
    assert found and all(
        e.startswith("$.outcomes.adjacent.cox.time_varying_adjusted") for e in found
    )
    assert any("'hr' is a required property" in e for e in found)


def test_a_missing_section_or_an_unknown_key_fails(demo: dict[str, Any]) -> None:
    broken = copy.deepcopy(demo)
    del broken["cohort"]["attrition"]
    broken["table1"][0]["treated"]["median"] = 1.0
    found = errors(broken)
    assert any(e.startswith("$.cohort: 'attrition' is a required property") for e in found)
    assert any(e.startswith("$.table1[0].treated: Additional properties") for e in found)


def test_a_count_of_the_wrong_type_fails(demo: dict[str, Any]) -> None:
    broken = copy.deepcopy(demo)
    broken["cohort"]["n"] = "1,700"
    assert errors(broken) == ["$.cohort.n: '1,700' is not of type 'integer', 'null'"]


def test_optional_keys_are_only_the_declared_ones() -> None:
    defs = schema()["$defs"]
    cohort = defs["CohortSummary"]
    assert set(cohort["properties"]) - set(cohort["required"]) == {"median_follow_up_days"}
    cox = defs["CoxFit"]
    assert set(cox["properties"]) - set(cox["required"]) == {"n_rows", "warnings", "mi"}
    assert "ph_test" not in cox["properties"]  # internal: moved to the outcome before writing
    assert defs["KMCurve"]["properties"]["survival_at_years"]["required"] == list("12345")
