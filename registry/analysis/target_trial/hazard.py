"""The weighted cause-specific hazard ratio of the two strategies: a secondary summary.

A Cox model (Efron ties, counting process) of the outcome on the clone rows, with the
strategy as its only covariate and each row's censoring weight as a case weight; death
censors (cause-specific). The robust variance clusters on the clone, as R's
`coxph(..., weights = w, id = clone_id)` does; the report's interval comes from the
bootstrap, which also carries the two clones of a patient together.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import polars as pl

from registry.analysis.target_trial import NotEstimable
from registry.models.cox import CoxInputError, fit_cox
from registry.time_to_event import EVENT


@dataclass(frozen=True)
class HazardRatio:
    """treat vs no_treat: log hazard ratio, its robust standard error and the events."""

    coef: float
    se_robust: float
    events: int

    @property
    def estimate(self) -> float:
        """The hazard ratio, exp(coef)."""
        return math.exp(self.coef)


def missing_events(rows: pl.DataFrame) -> NotEstimable | None:
    """Why a strategy's clones give the model nothing to compare, or None."""
    for strategy in ("treat", "no_treat"):
        clones = rows.filter(pl.col("strategy") == strategy)
        if clones.filter(pl.col("event") == EVENT).is_empty():
            return NotEstimable(f"no outcome among the {strategy} clones: no hazard ratio")
    return None


def weighted_hazard_ratio(rows: pl.DataFrame, weight: str) -> HazardRatio | NotEstimable:
    """Cause-specific hazard ratio of `treat` vs `no_treat` on weighted clone rows, or why not."""
    reason = missing_events(rows)
    if reason is not None:
        return reason
    column = rows.select("start", "stop", "event", "strategy", "clone_id", weight)
    treat = (column.get_column("strategy") == "treat").to_numpy().astype(float)
    try:
        with warnings.catch_warnings():
            # fit_cox warns of a run-away coefficient or no convergence: not a hazard ratio
            warnings.simplefilter("error", UserWarning)
            fit = fit_cox(
                column.get_column("stop").to_numpy(),
                (column.get_column("event") == EVENT).to_numpy(),
                treat,
                start=column.get_column("start").to_numpy(),
                weights=column.get_column(weight).to_numpy(),
                cluster=column.get_column("clone_id").to_numpy(),
                names=("treat",),
                tol=1e-11,
            )
    except (CoxInputError, np.linalg.LinAlgError, UserWarning) as error:
        return NotEstimable(f"the weighted Cox model could not be fitted: {error}")
    return HazardRatio(float(fit.coef[0]), float(fit.se[0]), fit.events)
