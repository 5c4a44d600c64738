"""CoxFit: the frozen result of fit_cox."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

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

    def hr(self) -> np.ndarray:
        """Hazard ratios exp(coef)."""
        return np.exp(self.coef)

    def ci(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Wald confidence interval of the hazard ratios."""
        z = stats.norm.ppf(0.5 + level / 2)
        return np.exp(self.coef - z * self.se), np.exp(self.coef + z * self.se)

    def p_values(self) -> np.ndarray:
        """Two-sided Wald p-values of the coefficients."""
        return 2 * stats.norm.sf(np.abs(self.coef / self.se))
