"""Input checks for fit_cox: lengths, NaN, times, events, weights, constant covariates."""

from __future__ import annotations

from typing import Any

import numpy as np

from registry.errors import ModelFitError


class CoxInputError(ModelFitError, ValueError):
    """Data a Cox model cannot be fitted to: no events, NaN, bad times, singular information."""


def as_matrix(X: Any) -> np.ndarray:
    """Covariates as a float (n, p) array."""
    x = np.asarray(X, dtype=float)
    return x.reshape(-1, 1) if x.ndim == 1 else x


def check_inputs(
    stop: Any, event: Any, start: Any, weights: Any, x: np.ndarray, names: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """Validate lengths, NaN, times, events and weights; return clean float/bool arrays."""
    stop_ = np.asarray(stop, dtype=float)
    ev = np.asarray(event, dtype=float)
    start_ = None if start is None else np.asarray(start, dtype=float)
    w = np.ones_like(stop_) if weights is None else np.asarray(weights, dtype=float)
    arrays = {"stop": stop_, "event": ev, "weights": w, "X": x}
    if start_ is not None:
        arrays["start"] = start_
    _check_lengths(arrays, len(names))
    for label, arr in arrays.items():
        if (bad := int(np.count_nonzero(~np.isfinite(arr)))) > 0:
            raise CoxInputError(f"{bad} value(s) of {label} are NaN or infinite; drop those rows.")
    _check_times(stop_, start_)
    if not np.all((ev == 0) | (ev == 1)):
        raise CoxInputError("event must be 0/1 (or boolean).")
    if np.any(w < 0):
        raise CoxInputError(f"{int(np.sum(w < 0))} weight(s) are negative; weights must be >= 0.")
    if not np.any((ev == 1) & (w > 0)):
        raise CoxInputError(f"no events among {stop_.size} rows: a Cox model needs at least one.")
    return stop_, ev == 1, start_, w


def _check_lengths(arrays: dict[str, np.ndarray], p: int) -> None:
    """Every input has one entry per row and X has one column per name."""
    n = arrays["stop"].size
    for label, arr in arrays.items():
        if arr.shape[0] != n or (arr.ndim != 1 and label != "X"):
            raise CoxInputError(f"{label} has shape {arr.shape}; expected {n} rows like stop.")
    if arrays["X"].shape[1] != p:
        raise CoxInputError(f"X has {arrays['X'].shape[1]} columns but {p} names were given.")


def _check_times(stop: np.ndarray, start: np.ndarray | None) -> None:
    """Durations must be positive: stop >= 0, and stop > start for (start, stop] rows."""
    if start is None and (bad := int(np.sum(stop < 0))) > 0:
        raise CoxInputError(f"{bad} row(s) have a negative duration (stop < 0).")
    if start is not None and (bad := int(np.sum(stop <= start))) > 0:
        raise CoxInputError(f"{bad} row(s) have stop <= start: intervals must have length > 0.")


def check_covariates(x: np.ndarray, names: tuple[str, ...]) -> None:
    """A constant covariate makes the information matrix singular."""
    if x.shape[0] == 0:
        return
    const = [name for j, name in enumerate(names) if np.all(x[:, j] == x[0, j])]
    if const:
        raise CoxInputError(
            f"covariate(s) {', '.join(const)} are constant: the information matrix is singular; "
            "drop them from the model."
        )


def codes(labels: Any) -> np.ndarray:
    """Integer codes 0..k-1 of any labels (strata, cluster ids)."""
    return np.unique(np.asarray(labels), return_inverse=True)[1].ravel()
