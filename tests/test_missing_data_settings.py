"""The study file's [missing_data] table: defaults, parsing and every problem named by key."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.errors import ConfigError
from registry.missing_data import MissingData, missing_data_problems
from registry.study import COVARIATES, load_study, parse_study


def test_default_study_imputes_twenty_times() -> None:
    spec = load_study().missing_data
    assert spec == MissingData()
    assert (spec.method, spec.imputations, spec.variables) == ("multiple_imputation", 20, None)


def test_settings_are_parsed() -> None:
    study = parse_study({"missing_data": {"method": "complete_case", "imputations": 5,
                                          "variables": ["bmd_t_score"], "seed": 7}})  # fmt: skip
    assert study.missing_data == MissingData(
        method="complete_case", imputations=5, variables=("bmd_t_score",), seed=7
    )


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ({"method": "mice"}, "missing_data.method"),
        ({"imputations": 1}, "missing_data.imputations"),
        ({"imputations": True}, "missing_data.imputations"),
        ({"iterations": 0}, "missing_data.iterations"),
        ({"donors": 2.5}, "missing_data.donors"),
        ({"variables": ["weight"]}, "'weight' is not a covariate"),
        ({"variables": "bmd_t_score"}, "missing_data.variables must be a list"),
        ({"imputation": 5}, "unknown key 'imputation'"),
    ],
)
def test_each_problem_names_its_key(table: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        parse_study({"missing_data": table})


def test_variables_must_be_covariates_of_this_study() -> None:
    with pytest.raises(ConfigError, match="'bmd_t_score' is not a covariate"):
        parse_study({"covariates": ["age"], "missing_data": {"variables": ["bmd_t_score"]}})


VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 600), st.floats(allow_nan=True),
    st.text(max_size=5), st.lists(st.sampled_from([*COVARIATES, "x"]), max_size=3),
)  # fmt: skip


@given(st.dictionaries(st.sampled_from(["method", "imputations", "iterations", "seed", "donors",
                                        "variables", "other"]), VALUES, max_size=4))  # fmt: skip
def test_any_table_is_either_valid_or_refused_by_key(table: dict[str, Any]) -> None:
    problems = missing_data_problems(table, COVARIATES)
    if problems:
        assert all(p.startswith("missing_data") for p in problems)
        with pytest.raises(ConfigError):
            parse_study({"missing_data": table})
    else:
        assert isinstance(parse_study({"missing_data": table}).missing_data, MissingData)
