"""The imputation models' fits against statsmodels (OLS, GLM Binomial) and their draws."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import statsmodels.api as sm

from registry.analysis.imputation import fits


def design(n: int, seed: int) -> tuple[np.ndarray, np.random.Generator]:
    rng = np.random.default_rng(seed)
    x = np.column_stack(
        [np.ones(n), rng.normal(size=n), rng.integers(0, 2, n), rng.gamma(2.0, 1.0, n)]
    )
    return x, rng


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_linear_fit_equals_statsmodels_ols(seed: int) -> None:
    x, rng = design(300, seed)
    y = x @ np.array([1.0, -0.5, 0.3, 0.2]) + rng.normal(size=300)
    fit, ssr = fits.fit_linear(x, y)
    ols = sm.OLS(y, x).fit()
    np.testing.assert_allclose(fit.coef, ols.params, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ssr, ols.ssr, rtol=1e-8)
    np.testing.assert_allclose(ssr / fit.df, ols.scale, rtol=1e-8)  # residual variance
    np.testing.assert_allclose(fit.cov_unscaled * ols.scale, ols.cov_params(), rtol=1e-8)
    # the engine's SSR from the normal equations (X'y, y'y) agrees with the residuals'
    via_gram = y @ y - fit.coef @ (x.T @ y)
    np.testing.assert_allclose(via_gram, ols.ssr, rtol=1e-8)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_logistic_fit_and_covariance_equal_statsmodels_glm(seed: int) -> None:
    x, rng = design(400, seed)
    y = (rng.random(400) < 1 / (1 + np.exp(-(x @ np.array([-0.5, 0.8, -0.4, 0.3]))))).astype(float)
    fit = fits.fit_logistic(x, y)
    glm = sm.GLM(y, x, family=sm.families.Binomial()).fit(tol=1e-14)
    assert fit.converged and not fit.penalised
    np.testing.assert_allclose(fit.coef, glm.params, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(fit.cov, glm.cov_params(), rtol=1e-8)


def test_logistic_warm_start_and_mask_reach_the_same_maximum() -> None:
    x, rng = design(500, 4)
    y = (rng.random(500) < 0.3).astype(float)
    mask = rng.random(500) < 0.8
    cold = fits.fit_logistic(x, y, mask=mask)
    warm = fits.fit_logistic(x, y, mask=mask, start=cold.coef + 0.05)
    glm = sm.GLM(y[mask], x[mask], family=sm.families.Binomial()).fit(tol=1e-14)
    np.testing.assert_allclose(warm.coef, glm.params, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(warm.cov, glm.cov_params(), rtol=1e-8)
    np.testing.assert_allclose(cold.coef, warm.coef, rtol=1e-8, atol=1e-10)


def test_aliased_and_constant_columns_are_dropped_like_lm() -> None:
    x, rng = design(200, 5)
    # a copy of column 1, a constant (aliased with the intercept) and an all-zero column
    wide = np.column_stack([x, 2 * x[:, 1], np.full(200, 3.0), np.zeros(200)])
    y = x @ np.array([1.0, 2.0, 0.0, 0.5]) + rng.normal(size=200)
    fit, _ = fits.fit_linear(wide, y)
    assert fit.kept.tolist() == [0, 1, 2, 3]  # R's lm: the later aliased columns are NA
    np.testing.assert_allclose(fit.coef[:4], sm.OLS(y, x).fit().params, rtol=1e-8)
    assert np.all(fit.coef[4:] == 0)
    b = (y > np.median(y)).astype(float)
    logistic = fits.fit_logistic(wide, b)
    assert logistic.kept.tolist() == [0, 1, 2, 3]
    glm = sm.GLM(b, x, family=sm.families.Binomial()).fit(tol=1e-14)
    np.testing.assert_allclose(logistic.coef[:4], glm.params, rtol=1e-7)


def test_perfect_separation_falls_back_to_a_finite_ridge_fit() -> None:
    x, _ = design(100, 6)
    y = (x[:, 1] > 0).astype(float)  # separated by column 1
    fit = fits.fit_logistic(x, y)
    assert fit.penalised
    assert np.all(np.isfinite(fit.coef)) and np.all(np.isfinite(fit.cov))
    assert fit.coef[1] > 0  # the separating direction, bounded by the ridge
    draw = fits.draw_logistic(fit, np.random.default_rng(1))
    assert np.all(np.isfinite(draw))


def test_one_class_only_does_not_crash() -> None:
    x, _ = design(50, 7)
    fit = fits.fit_logistic(x, np.zeros(50))
    p = 1 / (1 + np.exp(-(x @ fits.draw_logistic(fit, np.random.default_rng(2)))))
    assert np.all(p < 0.01)


def test_linear_draw_is_mice_norm_draw() -> None:
    """beta* = beta_hat + sqrt(SSR / chi2(df)) chol((X'X)^-1) z with one chi2 then the
    normals from the same generator (mice's .norm.draw order)."""
    x, rng = design(120, 8)
    y = x @ np.array([0.5, 1.0, -1.0, 0.1]) + rng.normal(size=120)
    fit, ssr = fits.fit_linear(x, y)
    beta = fits.draw_linear(fit, ssr, np.random.default_rng(9))
    again = np.random.default_rng(9)
    sigma = np.sqrt(ssr / again.chisquare(120 - 4))
    expected = fit.coef + sigma * np.linalg.cholesky(np.linalg.inv(x.T @ x)) @ again.normal(size=4)
    np.testing.assert_allclose(beta, expected, rtol=1e-10)


def test_posterior_draws_have_the_fit_covariance() -> None:
    x, rng = design(300, 10)
    y = (rng.random(300) < 0.4).astype(float)
    fit = fits.fit_logistic(x, y)
    gen = np.random.default_rng(11)
    draws = np.array([fits.draw_logistic(fit, gen) for _ in range(4000)])
    np.testing.assert_allclose(
        draws.mean(axis=0), fit.coef, atol=4 * np.sqrt(np.diag(fit.cov) / 4000).max()
    )
    # sample covariance within ~10 % of the fit's (4000 draws: sd of a variance ~2 %)
    np.testing.assert_allclose(np.diag(np.cov(draws.T)), np.diag(fit.cov), rtol=0.1)


def test_statsmodels_warns_where_we_do_not() -> None:
    """Separation: statsmodels warns (or fails) while our fallback stays quiet and finite."""
    x, _ = design(60, 12)
    y = (x[:, 3] > 2).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = fits.fit_logistic(x, y)
    assert np.all(np.isfinite(fit.coef))


def test_chord_steps_and_a_carried_information_reach_the_exact_maximum() -> None:
    """The engine's settings: the information matrix reused within 0.01 RMS of the linear
    predictor, and carried from an earlier fit; the maximum is still statsmodels' and the
    covariance within about 0.1 % of it."""
    x, rng = design(2000, 13)
    y = (rng.random(2000) < 1 / (1 + np.exp(-(x @ np.array([-0.3, 0.5, 0.2, -0.1]))))).astype(float)
    glm = sm.GLM(y, x, family=sm.families.Binomial()).fit(tol=1e-14)
    first = fits.fit_logistic(x, y, chord=0.01)
    assert first.information is not None
    nudged = glm.params + 0.001
    again = fits.fit_logistic(x, y, start=nudged, chord=0.01, information=first.information)
    reference = np.asarray(glm.cov_params())
    scale = np.sqrt(np.outer(np.diag(reference), np.diag(reference)))
    for fit in (first, again):
        np.testing.assert_allclose(fit.coef, glm.params, rtol=1e-8, atol=1e-10)
        # every element within 0.2 % of the product of the two SEs (the correlation scale)
        assert np.max(np.abs(fit.cov - reference) / scale) < 2e-3
    # a carried matrix taken far from the start is not used
    far = fits.Information(np.eye(4), x @ (glm.params + 1.0), np.zeros(4), 1.0)
    fresh = fits.fit_logistic(x, y, start=nudged, chord=0.01, information=far)
    assert np.max(np.abs(fresh.cov - reference) / scale) < 2e-3


def test_standard_error_stop_is_within_a_thousandth_of_an_se() -> None:
    """The engine's stop (a step below 1 % of every SE, chord steps): the estimate is within
    1e-3 SE of the exact maximum, from a start one SE away."""
    x, rng = design(5000, 14)
    y = (rng.random(5000) < 1 / (1 + np.exp(-(x @ np.array([0.2, -0.4, 0.3, 0.1]))))).astype(float)
    glm = sm.GLM(y, x, family=sm.families.Binomial()).fit(tol=1e-14)
    se = np.sqrt(np.diag(glm.cov_params()))
    fit = fits.fit_logistic(x, y, start=glm.params + se, tol=1e-5, tol_se=0.01, chord=0.01)
    assert np.max(np.abs(fit.coef - glm.params) / se) < 1e-3
