"""Aalen–Johansen cumulative incidence with exact ties and Gray's variance (cmprsk::cuminc)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from registry.constants import Z95
from registry.models.competing.common import (
    Array,
    Ints,
    inputs,
    overall_km,
    sum_by,
    sums_from,
)


@dataclass(frozen=True)
class CumulativeIncidence:
    """Aalen–Johansen cumulative incidence of one cause in one group (cmprsk::cuminc)."""

    cause: int
    times: Array  # 0, then each distinct time with an event of this cause (where cif steps)
    cif: Array
    variance: Array  # cuminc's delta-method variance (its Fortran `cinc`), same steps
    ci_lower: Array  # 95 % pointwise, log(-log) scale: cif ** exp(±1.96 se / (cif log cif))
    ci_upper: Array
    max_time: float  # largest follow-up time; `at` is NaN after it, as in cmprsk::timepoints

    def at(self, days: Sequence[float]) -> Array:
        """Cumulative incidence at each day (right-continuous steps), like cmprsk::timepoints."""
        return self._lookup(self.cif, days)

    def variance_at(self, days: Sequence[float]) -> Array:
        """Variance at each day, like the `var` of cmprsk::timepoints."""
        return self._lookup(self.variance, days)

    def _lookup(self, values: Array, days: Sequence[float]) -> Array:
        """Step-function lookup; NaN before 0 and after the last follow-up time."""
        when = np.asarray(days, dtype=np.float64)
        index = np.searchsorted(self.times, when, side="right") - 1
        inside = (when >= 0) & (when <= self.max_time)
        return np.where(inside, values[np.clip(index, 0, None)], np.nan)


def cumulative_incidence(
    time: ArrayLike, status: ArrayLike, *, cause: int = 1, weights: ArrayLike | None = None
) -> CumulativeIncidence:
    """Aalen–Johansen cumulative incidence of `cause` with exact ties, as cmprsk::cuminc."""
    # Weights are frequency weights: weight 2 is the row twice, variance included. For
    # estimated (propensity) weights that variance is too small: bootstrap instead.
    t, s, w = inputs(time, status, weights, cause)
    times, at_risk, own, other = _event_table(t, s, w, cause)
    before, after = overall_km(at_risk, own + other)
    cif = np.cumsum(before * own / at_risk)
    variance = _cinc_variance(at_risk, own, other, before, after, cif)
    step = own > 0
    cif, variance = _with_origin(cif[step]), _with_origin(variance[step])
    lower, upper = _loglog_ci(cif, variance)
    max_time = float(times[-1]) if times.size else 0.0
    return CumulativeIncidence(
        cause, _with_origin(times[step]), cif, variance, lower, upper, max_time
    )


def _event_table(
    time: Array, status: Ints, weights: Array, cause: int
) -> tuple[Array, Array, Array, Array]:
    """Distinct times with (weighted) numbers at risk, events of the cause and other events."""
    # Canonical row order, so that weighted sums do not depend on the input's row order.
    order = np.lexsort((weights, status, time))
    t, s, w = time[order], status[order], weights[order]
    times, index = np.unique(t, return_inverse=True)
    own = sum_by(index, w * (s == cause), times.size)
    other = sum_by(index, w * ((s != cause) & (s != 0)), times.size)
    at_risk = sums_from(sum_by(index, w, times.size))[:-1]
    return times, at_risk, own, other


def _cinc_variance(
    at_risk: Array, own: Array, other: Array, before: Array, after: Array, cif: Array
) -> Array:
    """Gray's delta-method CIF variance (cmprsk's Fortran `cinc`), vectorised over times."""
    inv_after = np.divide(1.0, after, out=np.zeros_like(after), where=after > 0)
    own_term = _tie_term(before, own, at_risk)
    other_term = np.where(after > 0, _tie_term(before, other, at_risk), 0.0)
    own_slope = 1.0 + inv_after * cif
    other_slope = inv_after * cif
    v1 = np.cumsum(other_slope**2 * other_term + own_slope**2 * own_term)
    v2 = np.cumsum(inv_after * (other_slope * other_term + own_slope * own_term))
    v3 = np.cumsum(inv_after**2 * (other_term + own_term))
    return v1 + cif**2 * v3 - 2 * cif * v2


def _tie_term(before: Array, events: Array, at_risk: Array) -> Array:
    """S(t-)² c d / n² with cuminc's tie factor c = 1 - (d - 1) / (n - 1) when d > 1."""
    spare = np.maximum(at_risk - 1, 1.0)  # d > 1 implies n > 1
    ties = np.where(events > 1, 1 - (events - 1) / spare, 1.0)
    return before * before * ties * events / (at_risk * at_risk)


def _loglog_ci(cif: Array, variance: Array) -> tuple[Array, Array]:
    """95 % limits on the log(-log) scale (inside [0, 1]); collapsed where cif is 0 or 1."""
    inner = (cif > 0) & (cif < 1)
    safe = np.where(inner, cif, 0.5)
    spread = Z95 * np.sqrt(np.maximum(variance, 0.0)) / (safe * -np.log(safe))
    lower = np.where(inner, safe ** np.exp(spread), cif)
    upper = np.where(inner, safe ** np.exp(-spread), cif)
    return lower, upper


def _with_origin(values: Array) -> Array:
    """Prepend the value 0 at time 0."""
    return np.concatenate(([0.0], values))
