"""The target-trial estimators against R, on exported clones and weights.

Golden values come from tests/reference/target_trial_reference.R (run it from the repository
root after tests/reference/target_trial_export.py); the R calls are quoted beside each test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from registry.analysis.target_trial.risks import aalen_johansen, target_trial_risks
from registry.analysis.target_trial.weights import fit_logistic

REFERENCE = Path(__file__).parent / "reference" / "target_trial"


def reference(name: str) -> pl.DataFrame:
    return pl.read_csv(REFERENCE / name)


def test_initiation_model_matches_r_glm() -> None:
    # glm(initiated ~ ., family = binomial, data = initiation,
    #     control = glm.control(epsilon = 1e-14, maxit = 100))
    data = reference("initiation.csv")
    terms = data.columns[1:]
    fit = fit_logistic(data.get_column("initiated").to_numpy().astype(float), data, terms)
    expected = reference("glm_coef.csv")
    assert fit.names == expected.get_column("term").to_list()
    np.testing.assert_allclose(fit.coef_, expected.get_column("estimate").to_numpy(), atol=1e-8)


@pytest.mark.parametrize("weight", ["w", "sw"])
def test_weighted_aalen_johansen_matches_r_survfit(weight: str) -> None:
    # survfit(Surv(start, stop, state) ~ strategy, data = clones, weights = <w>, id = row): each row its own
    # left-truncated record (see the R script for why not id = clone_id)
    clones = reference("clones.csv")
    expected = reference(f"aj_{weight}.csv")
    for strategy in ("treat", "no_treat"):
        curve = aalen_johansen(clones.filter(pl.col("strategy") == strategy), weight)
        r = expected.filter(pl.col("strategy") == strategy)
        # R lists censoring times too: the curve's value is the last event time's on or before
        at = np.searchsorted(curve.get_column("time").to_numpy(), r.get_column("time"), "right")
        for ours, theirs in (("cif", "p_outcome"), ("cif_death", "p_death")):
            values = np.concatenate([[0.0], curve.get_column(ours).to_numpy()])[at]
            np.testing.assert_allclose(values, r.get_column(theirs).to_numpy(), atol=1e-10)


@pytest.mark.parametrize("weight", ["w", "sw"])
def test_risks_at_one_two_five_years_match_r(weight: str) -> None:
    # summary(fit, times = 365.25 * c(1, 2, 5)): a year beyond follow-up is left out
    result = target_trial_risks(reference("clones.csv"), weight=weight)
    assert isinstance(result, tuple)
    _, table = result
    expected = reference(f"risks_{weight}.csv")
    for strategy in ("treat", "no_treat"):
        r = dict(expected.filter(pl.col("strategy") == strategy).select("year", "p_outcome").rows())
        for year, ours in table.select("year", strategy).rows():
            if year in r:
                assert ours == pytest.approx(r[year], abs=1e-10)
            else:
                assert ours is None
    assert expected.height >= 4  # at least 1 and 2 years in both strategies


@pytest.mark.slow
def test_exported_inputs_are_what_the_pipeline_builds_today(tmp_path: Path) -> None:
    # the committed inputs of the R script, rebuilt from `registry synth --patients 400 --seed 7`
    from tests.reference.target_trial_export import main

    main(tmp_path)
    for name in ("initiation.csv", "clones.csv"):
        ours, committed = pl.read_csv(tmp_path / name), reference(name)
        assert ours.columns == committed.columns and ours.height == committed.height
        for column in ours.columns:
            if ours.schema[column] == pl.Float64:
                np.testing.assert_allclose(ours[column], committed[column], rtol=1e-12)
            else:
                assert ours[column].to_list() == committed[column].to_list()
