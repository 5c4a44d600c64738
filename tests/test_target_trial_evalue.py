"""E-values and the hazard-to-risk-ratio conversion: worked values, bad input, invariants."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.analysis.target_trial.evalue import e_value, e_value_ci, hr_to_rr, is_common

ratios = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False)


def test_worked_values() -> None:
    # VanderWeele & Ding 2017: RR 3.9 -> 7.26; RR 2 -> 2 + sqrt(2) = 3.41
    assert e_value(3.9) == pytest.approx(3.9 + math.sqrt(3.9 * 2.9))
    assert e_value(2.0) == pytest.approx(2 + math.sqrt(2))
    assert e_value(0.5) == pytest.approx(2 + math.sqrt(2))
    assert e_value_ci(2.0, 1.5, 2.7) == pytest.approx(e_value(1.5))
    assert e_value_ci(0.5, 0.3, 0.8) == pytest.approx(e_value(0.8))
    assert e_value_ci(1.2, 0.9, 1.6) == 1.0
    assert e_value_ci(1.2, 1.0, 1.6) == 1.0  # a limit on 1 holds 1


def test_common_outcome_conversion() -> None:
    assert hr_to_rr(2.0, common=False) == 2.0
    assert hr_to_rr(2.0, common=True) == pytest.approx(
        (1 - 0.5 ** math.sqrt(2)) / (1 - 0.5 ** math.sqrt(0.5))
    )
    assert hr_to_rr(1.0, common=True) == 1.0
    assert is_common(0.151) and not is_common(0.15) and not is_common(0.05)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_a_ratio_that_is_not_positive_and_finite_is_refused(bad: float) -> None:
    for call in (lambda: e_value(bad), lambda: hr_to_rr(bad, True), lambda: e_value_ci(bad, 1, 2)):
        with pytest.raises(ValueError, match="positive finite ratio"):
            call()


def test_an_interval_upside_down_is_refused() -> None:
    with pytest.raises(ValueError, match="lies above the upper limit"):
        e_value_ci(1.5, 2.0, 1.2)


def test_e_value_of_one_is_one() -> None:
    assert e_value(1.0) == 1.0


@given(ratios)
def test_e_value_is_symmetric_on_the_log_scale(rr: float) -> None:
    assert e_value(rr) == pytest.approx(e_value(1 / rr), rel=1e-12)


@given(ratios, ratios)
def test_e_value_grows_away_from_one(a: float, b: float) -> None:
    # on either side of 1, the ratio farther from 1 needs the stronger confounder
    near, far = sorted((a, b), key=lambda x: abs(math.log(x)))
    same_side = (near - 1) * (far - 1) >= 0
    if same_side:
        assert e_value(near) <= e_value(far)
    assert e_value(far) >= 1.0


@given(ratios, ratios, ratios)
def test_e_value_of_the_interval_lies_between_one_and_the_point(
    a: float, b: float, c: float
) -> None:
    lower, rr, upper = sorted((a, b, c))
    e_ci = e_value_ci(rr, lower, upper)
    assert 1.0 <= e_ci <= e_value(rr) * (1 + 1e-12)
    assert (e_ci == 1.0) == (lower <= 1.0 <= upper)


@given(ratios)
def test_conversion_keeps_the_side_of_one_and_inverts_with_the_ratio(hr: float) -> None:
    rr = hr_to_rr(hr, common=True)
    assert (rr - 1) * (hr - 1) >= 0
    assert abs(math.log(rr)) <= abs(math.log(hr)) + 1e-12  # common: weaker than the HR
    assert hr_to_rr(1 / hr, common=True) == pytest.approx(1 / rr, rel=1e-9)
