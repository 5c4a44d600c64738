"""Propensity model, stabilised weights, balance and the weighted Cox model against R.

Reference: tests/reference/iptw_reference.R on tests/data/iptw_landmark.csv.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from registry.errors import ModelFitError
from registry.models.iptw import fit_propensity, standardised_difference, summarise_weights

HERE = Path(__file__).parent
COVARIATES = [
    "age",
    "male",
    "bmd_t_score",
    "glucocorticoids",
    "prior_vertebral_fractures",
    "n_index_levels",
]


@pytest.fixture(scope="module")
def data() -> pl.DataFrame:
    return pl.read_csv(HERE / "data" / "iptw_landmark.csv")


def reference(name: str) -> pl.DataFrame:
    return pl.read_csv(HERE / "reference" / "iptw" / f"{name}.csv", infer_schema_length=0)


def numbers(frame: pl.DataFrame, column: str) -> np.ndarray:
    return frame.get_column(column).cast(pl.Float64).to_numpy()


def propensity(data: pl.DataFrame):  # type: ignore[no-untyped-def]
    x = data.select(COVARIATES).to_numpy().astype(float)
    return fit_propensity(data["treated"].to_numpy() == 1, x, COVARIATES)


def test_propensity_coefficients_match_glm(data: pl.DataFrame) -> None:
    # R: glm(treated ~ age + male + bmd_t_score + glucocorticoids + prior_vertebral_fractures
    #        + n_index_levels,
    #        family = binomial, control = glm.control(epsilon = 1e-14))
    expected = numbers(reference("propensity_coef"), "coef")
    np.testing.assert_allclose(propensity(data).coef, expected, rtol=1e-6)


def test_stabilised_weights_match_r(data: pl.DataFrame) -> None:
    # R: ifelse(treated == 1, mean(treated) / ps, (1 - mean(treated)) / (1 - ps))
    expected = numbers(reference("weights"), "weight")
    np.testing.assert_allclose(propensity(data).weights, expected, rtol=1e-7)


def test_balance_before_and_after_weighting_matches_r(data: pl.DataFrame) -> None:
    # R: smd() in iptw_reference.R (pooled SD, weighted means and variances)
    ref = reference("balance")
    table = propensity(data).balance
    assert table["covariate"].to_list() == COVARIATES
    np.testing.assert_allclose(
        table["smd_before"].to_numpy(), numbers(ref, "smd_before"), atol=1e-10
    )
    np.testing.assert_allclose(table["smd_after"].to_numpy(), numbers(ref, "smd_after"), atol=1e-10)
    assert table["smd_after"].abs().max() < 0.1  # weighting balances the demo cohort


def test_weighted_cox_with_robust_variance_matches_r(data: pl.DataFrame) -> None:
    # R: coxph(Surv(duration_days, event == 1) ~ treated, weights = w, robust = TRUE)
    from registry.models.cox import fit_cox

    ps = propensity(data)
    fit = fit_cox(
        data["duration_days"].to_numpy().astype(float),
        data["event"].to_numpy() == 1,
        data["treated"].to_numpy().astype(float)[:, None],
        weights=ps.weights,
        robust=True,
        names=("treated",),
    )
    ref = reference("weighted_cox")
    np.testing.assert_allclose(fit.coef, numbers(ref, "coef"), rtol=1e-6)
    np.testing.assert_allclose(fit.se, numbers(ref, "se_robust"), rtol=1e-4)
    np.testing.assert_allclose(fit.se_model, numbers(ref, "se_model"), rtol=1e-4)


def test_weight_summary_and_effective_sample_size() -> None:
    weights = np.array([1.0, 1.0, 2.0, 0.5])
    treated = np.array([True, True, False, False])
    summary = summarise_weights(weights, treated)
    assert summary["ess_treated"] == pytest.approx(2.0)
    assert summary["ess_untreated"] == pytest.approx(2.5**2 / 4.25)
    assert (summary["min"], summary["max"], summary["mean"]) == (0.5, 2.0, 1.125)


def test_smd_of_identical_arms_is_zero_and_sign_follows_the_treated() -> None:
    x = np.array([1.0, 2.0, 1.0, 2.0])
    treated = np.array([True, True, False, False])
    assert standardised_difference(x, treated, np.ones(4)) == 0.0
    assert standardised_difference(np.array([3.0, 3.2, 1.0, 1.2]), treated, np.ones(4)) > 0


def test_one_arm_only_is_a_clear_error() -> None:
    with pytest.raises(ModelFitError, match="both arms"):
        fit_propensity(np.ones(5, dtype=bool), np.zeros((5, 1)), ["x"])
