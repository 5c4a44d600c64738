"""E-values (VanderWeele & Ding 2017): how strong an unmeasured confounder would have to be.

The E-value of a risk ratio is the minimum strength of association, on the risk-ratio
scale, that an unmeasured confounder would need with both the treatment and the outcome to
explain the ratio away. A hazard ratio is first converted to a risk ratio: unchanged when
the outcome is rare, by the square-root formula when it is common (5-year risk above 15 %).
"""

from __future__ import annotations

import math

COMMON_RISK = 0.15  # above this 5-year risk the outcome is common (VanderWeele & Ding)


def _check_ratio(value: float, name: str) -> None:
    """Ratios are finite and positive."""
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite ratio, not {value!r}")


def e_value(rr: float) -> float:
    """E-value of a risk ratio: RR + sqrt(RR (RR - 1)), RR below 1 inverted first."""
    _check_ratio(rr, "the risk ratio")
    x = 1.0 / rr if rr < 1 else rr
    return x + math.sqrt(x * (x - 1.0))


def e_value_ci(rr: float, lower: float, upper: float) -> float:
    """E-value of the confidence limit nearer 1; 1 when the interval holds 1."""
    for value, name in (
        (rr, "the risk ratio"),
        (lower, "the lower limit"),
        (upper, "the upper limit"),
    ):
        _check_ratio(value, name)
    if lower > upper:  # a percentile interval may leave out its estimate, never this
        raise ValueError(f"the lower limit {lower} lies above the upper limit {upper}")
    if lower <= 1.0 <= upper:
        return 1.0
    return e_value(lower if lower > 1.0 else upper)


def is_common(risk: float) -> bool:
    """Whether an outcome of this (5-year) risk is common enough to convert hazard ratios."""
    return risk > COMMON_RISK


def hr_to_rr(hr: float, common: bool) -> float:
    """Risk ratio for a hazard ratio: itself for a rare outcome, else
    (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR))."""
    _check_ratio(hr, "the hazard ratio")
    if not common:
        return hr
    return (1.0 - 0.5 ** math.sqrt(hr)) / (1.0 - 0.5 ** math.sqrt(1.0 / hr))
