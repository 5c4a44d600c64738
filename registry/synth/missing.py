"""Missing covariates by a named mechanism (issue 14): BMD T-score and glucocorticoids.

`none` keeps the default cohort's ~2 % blanks (drawn with the patients table). Every other
mechanism replaces them: both columns hold their true values, blanked where a uniform draw of
its own random stream falls below the patient's probability of being missing,

    logit P(missing) = intercept + sum(coefficient * x),

whose intercept is solved per cohort so that the mean probability is the target rate (BMD:
the rate; glucocorticoids: half of it). The draws are the same whatever the mechanism, and
no other stage reads them, so two mechanisms' cohorts differ only in which values are null.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from scipy.optimize import brentq
from scipy.special import expit, logit

from registry.synth.latent import stage_rng
from registry.synth.params import CENTRE, MISSING_MAR_COEF, MISSING_MNAR_COEF, Arrays

MECHANISMS = ("none", "mcar", "mar", "mnar")
MISSING_STAGE = 11  # stage_rng stream of the missingness draws (1-10 draw the cohort)
TINY = 1e-12  # targets this close to 0 or 1 are 0 or 1 (probabilities would underflow)
SHARE_OF_RATE = {"bmd_t_score": 1.0, "glucocorticoids": 0.5}
DESCRIPTION = {
    "mcar": "missing completely at random: the same probability for every patient",
    "mar": "missing at random given treatment and outcome: a DXA (and the medication "
    "history) is taken in the pre-procedure work-up or after a new fracture, so treated "
    "patients and patients with a new fracture during follow-up are mostly complete and "
    "the others mostly not",
    "mnar": "missing not at random: the frailest bone (lowest T-score) is least often "
    "measured, because the fracture already shows the osteoporosis and treatment starts "
    "without a DXA; glucocorticoid use is written down when present and left blank when "
    "nobody asked",
}


def check_missing(mechanism: str, rate: float) -> None:
    """Raise ValueError naming a bad mechanism or rate."""
    if mechanism not in MECHANISMS:
        raise ValueError(f"unknown missing {mechanism!r}; choose one of {', '.join(MECHANISMS)}")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"missing_rate must be within [0, 1], got {rate}")


def apply_missing(
    tables: dict[str, pl.DataFrame], pat: Arrays, seed: int, mechanism: str, rate: float
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """The patients table with the mechanism's nulls, and its truth.json block."""
    patients = tables["patients"]
    rng = stage_rng(seed, MISSING_STAGE)
    draws = {name: rng.random(patients.height) for name in SHARE_OF_RATE}
    true = {"bmd_t_score": pat["bmd"], "glucocorticoids": pat["steroids"]}
    columns, variables = [], {}
    for name, share in SHARE_OF_RATE.items():
        x = predictors(tables, pat, mechanism, name)
        coef = coefficients(mechanism, name)
        intercept = calibrate(x, coef, rate * share)
        blank = draws[name] < probability(x, coef, intercept)
        values = pl.Series(name, true[name]).cast(patients.schema[name])
        columns.append(pl.when(pl.lit(pl.Series(blank))).then(None).otherwise(values).alias(name))
        variables[name] = {
            "target": rate * share,
            "realised": float(blank.mean()) if blank.size else None,
            "intercept": json_intercept(intercept),
            "coefficients": coef,
            "by_group": _by_group(x, blank) if mechanism == "mar" else None,
        }
    block = {
        "mechanism": mechanism,
        "rate": rate,
        "description": DESCRIPTION[mechanism],
        "model": "logit P(missing) = intercept + sum(coefficient * x); the intercept is solved "
        "so that the cohort's mean probability is the target (null: probability 0 or 1)",
        "predictors": PREDICTORS[mechanism],
        "replaces_default_blanks": True,
        "variables": variables,
    }
    return patients.with_columns(columns), block


PREDICTORS = {
    "mcar": {},
    "mar": {
        "treated": "a vertebroplasty recorded by the cut-off (0/1)",
        "new_fracture": "any new fracture recorded during follow-up (0/1)",
    },
    "mnar": {
        "bmd": f"the true T-score minus {CENTRE['bmd']} (for bmd_t_score)",
        "steroids": "true glucocorticoid use (0/1, for glucocorticoids)",
    },
}


def predictors(
    tables: dict[str, pl.DataFrame], pat: Arrays, mechanism: str, name: str
) -> dict[str, np.ndarray]:
    """The mechanism's predictors of one variable's missingness, one value per patient."""
    if mechanism == "mar":
        ids = tables["patients"].get_column("patient_id")
        seen = {
            key: ids.is_in(tables[table].get_column("patient_id").unique().implode())
            for key, table in (("treated", "procedures"), ("new_fracture", "fractures"))
        }
        return {key: s.to_numpy().astype(np.float64) for key, s in seen.items()}
    if mechanism == "mnar" and name == "bmd_t_score":
        return {"bmd": pat["bmd"] - CENTRE["bmd"]}
    if mechanism == "mnar":
        return {"steroids": pat["steroids"].astype(np.float64)}
    return {}


def coefficients(mechanism: str, name: str) -> dict[str, float]:
    """The log odds ratios of being missing of the mechanism's predictors."""
    if mechanism == "mar":
        return dict(MISSING_MAR_COEF)
    if mechanism == "mnar":
        key = "bmd" if name == "bmd_t_score" else "steroids"
        return {key: MISSING_MNAR_COEF[key]}
    return {}


def _linear(x: dict[str, np.ndarray], coef: dict[str, float]) -> np.ndarray:
    """Sum of coefficient * predictor (a 0-d zero without predictors)."""
    return np.asarray(sum((coef[k] * v for k, v in x.items()), start=np.float64(0.0)))


def probability(x: dict[str, np.ndarray], coef: dict[str, float], intercept: float) -> np.ndarray:
    """Each patient's probability of being missing (intercept -inf: 0; +inf: 1)."""
    return np.asarray(expit(intercept + _linear(x, coef)))


def calibrate(x: dict[str, np.ndarray], coef: dict[str, float], target: float) -> float:
    """The intercept whose mean probability of being missing is the target."""
    if target < TINY or target > 1.0 - TINY:  # no cohort could tell these from 0 or 1
        return -np.inf if target < TINY else np.inf
    lp = _linear(x, coef)
    if lp.size == 0 or not lp.any():
        return float(np.log(target / (1.0 - target)))
    # the mean probability lies between expit(a - max|lp|) and expit(a + max|lp|)
    centre, span = float(logit(target)), float(np.abs(lp).max()) + 1.0
    return float(
        brentq(lambda a: float(expit(a + lp).mean()) - target, centre - span, centre + span,
               xtol=1e-12)
    )  # fmt: skip


def _by_group(x: dict[str, np.ndarray], blank: np.ndarray) -> list[dict[str, Any]]:
    """Realised missing share and size per combination of binary predictors (mar)."""
    keys = sorted(x)
    codes = sum((x[k].astype(np.int64) << i for i, k in enumerate(keys)), start=0)
    groups = []
    for code in range(1 << len(keys)):
        rows = np.asarray(codes == code)
        share = float(blank[rows].mean()) if rows.any() else None
        groups.append({**{k: (code >> i) & 1 for i, k in enumerate(keys)},
                       "patients": int(rows.sum()), "missing_share": share})  # fmt: skip
    return groups


def json_intercept(value: float) -> float | None:
    """The intercept as JSON holds it: null when infinite (probability 0 or 1)."""
    return value if np.isfinite(value) else None
