"""TEMPORARY stand-in for the integrator's estimator (branch h-tttypes): the pipeline,
results.json, its schema and the report run end to end before the estimator is merged.
The integrator replaces this file at the merge; the signature is the contract's."""

from __future__ import annotations

from typing import Any

import polars as pl

from registry.analysis.target_trial.clones import eligible
from registry.analysis.target_trial.protocol import Protocol
from registry.analysis.target_trial.result import not_estimable
from registry.result_types import TrialOutcome

PENDING = "the estimator is not merged yet"


def emulate(
    outcome_frame: pl.DataFrame,
    assessments: pl.DataFrame,
    protocol: Protocol,
    *,
    outcome: str,
    executor: Any = None,
) -> TrialOutcome:
    """One outcome's target-trial block: for now always "not estimable" (see the module)."""
    del assessments, outcome, executor
    return not_estimable(PENDING, protocol, patients=eligible(outcome_frame).height)
