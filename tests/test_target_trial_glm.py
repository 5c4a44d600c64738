"""glm.fit_glm: Newton's method summed block by block equals statsmodels' GLM, whatever the
block size, with frequency weights, and from any reasonable start."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.analysis.target_trial import glm
from registry.analysis.target_trial.glm import fit_glm
from registry.analysis.target_trial.weights import fit_logistic
from registry.errors import ModelFitError


def data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A logistic outcome on an intercept and three covariates (one binary)."""
    rng = np.random.default_rng(seed)
    x = np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(0, 2, n), rng.random(n)])
    p = 1 / (1 + np.exp(-(x @ np.array([-1.0, 0.5, -0.7, 1.2]))))
    return (rng.random(n) < p).astype(float), x


@pytest.mark.parametrize("block", [7, 64, 16_384])
def test_blocks_of_any_size_give_statsmodels_maximum(
    block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    y, x = data(1_000, 1)
    monkeypatch.setattr(glm, "BLOCK", block)
    ours = fit_glm(y, x, np.ones(y.size), None)
    frame = pl.DataFrame(x[:, 1:], schema=["a", "b", "c"], orient="row")
    theirs = fit_logistic(y, frame, ["a", "b", "c"])
    assert ours == pytest.approx(theirs.coef_, abs=1e-9)


@given(st.integers(0, 10_000), st.integers(3, 200))
@settings(max_examples=25, deadline=None)
def test_frequency_weights_equal_repeated_rows_in_blocks(seed: int, block: int) -> None:
    y, x = data(300, seed)
    freq = np.random.default_rng(seed).integers(0, 4, y.size)
    keep = freq > 0
    repeated = np.repeat(np.arange(y.size), freq)
    old = glm.BLOCK
    try:
        glm.BLOCK = block
        weighted = fit_glm(y[keep], x[keep], freq[keep].astype(float), None)
    finally:
        glm.BLOCK = old
    plain = fit_glm(y[repeated], x[repeated], np.ones(repeated.size), None)
    assert weighted == pytest.approx(plain, abs=1e-10)


def test_a_warm_start_reaches_the_same_maximum() -> None:
    y, x = data(2_000, 4)
    cold = fit_glm(y, x, np.ones(y.size), None)
    warm = fit_glm(y, x, np.ones(y.size), cold + 0.05)
    assert warm == pytest.approx(cold, abs=1e-12)


def test_separated_data_is_a_model_fit_error() -> None:
    x = np.column_stack([np.ones(40), np.arange(40.0)])
    y = (np.arange(40) >= 20).astype(float)
    with pytest.raises(ModelFitError), np.errstate(over="ignore"):
        fit_glm(y, x, np.ones(40), None)
