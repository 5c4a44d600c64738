"""Synthetic cohort in the import contract: vectorised, seeded, with its latent truth.

Every patient's true (uncensored) event times are drawn first, by inverting Weibull
cumulative hazards; the contract files are then what a registry would have seen of them
by the data cut-off. The calibration constants in params.py were fitted once on 4,000,000
patients. Modules: params (constants), latent (patients and event times), tables (contract
tables), missing (covariates blanked by a mechanism), dirty (rule-breaking rows).
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from registry.constants import DEMO_CUTOFF, DEMO_PATIENTS, DEMO_SEED
from registry.synth.dirty import make_dirty
from registry.synth.latent import draw_patients, draw_times, last_enrolment, latent_frame, stage_rng
from registry.synth.missing import MECHANISMS, apply_missing, check_missing
from registry.synth.params import (
    CENTRE,
    CONTACT_DAYS,
    DEATH_COEF,
    DEATH_HR_TREATED,
    EARLY_ADJACENT_SHAPE,
    ENROL_FIRST,
    ETIOLOGY_P,
    FRACTURE_COEF,
    HAZARD,
    HORIZON_DAYS,
    LEVEL_WEIGHT,
    LOSS_PER_YEAR,
    MALE_DEATH_HR,
    MISSING_COVARIATE,
    N_LEVELS_P,
    NEW_LEVEL_FLOOR,
    PRIOR_P,
    PRO_MOMENTS,
    SANDWICH_SHARE,
    SCENARIOS,
    SITE_P,
    TABLES,
    TREAT_COEF,
    TV_DEATH_HR_TREATED,
    WITHDRAW_PER_YEAR,
)
from registry.synth.tables import build_tables
from registry.synth.tv import draw_tv_times, tv_latent_columns, tv_truth

__all__ = ["MECHANISMS", "SCENARIOS", "TABLES", "SynthCohort", "generate_cohort", "write_cohort"]


@dataclass(frozen=True)
class SynthCohort:
    """The contract tables, each patient's latent (uncensored) times and the true parameters."""

    tables: dict[str, pl.DataFrame]
    latent: pl.DataFrame
    truth: dict[str, Any]


def generate_cohort(
    *,
    patients: int = DEMO_PATIENTS,
    seed: int = DEMO_SEED,
    treatment_hr: float = 1.0,
    scenario: str = "default",
    dirty: float = 0.0,
    cutoff: datetime.date = DEMO_CUTOFF,
    missing: str = "none",
    missing_rate: float = 0.3,
) -> SynthCohort:
    """Simulate a seeded cohort in the import contract, with its latent truth; `missing`
    names the mechanism that blanks BMD and glucocorticoids (see registry.synth.missing)."""
    _check_options(patients, seed, treatment_hr, scenario, dirty, cutoff)
    check_missing(missing, missing_rate)
    pat = draw_patients(seed, patients, cutoff)
    tv = scenario == "tv-confounding"
    if tv:
        draw_tv_times(pat, seed, treatment_hr)
    else:
        draw_times(pat, seed, treatment_hr, scenario)
    tables = build_tables(pat, seed)
    truth = _truth(seed, patients, treatment_hr, scenario, dirty, cutoff)
    latent = latent_frame(pat)
    if tv:
        truth["death_hr_treated"] = TV_DEATH_HR_TREATED
        truth["target_trial"] = tv_truth(pat, seed, treatment_hr, cutoff)
        latent = latent.with_columns(**tv_latent_columns(pat))
    if missing != "none":  # none: the default blanks, and truth.json as it always was
        tables["patients"], truth["missing"] = apply_missing(
            tables, pat, seed, missing, missing_rate
        )
    if dirty > 0:
        tables, truth["dirty"] = make_dirty(tables, stage_rng(seed, 9), dirty)
    return SynthCohort(tables=tables, latent=latent, truth=truth)


def write_cohort(cohort: SynthCohort, out: Path, *, fmt: str = "csv") -> list[Path]:
    """Write each table as <name>.csv or <name>.parquet plus truth.json; return the paths."""
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be 'csv' or 'parquet', not {fmt!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, frame in cohort.tables.items():
        path = out / f"{name}.{fmt}"
        if fmt == "csv":
            frame.write_csv(path, date_format="%Y-%m-%d", null_value="")
        else:
            frame.write_parquet(path)
        paths.append(path)
    truth_path = out / "truth.json"
    truth_path.write_text(json.dumps(cohort.truth, indent=2) + "\n")
    return [*paths, truth_path]


def _check_options(
    patients: int, seed: int, hr: float, scenario: str, dirty: float, cutoff: datetime.date
) -> None:
    """Raise ValueError naming the first bad option."""
    if not isinstance(patients, int) or patients < 0:
        raise ValueError(f"patients must be a whole number >= 0, got {patients!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if not hr > 0:
        raise ValueError(f"treatment_hr must be > 0, got {hr}")
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    if not 0.0 <= dirty <= 0.5:
        raise ValueError(f"dirty must be within [0, 0.5], got {dirty}")
    if cutoff <= ENROL_FIRST:
        raise ValueError(f"cutoff must be after {ENROL_FIRST.isoformat()}, got {cutoff}")


def _truth(
    seed: int, n: int, hr: float, scenario: str, dirty: float, cutoff: datetime.date
) -> dict[str, Any]:
    """Every parameter the cohort was drawn with, JSON-serialisable."""
    truth = {
        "seed": seed,
        "patients": n,
        "treatment_hr": hr,
        "scenario": scenario,
        "dirty_fraction": dirty,
        "cutoff": cutoff.isoformat(),
        "enrolment": [ENROL_FIRST.isoformat(), last_enrolment(cutoff).isoformat()],
        "horizon_days": HORIZON_DAYS,
        "contact_days": list(CONTACT_DAYS),
        "hazards": HAZARD,
        "hazard_form": "H(t) = rate * exp(lp) * t**shape, t in days",
        "early_adjacent_shape": EARLY_ADJACENT_SHAPE,
        "death_hr_treated": DEATH_HR_TREATED,
        "male_death_hr": MALE_DEATH_HR,
        "loss_per_year": LOSS_PER_YEAR,
        "withdraw_per_year": WITHDRAW_PER_YEAR,
        "centre": CENTRE,
        "treatment_logit": TREAT_COEF,
        "fracture_log_hr": FRACTURE_COEF,
        "death_log_hr": DEATH_COEF,
        "level_weight": LEVEL_WEIGHT,
        "new_level_floor": NEW_LEVEL_FLOOR,
        "sandwich_share": SANDWICH_SHARE,
        "n_levels_p": list(N_LEVELS_P),
        "prior_p": list(PRIOR_P),
        "site_p": list(SITE_P),
        "etiology_p": list(ETIOLOGY_P),
        "missing_covariate": MISSING_COVARIATE,
        "pro_moments": {
            f"{i}/{'treated' if arm else 'conservative'}": [list(v) for v in m]
            for (i, arm), m in PRO_MOMENTS.items()
        },
        "dirty": {},
    }
    return dict(json.loads(json.dumps(truth)))  # a deep copy: callers cannot edit the constants
