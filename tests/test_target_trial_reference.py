"""The target-trial estimators against R, on exported clones and weights.

Golden values come from tests/reference/target_trial_reference.R (run it from the repository
root after tests/reference/target_trial_export.py); the R calls are quoted beside each test.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from registry.analysis.target_trial.evalue import e_value, e_value_ci, hr_to_rr, is_common
from registry.analysis.target_trial.hazard import HazardRatio, weighted_hazard_ratio
from registry.analysis.target_trial.risks import aalen_johansen, target_trial_risks, year_day
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
    # summary(fit, times = c(365, 730, 1826), extend = FALSE): the days risks.year_day reads
    result = target_trial_risks(reference("clones.csv"), weight=weight)
    assert isinstance(result, tuple)
    _, table = result
    expected = reference(f"risks_{weight}.csv")
    assert sorted(expected.select("strategy", "year").rows()) == sorted(
        (strategy, year) for strategy in ("treat", "no_treat") for year in (1, 2, 5)
    )
    for strategy in ("treat", "no_treat"):
        r = dict(expected.filter(pl.col("strategy") == strategy).select("year", "p_outcome").rows())
        for year, ours in table.select("year", strategy).rows():
            assert ours == pytest.approx(r[year], abs=1e-10)


def test_export_follows_clones_of_both_strategies_to_five_years() -> None:
    # the 5-year comparison is only a comparison if clones are still at risk on day 1826
    clones = reference("clones.csv")
    for strategy in ("treat", "no_treat"):
        at_five = clones.filter((pl.col("strategy") == strategy) & (pl.col("stop") == year_day(5)))
        assert at_five.height >= 20


@pytest.mark.parametrize("weight", ["w", "sw"])
def test_weighted_hazard_ratio_matches_r_coxph(weight: str) -> None:
    # coxph(Surv(start, stop, event == 1) ~ treat, data = clones, weights = <w>,
    #       ties = "efron", id = clone_id, control = coxph.control(eps = 1e-11))
    result = weighted_hazard_ratio(reference("clones.csv"), weight)
    assert isinstance(result, HazardRatio)
    r = reference(f"cox_{weight}.csv").row(0, named=True)
    assert result.coef == pytest.approx(r["coef"], abs=1e-9)
    assert result.estimate == pytest.approx(r["hr"], abs=1e-9)
    assert result.se_robust == pytest.approx(r["se_robust"], abs=1e-8)
    assert result.events == r["events"]


def test_e_values_match_r() -> None:
    # E(x) = x + sqrt(x (x - 1)), x = rr or 1 / rr; CI: 1 if it holds 1, else E(nearer limit)
    for rr, lower, upper, e_point, e_ci in reference("evalue.csv").iter_rows():
        assert e_value(rr) == pytest.approx(e_point, rel=1e-12, abs=1e-12)
        assert e_value_ci(rr, lower, upper) == pytest.approx(e_ci, rel=1e-12, abs=1e-12)


def test_hazard_ratio_to_risk_ratio_matches_r() -> None:
    # (1 - 0.5^sqrt(hr)) / (1 - 0.5^sqrt(1 / hr)) for a common outcome, hr for a rare one
    for hr, common, rare in reference("hr_to_rr.csv").iter_rows():
        assert hr_to_rr(hr, common=True) == pytest.approx(common, rel=1e-12, abs=1e-12)
        assert hr_to_rr(hr, common=False) == rare


@pytest.mark.parametrize("weight", ["w", "sw"])
def test_e_values_of_the_exported_clones_match_r(weight: str) -> None:
    # the 5-year risk ratio (risks_<w>.csv) and the hazard ratio with its robust Wald CI
    # (cox_<w>.csv), converted when the no_treat 5-year risk exceeds 15 %, and their E-values
    result = target_trial_risks(reference("clones.csv"), weight=weight)
    hr = weighted_hazard_ratio(reference("clones.csv"), weight)
    assert isinstance(result, tuple) and isinstance(hr, HazardRatio)
    five = result[1].filter(pl.col("year") == 5).row(0, named=True)
    common = is_common(five["no_treat"])
    limits = [math.exp(hr.coef + z * 1.959963984540054 * hr.se_robust) for z in (0, -1, 1)]
    point, lower, upper = (hr_to_rr(x, common) for x in limits)
    rows = reference("evalue_clones.csv").filter(pl.col("weight") == weight)
    r = {row["measure"]: row for row in rows.iter_rows(named=True)}
    assert r["risk_ratio"]["common"] is common and r["hazard_ratio"]["common"] is common
    assert five["rr"] == pytest.approx(r["risk_ratio"]["estimate"], rel=1e-10)
    assert e_value(five["rr"]) == pytest.approx(r["risk_ratio"]["e_point"], rel=1e-9)
    expected = tuple(r["hazard_ratio"][k] for k in ("estimate", "lower", "upper"))
    assert (point, lower, upper) == pytest.approx(expected, rel=1e-9)
    assert e_value(point) == pytest.approx(r["hazard_ratio"]["e_point"], rel=1e-9)
    assert e_value_ci(point, lower, upper) == pytest.approx(r["hazard_ratio"]["e_ci"], rel=1e-12)


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
