"""One outcome's target-trial emulation, as results.json's `target_trial.outcomes.<key>`.

Clone and prepare the arrays once (layout.prepare_outcome: the clone rows of clones.py as
arrays, without the clone frame), estimate with every patient
weighing 1, then rerun the whole estimate — initiation model, weights, truncation, curves,
hazard ratio — on `protocol.replicates` bootstrap samples of patients (frequency weights;
replicate b draws from `np.random.default_rng([seed, b])`, so any replicate is reproducible
on its own and the result does not depend on how replicates are spread over workers: they
run through a registry.compute Runner, serial, local processes or a Dask cluster).
Intervals are percentile intervals. The numbers are unrounded and unsuppressed: publication
(registry/analysis/results.publish) rounds and withholds. With multiply imputed covariates
(`imputed=`) the estimate is pooled over the completed datasets instead (imputed.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np
import polars as pl

from registry.analysis.target_trial import NotEstimable
from registry.analysis.target_trial.clones import STRATEGIES
from registry.analysis.target_trial.diagnostics import diagnostics
from registry.analysis.target_trial.engine import Prepared, RunResult, run
from registry.analysis.target_trial.evalue import e_value, e_value_ci
from registry.analysis.target_trial.layout import prepare_outcome
from registry.analysis.target_trial.protocol import Protocol
from registry.analysis.target_trial.result import at_risk_days
from registry.analysis.target_trial.result import not_estimable as no_estimate
from registry.analysis.target_trial.risks import year_day
from registry.compute import Runner, SerialRunner
from registry.errors import ModelFitError
from registry.result_types import TrialOutcome
from registry.time_to_event import EVENT

MIN_REPLICATES = 20  # fewer successful replicates than this: no intervals
LEVEL = (2.5, 97.5)


@dataclass(frozen=True)
class Replicate:
    """What a bootstrap replicate keeps: risks, curves and the log hazard ratio."""

    risks: dict[str, dict[int, float | None]]
    curves: dict[str, np.ndarray]
    log_hr: float | None


def emulate(
    outcome_frame: pl.DataFrame,
    assessments: pl.DataFrame,
    protocol: Protocol,
    *,
    outcome: str,
    runner: Runner | None = None,
    imputed: Sequence[pl.DataFrame] = (),
) -> TrialOutcome:
    """The outcome's block (see the module docstring), or the not-estimable block; pooled
    over the completed datasets `imputed` (patient_id + covariates) when there are any."""
    if imputed:
        from registry.analysis.target_trial.imputed import emulate_imputed  # (imports this)

        block = emulate_imputed(outcome_frame, assessments, protocol, imputed, runner)
        return cast(TrialOutcome, block)
    return cast(TrialOutcome, _emulate(outcome_frame, assessments, protocol, runner))


def _emulate(
    outcome_frame: pl.DataFrame,
    assessments: pl.DataFrame,
    protocol: Protocol,
    runner: Runner | None,
) -> dict[str, Any]:
    try:
        prep = prepare_outcome(
            outcome_frame, assessments, grace_days=protocol.grace_days, years=protocol.years
        )
        if isinstance(prep, NotEstimable):
            return not_estimable(prep.reason, protocol, _eligible(outcome_frame))
        point = run(prep, protocol, np.ones(prep.n_patients), None)
    except (ModelFitError, np.linalg.LinAlgError) as error:
        reason = f"the treatment-initiation model could not be fitted: {error}"
        return not_estimable(reason, protocol, _eligible(outcome_frame))
    if point.log_hr is None and all(v is None for v in point.risks["treat"].values()):
        return not_estimable("no risk is estimable", protocol, prep.n_patients)
    replicates = bootstrap(prep, protocol, point, runner)
    return assemble(prep, protocol, point, replicates)


def _eligible(outcome_frame: pl.DataFrame) -> int:
    return int(outcome_frame.filter(pl.col("has_covariates")).height)


def bootstrap(
    prep: Prepared,
    protocol: Protocol,
    point: RunResult,
    runner: Runner | None,
    replicates: Sequence[int] | None = None,
) -> list[Replicate | None]:
    """The replicates (default: every one) in order (None where the model failed), through
    `runner` (default serial): `shared` is the prepared arrays, protocol and point estimate,
    the items the replicate numbers."""
    indices = list(range(protocol.replicates) if replicates is None else replicates)
    anonymous = replace(prep, patient_ids=[])  # workers may be other machines: no ids
    return (runner or SerialRunner()).map(_replicate, indices, (anonymous, protocol, point))


def _replicate(shared: tuple[Prepared, Protocol, RunResult], b: int) -> Replicate | None:
    """Replicate b, drawn from its own seed [protocol.seed, b]; None when a model failed."""
    prep, protocol, point = shared
    rng = np.random.default_rng([protocol.seed, b])
    freq = rng.multinomial(prep.n_patients, np.full(prep.n_patients, 1.0 / prep.n_patients))
    try:
        result = run(prep, protocol, freq, point)
    except (ModelFitError, np.linalg.LinAlgError):
        return None
    return Replicate(result.risks, result.curves, result.log_hr)


def _interval(values: list[float | None]) -> tuple[float, float] | None:
    kept = np.array([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if kept.size < MIN_REPLICATES:
        return None
    low, high = np.percentile(kept, LEVEL)
    return float(low), float(high)


def _as_list(interval: tuple[float, float] | None) -> list[float] | None:
    return None if interval is None else [interval[0], interval[1]]


def _rd(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


def _rr(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b is not None and b > 0 else None


def _contrast(point: float | None, values: list[float | None]) -> dict[str, float | None]:
    ci = _interval(values) if point is not None else None
    return {
        "estimate": point,
        "ci_lower": ci[0] if ci else None,
        "ci_upper": ci[1] if ci else None,
    }


def assemble(
    prep: Prepared,
    protocol: Protocol,
    point: RunResult,
    replicates: list[Replicate | None],
) -> dict[str, Any]:
    """The outcome's block from the point estimate and the replicates."""
    good = [r for r in replicates if r is not None]
    years = [str(y) for y in protocol.years]
    strategies: dict[str, Any] = {}
    for name in STRATEGIES:
        risk = point.risks[name]
        cis = {y: _interval([r.risks[name][y] for r in good]) if risk[y] is not None else None
               for y in protocol.years}  # fmt: skip
        band = np.array([r.curves[name] for r in good]) if len(good) >= MIN_REPLICATES else None
        strategies[name] = {
            "risk": {str(y): risk[y] for y in protocol.years},
            "ci": {str(y): _as_list(cis[y]) for y in protocol.years},
            "curve": {
                "day": prep.grid.tolist(),
                "risk": point.curves[name].tolist(),
                "lower": np.percentile(band, LEVEL[0], axis=0).tolist() if band is not None else [],
                "upper": np.percentile(band, LEVEL[1], axis=0).tolist() if band is not None else [],
            },
            "_events": outcome_events(prep, name, protocol.years),  # publication reads it
            "at_risk": clones_at_risk(
                prep, name, [d for d in at_risk_days(protocol) if d <= prep.last_day]
            ),
        }
    rd, rr = {}, {}
    for y, key in zip(protocol.years, years, strict=True):
        t, n = point.risks["treat"][y], point.risks["no_treat"][y]
        rd[key] = _contrast(
            _rd(t, n), [_rd(r.risks["treat"][y], r.risks["no_treat"][y]) for r in good]
        )
        rr[key] = _contrast(
            _rr(t, n), [_rr(r.risks["treat"][y], r.risks["no_treat"][y]) for r in good]
        )
    hr = _contrast(point.log_hr, [r.log_hr for r in good])
    hazard = {k: (float(np.exp(v)) if v is not None else None) for k, v in hr.items()}
    block: dict[str, Any] = {
        "status": "estimated",
        "reason": None,
        "patients": prep.n_patients,
        "strategies": strategies,
        "risk_difference": rd,
        "risk_ratio": rr,
        "hazard_ratio": hazard,
        "non_inferiority": non_inferiority(protocol, rd, rr),
        "e_value": e_values(protocol, rr),
        "bootstrap": {
            "replicates": protocol.replicates,
            "succeeded": len(good),
            "seed": protocol.seed,
        },
        "diagnostics": diagnostics(prep, protocol, point),
    }
    if protocol.replicates and len(good) < 0.95 * protocol.replicates:
        block["diagnostics"]["warnings"].append(
            "Bootstrap: the weight model could not be fitted in more than 5 % of the "
            "replicates; the intervals rest on the others."
        )
    return block


def clones_at_risk(prep: Prepared, strategy: str, days: list[int]) -> dict[str, list[int]]:
    """Unweighted clones of a strategy still followed on each day (day 0: all)."""
    first = prep.row_first
    last = np.append(first[1:] != first[:-1], True)  # each clone's last row: its exit
    mine = last & (prep.row_strategy == STRATEGIES.index(strategy))
    exits = prep.row_stop[mine]
    return {"day": days, "n": [int(exits.size if d == 0 else np.sum(exits >= d)) for d in days]}


def outcome_events(prep: Prepared, strategy: str, years: tuple[int, ...]) -> dict[str, int]:
    """The strategy's clones ending with the outcome by each year (unweighted): publication
    withholds a risk reached by fewer than k of them, then removes this key."""
    code = STRATEGIES.index(strategy)
    stops = prep.row_stop[(prep.row_strategy == code) & (prep.row_event == EVENT)]
    return {str(y): int(np.sum(stops <= year_day(y))) for y in years}


def non_inferiority(
    protocol: Protocol,
    rd: dict[str, dict[str, float | None]],
    rr: dict[str, dict[str, float | None]],
) -> dict[str, Any]:
    """Treat is non-inferior ("no more frequent") when the upper 95 % bound of the contrast at
    `margin_year` is below the margin (a difference, or a ratio)."""
    contrast = (rd if protocol.margin_scale == "difference" else rr).get(str(protocol.margin_year))
    upper = contrast["ci_upper"] if contrast else None
    verdict = (
        "not estimable"
        if upper is None
        else "non-inferior"
        if upper < protocol.margin
        else "not shown"
    )
    return {
        "margin": protocol.margin,
        "scale": protocol.margin_scale,
        "at_year": protocol.margin_year,
        "upper_bound": upper,
        "verdict": verdict,
    }


def e_values(protocol: Protocol, rr: dict[str, dict[str, float | None]]) -> dict[str, Any]:
    """E-values of the risk ratio at `margin_year` and of its confidence limit nearer 1.

    A risk ratio needs no rare-outcome conversion (the square-root conversion of
    evalue.hr_to_rr applies to hazard and odds ratios of common outcomes)."""
    ratio = rr.get(str(protocol.margin_year)) or {}
    point, low, high = (ratio.get(k) for k in ("estimate", "ci_lower", "ci_upper"))
    ok = point is not None and point > 0
    return {
        "point": e_value(point) if ok else None,  # type: ignore[arg-type]
        "ci": e_value_ci(point, low, high) if ok and low and high and low <= high else None,  # type: ignore[arg-type]
        "basis": f"risk ratio at {protocol.margin_year} years",
    }


def not_estimable(reason: str, protocol: Protocol, patients: int) -> dict[str, Any]:
    """The block with every key, null numbers and empty lists, and the reason."""
    return cast(dict[str, Any], no_estimate(reason, protocol, patients=patients))
