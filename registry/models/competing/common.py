"""Shared pieces of the competing-risks estimators: validated inputs and cumulative sums."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from registry.errors import ModelFitError

Array = NDArray[np.float64]
Ints = NDArray[np.int64]
Bools = NDArray[np.bool_]


def inputs(
    time: ArrayLike, status: ArrayLike, weights: ArrayLike | None, cause: int
) -> tuple[Array, Ints, Array]:
    """Validated time, status and weights; rows of weight 0 are dropped."""
    t = np.asarray(time, dtype=np.float64).ravel()
    raw = np.asarray(status).ravel()
    w = np.ones_like(t) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if raw.size != t.size or w.size != t.size:
        raise ModelFitError(
            f"time, status and weights differ in length ({t.size:,}, {raw.size:,}, {w.size:,})."
        )
    require(np.isfinite(t) & (t > 0), "time must be finite and > 0")
    require(np.isfinite(w) & (w >= 0), "weights must be finite and >= 0")
    numeric = raw.astype(np.float64)
    require((numeric >= 0) & (numeric == np.round(numeric)), "status must be 0, 1, 2, ...")
    if cause < 1:
        raise ModelFitError(f"cause must be a positive status code, not {cause} (0 = censored).")
    keep = w > 0
    return t[keep], numeric[keep].astype(np.int64), w[keep]


def require(ok: ArrayLike, what: str) -> None:
    """Raise ModelFitError naming how many rows break a rule and the first of them."""
    rows = np.asarray(ok, dtype=np.bool_)
    bad = np.flatnonzero(~rows)
    if bad.size:
        raise ModelFitError(
            f"{what}: {bad.size:,} of {rows.size:,} rows are not (first at row {bad[0]})."
        )


def sum_by(index: Ints, values: ArrayLike | None, size: int) -> Array:
    """Sums of values per index 0..size-1 (bincount, in row order)."""
    return np.asarray(np.bincount(index, values, size), dtype=np.float64)


def overall_km(at_risk: Array, events: Array) -> tuple[Array, Array]:
    """Overall Kaplan–Meier S(t-) and S(t) at each distinct time."""
    after = np.asarray(np.cumprod((at_risk - events) / at_risk), dtype=np.float64)
    return shift(after, 1.0), after


def shift(values: Array, first: float) -> Array:
    """Values one step later along axis 0 (left limits), `first` at the start."""
    head = np.full((1, *values.shape[1:]), first)
    return np.concatenate((head, values[:-1]))


def sums_before(values: Array) -> Array:
    """Sums of the positions before each one along axis 0, plus the grand total at the end."""
    head: Array = np.cumsum(values, axis=0)
    return np.concatenate((np.zeros_like(values[:1]), head))


def sums_from(values: Array) -> Array:
    """Sums from each position to the end along axis 0, with a final 0 (sum over nothing)."""
    tail: Array = np.cumsum(values[::-1], axis=0)[::-1]
    return np.concatenate((tail, np.zeros_like(values[:1])))
