"""Terminal tables: readable at 80 columns, the primary model marked, suppression as the report."""

from __future__ import annotations

import polars as pl
from rich.console import Console

from registry import catalogue
from registry import console as terminal


def _console() -> Console:
    return Console(width=80, record=True, force_terminal=False, color_system=None)


def _fit(hr: float = 0.91, events: int | None = 209) -> dict[str, object]:
    return {"hr": hr, "ci_lower": 0.66, "ci_upper": 1.25, "p": 0.558, "n": 1581, "events": events}


def _results() -> dict[str, object]:
    cox = {m.key: _fit() for m in catalogue.terminal_models()}
    cox["iptw"] = {"error": "no events in the treated arm"}
    cox["landmark"] = _fit(events=None)
    return {"small_cell_threshold": 7, "outcomes": {"adjacent": {"cox": cox}}}


def test_hazard_ratios_fit_80_columns_and_mark_the_primary_model() -> None:
    console = _console()
    terminal.print_primary(console, _results())
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "time_varying_adjusted *" in text and "* primary analysis" in text
    assert "withheld" in text and "<min" not in text  # the report's marker
    assert "below 7" in text  # the threshold in force
    assert "not estimable: adjacent / iptw: no events in the treated arm" in text


def test_attrition_fits_80_columns_with_every_rule_whole() -> None:
    rules = ["registered patients", "malignant or traumatic index fracture",
             "missing covariates for adjusted models"]  # fmt: skip
    attrition = pl.DataFrame(
        {"step": [0, 1, 2], "rule": rules, "excluded": [0, 58, 61],
         "remaining": [1700, 1642, 1581], "remaining_treated": [834, 834, 799],
         "remaining_conservative": [866, 808, 782], "applies_to": ["all", "all", "adjusted models"]}
    )  # fmt: skip
    console = _console()
    terminal.print_attrition(console, attrition)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text  # wrapped, never cut
    words = text.split()
    assert all(word in words for word in ["malignant", "or", "traumatic", "index", "fracture"])
    assert "(adjusted" in words and "1,581" in words


def test_check_names_are_not_cut_at_80_columns() -> None:
    from registry.quality import VIOLATION_SCHEMA

    console = _console()
    terminal.print_checks(console, pl.DataFrame(schema=VIOLATION_SCHEMA), details=False)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "procedure_at_non_index_level" in text and "…" not in text
