"""The target trial's protocol: what the study file's [target_trial] section sets.

Eligibility and time zero are the cohort's (every patient of an outcome's frame with all
baseline covariates, from the index diagnosis); the strategies are `treat` (a procedure of
the study's treatment within `grace_days` of t0) and `no_treat` (none during follow-up);
death competes with every outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MarginScale = Literal["difference", "ratio"]
WeightKind = Literal["stabilised", "unstabilised"]


@dataclass(frozen=True)
class Protocol:
    """The protocol's settings, with the defaults of the press release's question."""

    grace_days: int = 56  # treat within 2-8 weeks: 8 weeks
    years: tuple[int, ...] = (1, 2, 5)  # risks, differences and ratios at these years
    truncation_percentile: float = 99.0  # weights capped at this percentile (100: none)
    weights: WeightKind = "stabilised"
    replicates: int = 200  # nonparametric bootstrap of patients (0: point estimates only)
    seed: int = 20260101
    margin: float = 0.05  # non-inferiority: "no more frequent" by this much at `margin_year`
    margin_scale: MarginScale = "difference"  # 0.05 = 5 percentage points; ratio e.g. 1.25
    margin_year: int = 5
    positivity_bounds: tuple[float, float] = (0.05, 0.95)
