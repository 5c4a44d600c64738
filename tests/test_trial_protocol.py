"""The study file's [target_trial] table (registry/trial_protocol.py through registry/study.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.errors import ConfigError
from registry.study import Study, load_study, parse_study
from registry.trial_protocol import Protocol


def problems(table: Any) -> str:
    """The ConfigError message of a study with this [target_trial] table."""
    with pytest.raises(ConfigError) as caught:
        parse_study({"target_trial": table}, source="s.toml")
    return str(caught.value)


def test_the_default_study_sets_the_protocol_defaults_and_a_study_without_it_too() -> None:
    assert load_study().target_trial == Protocol()
    assert parse_study({}).target_trial == Protocol()
    assert Study().target_trial.enabled


def test_a_full_table_is_parsed_into_the_protocol() -> None:
    table = {"grace_days": 28, "years": [1, 3], "truncation_percentile": 95,
             "weights": "unstabilised", "replicates": 0, "seed": 7, "margin": 1.25,
             "margin_scale": "ratio", "margin_year": 3, "positivity_bounds": [0.1, 0.9],
             "enabled": False}  # fmt: skip
    assert parse_study({"target_trial": table}).target_trial == Protocol(
        grace_days=28, years=(1, 3), truncation_percentile=95.0, weights="unstabilised",
        replicates=0, seed=7, margin=1.25, margin_scale="ratio", margin_year=3,
        positivity_bounds=(0.1, 0.9), enabled=False,
    )  # fmt: skip


def test_every_problem_is_reported_at_once_naming_its_key() -> None:
    text = problems({"grace_days": 0, "years": [5, 1], "truncation_percentile": 80,
                     "weights": "raw", "replicates": -1, "seed": "x", "margin": 0.5,
                     "margin_scale": "ratio", "positivity_bounds": [0.9, 0.1],
                     "enabled": "yes", "arms": 2})  # fmt: skip
    assert text.startswith("s.toml: 10 problem(s)")  # margin_year: not judged on bad years
    for key in ("grace_days", "years", "truncation_percentile", "weights", "replicates",
                "seed", "margin must be a risk ratio above 1", "positivity_bounds", "enabled",
                "unknown key 'arms'"):  # fmt: skip
        assert key in text


def test_margins_by_scale_and_the_margin_year_among_the_years() -> None:
    assert "between 0 and 1" in problems({"margin": 5})
    assert "must be set when margin_scale is 'ratio'" in problems({"margin_scale": "ratio"})
    assert "margin_year must be one of the years [1, 2]" in problems({"years": [1, 2]})
    assert parse_study(
        {"target_trial": {"years": [1, 2], "margin_year": 2}}
    ).target_trial.years == (1, 2)


def test_a_section_that_is_not_a_table_is_refused() -> None:
    assert "target_trial must be a table" in problems(56)


def test_the_section_in_a_study_file_with_a_syntax_slip(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('title = "x"\n[target_trial]\ngrace_days = 400\nyears = [1, 2, 2]\n')
    with pytest.raises(ConfigError, match=r"target_trial\.grace_days.*\n.*target_trial\.years"):
        load_study(path)


VALID: dict[str, st.SearchStrategy[Any]] = {
    "grace_days": st.integers(1, 365),
    "truncation_percentile": st.floats(90, 100) | st.integers(90, 100),
    "weights": st.sampled_from(["stabilised", "unstabilised"]),
    "replicates": st.integers(0, 5000),
    "seed": st.integers(0, 2**63 - 1),
    "positivity_bounds": st.tuples(st.floats(0.01, 0.49), st.floats(0.51, 0.99)).map(list),
    "enabled": st.booleans(),
}
TOML_VALUES = st.recursive(
    st.none().map(lambda _: "x") | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=True) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                max_size=2),
    max_leaves=5,
)  # fmt: skip
INVALID: dict[str, st.SearchStrategy[Any]] = {
    "grace_days": st.integers(-1000, 0) | st.integers(366, 10**6) | st.booleans() | st.text(),
    "truncation_percentile": st.floats(0, 89.99) | st.floats(100.01, 1e9) | st.just("99"),
    "weights": st.text().filter(lambda t: t not in ("stabilised", "unstabilised")),
    "replicates": st.integers(5001, 10**9) | st.integers(-100, -1) | st.floats(0, 10),
    "seed": st.integers(-(2**63), -1) | st.text() | st.floats(),
    "positivity_bounds": st.lists(st.floats(-1, 2), max_size=3).filter(
        lambda v: not (len(v) == 2 and 0 < v[0] < v[1] < 1)
    ),
    "enabled": st.integers() | st.text(),
}


@st.composite
def tables(draw: st.DrawFn) -> tuple[dict[str, Any], set[str]]:
    """A [target_trial] table with each key left out, valid or invalid; the invalid keys."""
    table: dict[str, Any] = {}
    bad: set[str] = set()
    for key in VALID:
        choice = draw(st.sampled_from(["absent", "valid", "invalid"]))
        if choice != "absent":
            table[key] = draw(VALID[key] if choice == "valid" else INVALID[key])
            bad |= {key} if choice == "invalid" else set()
    years = draw(st.lists(st.integers(1, 30), min_size=1, max_size=5, unique=True).map(sorted))
    if draw(st.booleans()):  # years with a margin year among them, or one outside
        table["years"], table["margin_year"] = years, draw(st.sampled_from(years))
        if draw(st.booleans()):
            table["margin_year"] = draw(st.integers(31, 40))
            bad.add("margin_year")
    scale = draw(st.sampled_from(["difference", "ratio", None]))
    if scale is not None:
        ok = draw(st.booleans())
        low, high = (0.001, 0.999) if scale == "difference" else (1.001, 100.0)
        table["margin_scale"] = scale
        table["margin"] = draw(st.floats(low, high) if ok else st.floats(-5, 0) | st.just("0.05"))
        bad |= set() if ok else {"margin"}
    return table, bad


@settings(max_examples=300, deadline=None)
@given(drawn=tables())
def test_valid_tables_load_and_invalid_ones_name_each_bad_key(
    drawn: tuple[dict[str, Any], set[str]],
) -> None:
    table, bad = drawn
    if not bad:
        protocol = parse_study({"target_trial": table}).target_trial
        assert all(getattr(protocol, k) == (tuple(v) if isinstance(v, list) else v)
                   for k, v in table.items())  # fmt: skip
        return
    text = problems(table)
    for key in bad:
        assert f"target_trial.{key}" in text


@settings(max_examples=300, deadline=None)
@given(table=st.dictionaries(st.sampled_from([*VALID, "years", "margin", "margin_scale",
                                              "margin_year", "other"]), TOML_VALUES))  # fmt: skip
def test_any_toml_values_give_a_protocol_or_a_config_error_never_a_traceback(
    table: dict[str, Any],
) -> None:
    try:
        assert isinstance(parse_study({"target_trial": table}).target_trial, Protocol)
    except ConfigError as exc:
        assert "target_trial" in str(exc)
