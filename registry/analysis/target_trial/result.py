"""The target trial's part of results.json: the protocol table, the settings, and the block
of an outcome the design cannot answer (every key kept, nulls and empty lists). Pure."""

from __future__ import annotations

from registry import catalogue
from registry.analysis.target_trial.protocol import Protocol
from registry.analysis.target_trial.risks import year_day
from registry.result_types import (
    Contrast,
    ProtocolRow,
    StrategyRisks,
    TrialOutcome,
    TrialSettings,
)
from registry.study import Study


def protocol_table(study: Study) -> list[ProtocolRow]:
    """The target trial's elements (TARGET guideline order): specification and emulation."""
    p, procedures = study.target_trial, " or ".join(study.treatment_procedures)
    years = ", ".join(str(y) for y in p.years)
    outcomes = ", ".join(catalogue.outcome(k).short_label for k in study.outcomes)
    rows = [
        ("Eligibility", "patients with an osteoporotic vertebral compression fracture",
         "the study's cohort with every baseline covariate recorded"),
        ("Treatment strategies", f"{procedures} of an index level within {p.grace_days} days "
         "of diagnosis, versus no such procedure during follow-up",
         "each patient is cloned into both strategies"),
        ("Assignment", "random, at diagnosis",
         "clones are censored when they deviate; inverse-probability-of-censoring weights "
         "from baseline covariates and the latest pain (VAS) and disability (ODI) scores"),
        ("Time zero", "diagnosis of the index fracture", "t0, the first osteoporotic index "
         "diagnosis, the same for both clones"),
        ("Grace period", f"{p.grace_days} days", "an outcome or death before deviation counts "
         "for both clones"),
        ("Outcomes", outcomes, f"the study's outcome definitions ({study.primary_outcome} "
         "is primary)"),
        ("Competing event", "death", "death before the outcome ends follow-up as a competing "
         "event"),
        ("Follow-up", f"from t0 to the outcome, death, loss or {study.horizon_days} days",
         "as in the rest of the analysis; clones also end at deviation"),
        ("Causal contrast", "per-protocol effect", "risk difference and risk ratio of the "
         "two strategies"),
        ("Analysis", f"risks at {years} years, death competing",
         f"weighted Aalen-Johansen with {p.weights} weights {truncation(p)}; "
         f"{p.replicates} bootstrap replicates"),
    ]  # fmt: skip
    return [{"element": e, "specification": s, "emulation": m} for e, s, m in rows]


def truncation(p: Protocol) -> str:
    """How the weights are capped, in words."""
    if p.truncation_percentile >= 100:
        return "not truncated"
    return f"truncated at the {p.truncation_percentile:g}th percentile"


def trial_settings(protocol: Protocol) -> TrialSettings:
    """The settings as results.json holds them."""
    return {
        "years": list(protocol.years),
        "replicates": protocol.replicates,
        "seed": protocol.seed,
        "truncation_percentile": protocol.truncation_percentile,
        "weights": protocol.weights,
        "margin": protocol.margin,
        "margin_scale": protocol.margin_scale,
        "margin_year": protocol.margin_year,
    }


def at_risk_days(protocol: Protocol) -> list[int]:
    """Days of the risk table: 0 and every whole year up to the last year of the protocol."""
    return [0, *(year_day(y) for y in range(1, max(protocol.years) + 1))]


def _no_contrast() -> Contrast:
    return {"estimate": None, "ci_lower": None, "ci_upper": None}


def _no_strategy(protocol: Protocol) -> StrategyRisks:
    keys = [str(y) for y in protocol.years]
    return {
        "risk": dict.fromkeys(keys),
        "ci": dict.fromkeys(keys),
        "curve": {"day": [], "risk": [], "lower": [], "upper": []},
        "at_risk": {"day": [], "n": []},
    }


def not_estimable(reason: str, protocol: Protocol, *, patients: int | None) -> TrialOutcome:
    """An outcome's block when the design gives no number: the reason, every key kept."""
    keys = [str(y) for y in protocol.years]
    return {
        "status": "not_estimable",
        "reason": reason,
        "patients": patients,
        "strategies": {"treat": _no_strategy(protocol), "no_treat": _no_strategy(protocol)},
        "risk_difference": {k: _no_contrast() for k in keys},
        "risk_ratio": {k: _no_contrast() for k in keys},
        "hazard_ratio": _no_contrast(),
        "non_inferiority": {
            "margin": protocol.margin,
            "scale": protocol.margin_scale,
            "at_year": protocol.margin_year,
            "upper_bound": None,
            "verdict": "not estimable",
        },
        "e_value": {
            "point": None,
            "ci": None,
            "basis": f"risk ratio at {protocol.margin_year} years",
        },
        "bootstrap": {"replicates": protocol.replicates, "succeeded": 0, "seed": protocol.seed},
        "diagnostics": {
            "weights": [],
            "truncation": {
                "percentile": protocol.truncation_percentile,
                "cap": None,
                "share_capped": None,
            },
            "censored": [],
            "balance": [],
            "positivity": {
                "bounds": list(protocol.positivity_bounds),
                "share_within": None,
                "min": None,
                "max": None,
            },
            "warnings": [],
        },
    }
