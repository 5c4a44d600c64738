"""CoxFit: the frozen result of fit_cox."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from registry.models.cox.design import Design


@dataclass(frozen=True, eq=False)
class CoxFit:
    """A fitted Cox model; se is robust when robust=True, else model-based."""

    names: tuple[str, ...]
    coef: np.ndarray
    se: np.ndarray
    se_model: np.ndarray
    robust: bool
    loglik: float
    loglik_null: float
    n: int
    events: int
    iterations: int
    converged: bool
    var: np.ndarray  # the covariance behind se
    var_model: np.ndarray  # inverse information
    _design: Design = field(repr=False)
