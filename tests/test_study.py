from pathlib import Path

import pytest

from registry.errors import ConfigError
from registry.study import DEFAULT_STUDY, Study, load_study, parse_study


def test_default_study_file_matches_the_design() -> None:
    study = load_study()
    assert study.outcomes == ("adjacent", "remote", "same_level", "any_new")
    assert (study.horizon_days, study.landmark_days, study.min_cell_count) == (1826, 90, 5)
    assert study.treatment_procedures == ("vertebroplasty",)
    assert "bmd_t_score" in study.covariates
    assert load_study(DEFAULT_STUDY) == study


def test_every_problem_is_reported_at_once_naming_the_keys() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_study(
            {"outcomes": ["adjacent", "knee"], "treatment_procedures": [], "landmark_days": 4000,
             "covariates": ["height"], "primary_outcome": "remote", "extra": 1},
            source="x.toml",
        )  # fmt: skip
    text = str(caught.value)
    assert text.startswith("x.toml: 6 problem(s)")
    for fragment in ("'knee'", "treatment_procedures must not be empty", "landmark_days",
                     "'height'", "primary_outcome 'remote'", "unknown key 'extra'"):  # fmt: skip
        assert fragment in text


def test_kyphoplasty_can_count_as_treatment() -> None:
    study = parse_study({"treatment_procedures": ["vertebroplasty", "kyphoplasty"]})
    assert study == Study(treatment_procedures=("vertebroplasty", "kyphoplasty"))


def test_missing_or_broken_study_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such study file"):
        load_study(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("outcomes = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_study(bad)


def test_outcomes_without_the_default_primary_outcome_need_one_named() -> None:
    """A study of remote fractures only would otherwise have an unanalysed primary outcome."""
    with pytest.raises(ConfigError, match="primary_outcome 'adjacent' is not one of the outcomes"):
        parse_study({"outcomes": ["remote"]}, source="x.toml")
    study = parse_study({"outcomes": ["remote"], "primary_outcome": "remote"})
    assert study.primary_outcome == "remote"
