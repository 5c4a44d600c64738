"""registry.models.lifelines_fits: lifelines' fits in the project's results, equal to ours.

Both engines are held to R in tests/test_km.py and tests/test_cox.py; here the adapter's own
rules: the same checks and messages as the in-house engine, weighted curves left in-house,
lifelines' warnings in our words, and (hypothesis) the same curve and Cox estimates as the
in-house engine on any small data set.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.errors import ModelFitError
from registry.models import km, lifelines_fits
from registry.models.cox import CoxInputError, fit_cox, ph_test

CURVE = ("times", "survival", "ci_lower", "ci_upper", "at_risk", "events", "censored")

subjects = st.lists(st.tuples(st.integers(0, 30), st.booleans()), min_size=1, max_size=40).map(
    lambda rows: (np.array([r[0] for r in rows], float), np.array([r[1] for r in rows]))
)


@settings(max_examples=60, deadline=None)
@given(subjects)
def test_km_equals_the_in_house_curve(data: tuple[np.ndarray, np.ndarray]) -> None:
    duration, event = data
    ours, theirs = km.fit_km(duration, event), lifelines_fits.fit_km(duration, event)
    for name in CURVE:
        np.testing.assert_allclose(
            getattr(theirs, name), getattr(ours, name), rtol=0, atol=1e-12, err_msg=name
        )
    assert (theirs.n, theirs.total_events) == (ours.n, ours.total_events)
    assert (theirs.median, theirs.median_ci) == (ours.median, ours.median_ci)


def test_weighted_curves_stay_in_house() -> None:
    # lifelines' weighted variance is not R's infinitesimal jackknife (survfit with weights)
    d, e, w = [1, 2, 2, 3, 5], [1, 0, 1, 1, 0], [0.5, 1.5, 1.0, 2.5, 0.7]
    ours, routed = km.fit_km(d, e, weights=w), lifelines_fits.fit_km(d, e, weights=w)
    for name in CURVE:
        np.testing.assert_array_equal(getattr(routed, name), getattr(ours, name))


def test_km_bad_input_has_the_in_house_messages() -> None:
    with pytest.raises(ModelFitError, match="durations are missing or < 0"):
        lifelines_fits.fit_km([1, float("nan")], [1, 0])


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 2**31 - 1),
    st.integers(20, 60),
)
def test_cox_equals_the_in_house_fit(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.integers(0, 2, n), rng.normal(size=n)]).astype(float)
    duration = rng.integers(1, 15, n).astype(float)  # many ties: Efron matters
    event = rng.random(n) < 0.7
    if x[:, 0].min() == x[:, 0].max() or event.sum() < 3:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # R's (and fit_cox's) default stop, a relative loglik change of 1e-9, leaves up to
        # ~1e-7 on small data; the adapter iterates to 1e-14: compare both at the maximum
        ours = fit_cox(duration, event, x, names=("a", "b"), tol=1e-14)
        theirs = lifelines_fits.fit_cox_fixed(duration, event, x, names=("a", "b"))
    if not (ours.converged and theirs.converged) or np.abs(ours.coef).max() > 5:
        return  # near-separation: both warn, estimates run away
    np.testing.assert_allclose(theirs.coef, ours.coef, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(theirs.se, ours.se, rtol=1e-7, atol=1e-9)
    assert theirs.loglik == pytest.approx(ours.loglik, rel=1e-10)
    assert theirs.loglik_null == pytest.approx(ours.loglik_null, rel=1e-10)
    assert (theirs.names, theirs.n, theirs.events) == (("a", "b"), n, ours.events)
    assert not theirs.robust


def test_cox_result_serves_the_ph_test() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(80, 2))
    duration, event = rng.integers(1, 30, 80).astype(float), rng.random(80) < 0.6
    ours = ph_test(fit_cox(duration, event, x, names=("u", "v")))
    theirs = ph_test(lifelines_fits.fit_cox_fixed(duration, event, x, names=("u", "v")))
    np.testing.assert_allclose(theirs["p"].to_numpy(), ours["p"].to_numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    ("duration", "event", "x", "message"),
    [
        ([1, 2, 3], [0, 0, 0], [[0.0], [1.0], [0.0]], "no events"),
        ([1, 2, 3], [1, 0, 1], [[1.0], [1.0], [1.0]], "constant"),
        ([1, float("nan"), 3], [1, 0, 1], [[0.0], [1.0], [0.0]], "NaN"),
        ([1, -2, 3], [1, 0, 1], [[0.0], [1.0], [0.0]], "negative duration"),
    ],
)
def test_cox_bad_input_has_the_in_house_messages(
    duration: list[float], event: list[int], x: list[list[float]], message: str
) -> None:
    with pytest.raises(CoxInputError, match=message):
        fit_cox(duration, event, x, names=("t",))
    with pytest.raises(CoxInputError, match=message):
        lifelines_fits.fit_cox_fixed(duration, event, x, names=("t",))


def test_cox_separation_warns_in_our_words_and_never_crashes() -> None:
    # every event in the treated arm: the coefficient runs to infinity
    duration = np.arange(1.0, 21.0)
    treated = np.repeat([1.0, 0.0], 10)
    event = treated == 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = lifelines_fits.fit_cox_fixed(duration, event, treated, names=("treated",))
        except CoxInputError as exc:  # refused with a message is also acceptable
            assert "treated" in str(exc)
            return
    assert np.isfinite(fit.coef).all() or not fit.converged
    messages = [str(w.message) for w in caught]
    assert any("treated" in m and "infinite" in m for m in messages), messages
    assert not any("lifelines" in m.lower() and "http" in m for m in messages)
