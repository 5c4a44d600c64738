"""Synthetic cohort in the import contract: vectorised, seeded, with its latent truth.

Every patient's true (uncensored) event times are drawn first, by inverting Weibull
cumulative hazards; the contract files are then what a registry would have seen of them
by the data cut-off. Calibration constants below were fitted once on 4,000,000 patients.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from registry.contract import SPECS, FileSpec
from registry.levels import LEVELS

SCENARIOS = ("default", "early-adjacent")
TABLES = ("patients", "index_fractures", "procedures", "assessments", "fractures", "follow_up")
HORIZON_DAYS = 1826  # follow-up stops at five years for everyone
CONTACT_DAYS = (30, 91, 182, 365, 730, 1096, 1461, 1826)
ENROL_FIRST = datetime.date(2019, 1, 1)
ENROL_LAST = datetime.date(2024, 12, 31)
NEVER = 1e12  # "no treatment" switch time, finite to keep the arithmetic warning-free
YEAR = 365.25

SITE_P = (0.22, 0.18, 0.15, 0.13, 0.11, 0.09, 0.07, 0.05)
N_LEVELS_P = (0.65, 0.22, 0.09, 0.04)
PRIOR_P = (0.55, 0.225, 0.11, 0.06, 0.035, 0.02)  # 45% with >= 1 prior vertebral fracture
LEVEL_WEIGHT = {
    "L1": 0.22,
    "T12": 0.19,
    "L2": 0.10,
    "T11": 0.08,
    "L3": 0.07,
    "T8": 0.06,
    "T7": 0.05,
    "T10": 0.05,
    "L4": 0.05,
    "T9": 0.04,
    "T6": 0.03,
    "T5": 0.02,
    "L5": 0.02,
    "T4": 0.02,
}
LEVEL_P = np.array([LEVEL_WEIGHT.get(name, 0.0) for name in LEVELS]) / sum(LEVEL_WEIGHT.values())
NEW_LEVEL_FLOOR = 0.005  # new fractures may land anywhere, rarely outside T4-L5
SANDWICH_SHARE = 0.15  # of two-level patients: exactly one level between the two
ETIOLOGY = ("osteoporotic", "malignant", "traumatic")
ETIOLOGY_P = (0.97, 0.015, 0.015)
GENANT_P = (0.30, 0.45, 0.25)
LEAKAGE = ("none", "disc", "venous", "paravertebral", "other")
LEAKAGE_P = (0.70, 0.12, 0.10, 0.06, 0.02)
DETECTION = ("radiographic", "clinical")
DETECTION_P = (0.55, 0.45)
MISSING_COVARIATE = 0.02

# Covariates enter every linear predictor centred on their population means.
CENTRE = {"age": 73.0, "bmd": -2.8, "n_levels": 1.52, "prior": 0.865, "steroids": 0.10}
TREAT_COEF = {"const": 0.007, "age": -0.04, "bmd": -0.50, "n_levels": 0.40, "pain": 0.60}
FRACTURE_COEF = {"age": 0.0815, "bmd": -0.30, "n_levels": 0.20, "steroids": 0.40, "prior": 0.12}
DEATH_COEF = {"age": 0.075, "bmd": -0.15, "n_levels": 0.10, "steroids": 0.30, "prior": 0.05}
MALE_DEATH_HR = 1.5
# Weibull cumulative hazard H(t) = rate * exp(lp) * t**shape, t in days from t0.
HAZARD = {
    "adjacent": {"shape": 0.466, "rate": 4.91e-3},
    "remote": {"shape": 0.804, "rate": 4.84e-4},
    "same": {"shape": 0.5, "rate": 6.36e-4},
    "death": {"shape": 1.0, "rate": 1.439e-4},
}
DEATH_HR_TREATED = 0.971  # from the day of the procedure
EARLY_ADJACENT_SHAPE = {"treated": 0.45, "untreated": 0.55}
LOSS_PER_YEAR = 0.035
WITHDRAW_PER_YEAR = 0.01

# Patient-reported outcomes, (mean, sd) per visit: baseline, one month, six and twelve months.
PRO_SCALE = {"VAS": 10.0, "ODI": 100.0}
PRO_DECIMALS = {"VAS": 1, "ODI": 0}
PRO_MOMENTS = {
    ("VAS", True): ((7.9, 1.5), (1.3, 1.8), (1.5, 1.9), (1.5, 1.9)),
    ("VAS", False): ((7.2, 1.6), (4.5, 2.2), (3.5, 2.2), (3.5, 2.2)),
    ("ODI", True): ((69.3, 13.5), (18.8, 6.9), (20.0, 8.0), (20.0, 8.0)),
    ("ODI", False): ((62.0, 14.0), (45.0, 15.0), (35.0, 15.0), (35.0, 15.0)),
}

DIRTY_RULES = (
    "missing_value",
    "bad_type",
    "bad_date",
    "bad_enum",
    "out_of_range",
    "future_date",
    "unknown_patient",
    "duplicate_key_conflict",
)
# The column each rule breaks, per file (rules without a column here do not apply).
DIRTY_COLUMN: dict[str, dict[str, str]] = {
    "patients": {
        "missing_value": "sex",
        "bad_type": "birth_year",
        "bad_enum": "sex",
        "out_of_range": "prior_vertebral_fractures",
        "duplicate_key_conflict": "birth_year",
    },
    "index_fractures": {
        "missing_value": "etiology",
        "bad_type": "genant_grade",
        "bad_date": "diagnosed_on",
        "bad_enum": "level",
        "out_of_range": "genant_grade",
        "future_date": "diagnosed_on",
        "unknown_patient": "patient_id",
        "duplicate_key_conflict": "genant_grade",
    },
    "procedures": {
        "missing_value": "procedure",
        "bad_type": "cement_volume_ml",
        "bad_date": "performed_on",
        "bad_enum": "cement_leakage",
        "out_of_range": "cement_volume_ml",
        "future_date": "performed_on",
        "unknown_patient": "patient_id",
        "duplicate_key_conflict": "cement_volume_ml",
    },
    "assessments": {
        "missing_value": "score",
        "bad_type": "score",
        "bad_date": "assessed_on",
        "bad_enum": "instrument",
        "out_of_range": "score",
        "future_date": "assessed_on",
        "unknown_patient": "patient_id",
        "duplicate_key_conflict": "score",
    },
    "fractures": {
        "missing_value": "detected_on",
        "bad_date": "detected_on",
        "bad_enum": "detection",
        "future_date": "detected_on",
        "unknown_patient": "patient_id",
        "duplicate_key_conflict": "detection",
    },
    "follow_up": {
        "missing_value": "status",
        "bad_date": "contact_on",
        "bad_enum": "status",
        "future_date": "contact_on",
        "unknown_patient": "patient_id",
        "duplicate_key_conflict": "status",
    },
}
BAD_ENUM = {
    "sex": "X",
    "level": "T13",
    "cement_leakage": "lots",
    "instrument": "NRS",
    "detection": "xray",
    "status": "gone",
}
OUT_OF_RANGE = {"prior_vertebral_fractures": "-2", "genant_grade": "7", "cement_volume_ml": "99"}

Arrays = dict[str, np.ndarray]
POLARS_TYPE = {"date": pl.Date, "int": pl.Int64, "float": pl.Float64, "bool": pl.Boolean}


@dataclass(frozen=True)
class SynthCohort:
    """The contract tables, each patient's latent (uncensored) times and the true parameters."""

    tables: dict[str, pl.DataFrame]
    latent: pl.DataFrame
    truth: dict[str, Any]


def generate_cohort(
    *,
    patients: int = 1700,
    seed: int = 20260101,
    treatment_hr: float = 1.0,
    scenario: str = "default",
    dirty: float = 0.0,
    cutoff: datetime.date = datetime.date(2025, 12, 31),
) -> SynthCohort:
    """Simulate a seeded cohort in the import contract, with its latent truth."""
    _check_options(patients, seed, treatment_hr, scenario, dirty, cutoff)
    pat = _draw_patients(seed, patients, cutoff)
    _draw_times(pat, seed, treatment_hr, scenario)
    tables = _build_tables(pat, seed)
    truth = _truth(seed, patients, treatment_hr, scenario, dirty, cutoff)
    if dirty > 0:
        tables, truth["dirty"] = _make_dirty(tables, _rng(seed, 9), dirty)
    return SynthCohort(tables=tables, latent=_latent_frame(pat), truth=truth)


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


def _rng(seed: int, stage: int) -> np.random.Generator:
    """An independent random stream per stage, so one stage's draws never shift another's."""
    return np.random.default_rng([seed, stage])


def _truncated_normal(
    rng: np.random.Generator, n: int, mean: float, sd: float, low: float, high: float
) -> np.ndarray:
    """Normal draws, redrawn (not clipped) until inside [low, high]."""
    x = rng.normal(mean, sd, n)
    bad = (x < low) | (x > high)
    while bad.any():
        x[bad] = rng.normal(mean, sd, int(bad.sum()))
        bad = (x < low) | (x > high)
    return x


def _last_enrolment(cutoff: datetime.date) -> datetime.date:
    """Enrolment ends on 2024-12-31, or the day before an earlier cut-off."""
    return min(ENROL_LAST, cutoff - datetime.timedelta(days=1))


def _draw_patients(seed: int, n: int, cutoff: datetime.date) -> Arrays:
    """Baseline covariates, enrolment and index levels of n patients."""
    rng = _rng(seed, 1)
    last = _last_enrolment(cutoff)
    t0 = np.datetime64(ENROL_FIRST) + rng.integers(0, (last - ENROL_FIRST).days + 1, n)
    pat: Arrays = {
        "t0": t0.astype("datetime64[D]"),
        "age": np.round(_truncated_normal(rng, n, 73.0, 8.0, 50.0, 95.0)).astype(np.int64),
        "male": rng.random(n) >= 0.78,
        "bmd": np.round(_truncated_normal(rng, n, -2.8, 0.9, -5.5, -1.0), 1),
        "steroids": rng.random(n) < 0.10,
        "prior": rng.choice(len(PRIOR_P), n, p=PRIOR_P),
        "site": rng.choice(len(SITE_P), n, p=SITE_P),
        "pain": rng.normal(0.0, 1.0, n),
        "etiology": rng.choice(len(ETIOLOGY), n, p=ETIOLOGY_P),
    }
    pat["cutoff_day"] = (np.datetime64(cutoff) - pat["t0"]).astype(np.int64)
    pat["position"] = _draw_index_levels(_rng(seed, 2), n)
    pat["n_levels"] = (pat["position"] >= 0).sum(axis=1)
    pat["distance"] = _distance_matrix(pat["position"])
    return pat


def _draw_index_levels(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 4) positions of distinct index levels (-1 = none), by sequential Gumbel-max."""
    n_levels = rng.choice(4, n, p=N_LEVELS_P) + 1
    sandwich = (n_levels == 2) & (rng.random(n) < SANDWICH_SHARE)
    with np.errstate(divide="ignore"):
        scores = np.log(LEVEL_P)[None, :] + rng.gumbel(size=(n, len(LEVELS)))
    rows = np.arange(n)
    pos = np.full((n, 4), -1, dtype=np.int64)
    for k in range(4):
        if k == 1:  # two-level patients: a sandwich exactly when drawn as one
            ring = np.abs(np.arange(len(LEVELS))[None, :] - pos[:, :1]) == 2
            keep = np.where(sandwich[:, None], ring, ~ring | (n_levels[:, None] != 2))
            scores = np.where(keep, scores, -np.inf)
        pos[:, k] = scores.argmax(axis=1)
        scores[rows, pos[:, k]] = -np.inf
    pos[np.arange(4)[None, :] >= n_levels[:, None]] = -1
    return pos


def _distance_matrix(position: np.ndarray) -> np.ndarray:
    """(n, 24) distance from every level to the patient's nearest index level."""
    levels = np.arange(len(LEVELS), dtype=np.int16)[None, :]
    dist = np.full((len(position), len(LEVELS)), 99, dtype=np.int16)
    for k in range(position.shape[1]):
        col = position[:, k : k + 1].astype(np.int16)
        dist = np.minimum(dist, np.where(col >= 0, np.abs(levels - col), 99).astype(np.int16))
    return dist


def _linear_predictor(pat: Arrays, coef: dict[str, float]) -> np.ndarray:
    """Centred linear predictor of the baseline covariates."""
    lp = coef.get("const", 0.0) + coef.get("pain", 0.0) * pat["pain"]
    for name, column in (
        ("age", "age"),
        ("bmd", "bmd"),
        ("n_levels", "n_levels"),
        ("steroids", "steroids"),
        ("prior", "prior"),
    ):
        lp = lp + coef.get(name, 0.0) * (pat[column] - CENTRE[name])
    return np.asarray(lp, dtype=np.float64)


def _weibull_time(
    e: np.ndarray, rate: np.ndarray, shape: Any, tau: np.ndarray, hr: Any
) -> np.ndarray:
    """Invert H(t) = rate * t**shape whose hazard is multiplied by hr from day tau on."""
    h_tau = rate * tau**shape
    h = np.where(e < h_tau, e, h_tau + (e - h_tau) / hr)
    return np.asarray((h / rate) ** (1.0 / shape), dtype=np.float64)


def _draw_times(pat: Arrays, seed: int, treatment_hr: float, scenario: str) -> None:
    """Treatment and the latent times of death, loss, withdrawal and new fractures."""
    rng = _rng(seed, 3)
    n = len(pat["age"])
    intent = rng.random(n) < 1.0 / (1.0 + np.exp(-_linear_predictor(pat, TREAT_COEF)))
    pat["treat_day"] = rng.integers(14, 57, n)
    pat["t_loss"] = rng.exponential(YEAR / -np.log1p(-LOSS_PER_YEAR), n)
    pat["t_withdraw"] = rng.exponential(YEAR / -np.log1p(-WITHDRAW_PER_YEAR), n)
    reached = intent & (pat["treat_day"] < np.minimum(pat["t_loss"], pat["t_withdraw"]))
    tau = np.where(reached, pat["treat_day"], NEVER)
    death_rate = HAZARD["death"]["rate"] * np.exp(
        _linear_predictor(pat, DEATH_COEF) + np.log(MALE_DEATH_HR) * pat["male"]
    )
    pat["t_death"] = _weibull_time(
        rng.exponential(size=n), death_rate, HAZARD["death"]["shape"], tau, DEATH_HR_TREATED
    )
    pat["treated"] = reached & (pat["t_death"] > pat["treat_day"])
    _draw_fracture_times(pat, rng, treatment_hr, scenario)


def _draw_fracture_times(
    pat: Arrays, rng: np.random.Generator, treatment_hr: float, scenario: str
) -> None:
    """First adjacent, remote and same-level fracture times (treatment acts on adjacent)."""
    n = len(pat["age"])
    risk = np.exp(_linear_predictor(pat, FRACTURE_COEF))
    tau = np.where(pat["treated"], pat["treat_day"], NEVER)
    shape, rate = _adjacent_weibull(pat["treated"], scenario)
    pat["t_adjacent"] = _weibull_time(
        rng.exponential(size=n), rate * risk, shape, tau, treatment_hr
    )
    for kind in ("remote", "same"):
        par = HAZARD[kind]
        pat[f"t_{kind}"] = _weibull_time(
            rng.exponential(size=n), par["rate"] * risk, par["shape"], tau, 1.0
        )


def _adjacent_weibull(treated: np.ndarray, scenario: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-patient adjacent shape and rate; early-adjacent keeps the 5-year cumulative hazard."""
    base = HAZARD["adjacent"]
    if scenario == "default":
        ones = np.ones(len(treated))
        return base["shape"] * ones, base["rate"] * ones
    shape = np.where(treated, EARLY_ADJACENT_SHAPE["treated"], EARLY_ADJACENT_SHAPE["untreated"])
    return shape, base["rate"] * float(HORIZON_DAYS) ** (base["shape"] - shape)


def _to_day(t: np.ndarray) -> np.ndarray:
    """Whole days from t0 of a continuous time (day 1 is the first day after t0)."""
    return np.ceil(np.minimum(t, 1e7)).astype(np.int64)


def _build_tables(pat: Arrays, seed: int) -> dict[str, pl.DataFrame]:
    """The six contract tables as the registry would see them at the cut-off."""
    _observation_window(pat)
    pid = _patient_ids(len(pat["age"]))
    raw = {
        "patients": _patients_rows(pat, _rng(seed, 4)),
        "index_fractures": _index_rows(pat, _rng(seed, 5)),
        "procedures": _procedure_rows(pat, _rng(seed, 6)),
        "assessments": _assessment_rows(pat, _rng(seed, 7)),
        "fractures": _fracture_rows(pat, _rng(seed, 8)),
        "follow_up": _follow_up_rows(pat),
    }
    return {name: _contract_frame(SPECS[name], cols, pat["t0"], pid) for name, cols in raw.items()}


def _observation_window(pat: Arrays) -> None:
    """End of follow-up: the first of death, loss and withdrawal; then cut-off and 5 years."""
    times = np.stack([pat["t_death"], pat["t_withdraw"], pat["t_loss"]], axis=1)
    pat["terminal"] = times.argmin(axis=1)  # 0 dead, 1 withdrawn, 2 lost
    pat["t_end"] = times.min(axis=1)
    pat["end_day"] = _to_day(pat["t_end"])
    pat["last_day"] = np.minimum(pat["cutoff_day"], HORIZON_DAYS)  # last day data can exist


def _patient_ids(n: int) -> pl.Series:
    """Pseudonymous ids P0000001, P0000002, ..."""
    return "P" + pl.Series(np.arange(1, n + 1)).cast(pl.String).str.zfill(7)


def _patients_rows(pat: Arrays, rng: np.random.Generator) -> Arrays:
    """One row per patient; ~2% of the optional covariates left blank."""
    n = len(pat["age"])
    year = pat["t0"].astype("datetime64[Y]").astype(np.int64) + 1970
    return {
        "patient": np.arange(n),
        "site_id": np.array([f"S{i:02d}" for i in range(1, 9)])[pat["site"]],
        "sex": np.where(pat["male"], "M", "F"),
        "birth_year": year - pat["age"],
        "bmd_t_score": _with_nulls(pat["bmd"], rng.random(n) < MISSING_COVARIATE),
        "glucocorticoids": _with_nulls(pat["steroids"], rng.random(n) < MISSING_COVARIATE),
        "prior_vertebral_fractures": pat["prior"],
    }


def _with_nulls(values: np.ndarray, blank: np.ndarray) -> np.ndarray:
    """Values as floats with NaN (written as null) where `blank`."""
    return np.where(blank, np.nan, values.astype(np.float64))


def _index_rows(pat: Arrays, rng: np.random.Generator) -> Arrays:
    """One row per index level: the first on t0, the others within 14 days."""
    n = len(pat["age"])
    offset = np.minimum(rng.integers(0, 15, (n, 4)), pat["cutoff_day"][:, None])
    offset[:, 0] = 0
    valid = pat["position"] >= 0
    return _long(
        offset,
        valid,
        "diagnosed_on",
        level=pat["position"],
        genant_grade=rng.choice(3, (n, 4), p=GENANT_P) + 1,
        etiology=np.repeat(pat["etiology"][:, None], 4, axis=1),
    )


def _procedure_rows(pat: Arrays, rng: np.random.Generator) -> Arrays:
    """Vertebroplasty of every index level on the treatment day, if seen by the cut-off."""
    n = len(pat["age"])
    seen = pat["treated"] & (pat["treat_day"] <= pat["last_day"])
    return _long(
        np.repeat(pat["treat_day"][:, None], 4, axis=1),
        (pat["position"] >= 0) & seen[:, None],
        "performed_on",
        level=pat["position"],
        procedure=np.zeros((n, 4), dtype=np.int64),
        cement_volume_ml=np.round(2.0 + 6.0 * rng.beta(2.0, 2.0, (n, 4)), 1),
        cement_leakage=rng.choice(len(LEAKAGE), (n, 4), p=LEAKAGE_P),
    )


def _visit_days(pat: Arrays, rng: np.random.Generator) -> np.ndarray:
    """(n, 4) days of the baseline, one-, six- and twelve-month assessments."""
    n = len(pat["age"])
    treated = pat["treated"]
    base = np.where(treated, pat["treat_day"] - rng.integers(1, 8, n), rng.integers(0, 8, n))
    anchor = np.where(treated, pat["treat_day"], base)
    later = anchor[:, None] + np.array([182, 365])[None, :] + rng.integers(-14, 15, (n, 2))
    month = anchor + rng.integers(21, 46, n)
    return np.column_stack([base, month, later])


def _assessment_rows(pat: Arrays, rng: np.random.Generator) -> Arrays:
    """VAS and ODI at each visit while under follow-up (before its end, on or before cut-off)."""
    days = _visit_days(pat, rng)
    valid = (days < pat["end_day"][:, None]) & (days <= pat["last_day"][:, None])
    vas, odi = (_pro_scores(pat, rng, instrument) for instrument in ("VAS", "ODI"))
    return _long(
        np.repeat(days, 2, axis=1),
        np.repeat(valid, 2, axis=1),
        "assessed_on",
        instrument=np.tile(np.array([0, 1]), (len(days), 4)),
        score=np.stack([vas, odi], axis=2).reshape(len(days), 8),
    )


def _beta_params(mean: float, sd: float, scale: float) -> tuple[float, float]:
    """Beta(a, b) whose scaled mean and SD are `mean` and `sd`."""
    m, v = mean / scale, (sd / scale) ** 2
    nu = m * (1.0 - m) / v - 1.0
    return m * nu, (1.0 - m) * nu


def _pro_scores(pat: Arrays, rng: np.random.Generator, instrument: str) -> np.ndarray:
    """(n, 4) scores per visit; the baseline follows the latent pain within each arm."""
    n, treated = len(pat["age"]), pat["treated"]
    params = {
        arm: np.array(
            [_beta_params(m, s, PRO_SCALE[instrument]) for m, s in PRO_MOMENTS[(instrument, arm)]]
        )
        for arm in (True, False)
    }
    a = np.where(treated[:, None], params[True][:, 0], params[False][:, 0])
    b = np.where(treated[:, None], params[True][:, 1], params[False][:, 1])
    score = rng.beta(a, b, (n, 4)) * PRO_SCALE[instrument]
    rank_key = pat["pain"] + rng.normal(0.0, 1.0, n)
    for arm in (treated, ~treated):
        idx = np.flatnonzero(arm)
        ranks = np.argsort(np.argsort(rank_key[idx]))
        score[idx, 0] = np.sort(score[idx, 0])[ranks]
    return np.round(score, PRO_DECIMALS[instrument])


def _fracture_rows(pat: Arrays, rng: np.random.Generator) -> Arrays:
    """The first adjacent, remote and same-level fracture, each if seen during follow-up."""
    n = len(pat["age"])
    times = np.column_stack([pat["t_adjacent"], pat["t_remote"], pat["t_same"]])
    days = _to_day(times)
    valid = (times <= pat["t_end"][:, None]) & (days <= pat["last_day"][:, None])
    level = np.zeros((n, 3), dtype=np.int64)
    for kind, allowed in enumerate(
        (pat["distance"] == 1, pat["distance"] >= 2, pat["distance"] == 0)
    ):
        rows = np.flatnonzero(valid[:, kind])
        level[rows, kind] = _pick_levels(rng, allowed[rows])
    detection = rng.choice(len(DETECTION), (n, 3), p=DETECTION_P)
    return _long(days, valid, "detected_on", level=level, detection=detection)


def _pick_levels(rng: np.random.Generator, allowed: np.ndarray) -> np.ndarray:
    """One level per row among the allowed ones, weighted by how often each level fractures."""
    weight = np.cumsum((LEVEL_P + NEW_LEVEL_FLOOR)[None, :] * allowed, axis=1)
    u = rng.random(len(allowed)) * weight[:, -1]
    return np.asarray((weight <= u[:, None]).sum(axis=1), dtype=np.int64)


def _follow_up_rows(pat: Arrays) -> Arrays:
    """Scheduled contacts while alive and followed, then a final dead/withdrawn/lost row."""
    n = len(pat["age"])
    sched = np.array(CONTACT_DAYS)[None, :].repeat(n, axis=0)
    days = np.column_stack([sched, pat["end_day"]])
    valid = days <= pat["last_day"][:, None]
    valid[:, :-1] &= sched < pat["end_day"][:, None]
    status = np.zeros((n, len(CONTACT_DAYS) + 1), dtype=np.int64)
    status[:, -1] = pat["terminal"] + 1
    return _long(days, valid, "contact_on", status=status)


def _long(days: np.ndarray, valid: np.ndarray, date_col: str, **cols: np.ndarray) -> Arrays:
    """Flatten (n, k) per-patient matrices to rows ordered by patient, then day."""
    order = np.argsort(np.where(valid, days, np.iinfo(np.int64).max), axis=1, kind="stable")
    keep = np.take_along_axis(valid, order, axis=1)
    patient = np.broadcast_to(np.arange(len(days))[:, None], days.shape)
    out = {"patient": patient[keep], date_col: np.take_along_axis(days, order, axis=1)[keep]}
    for name, values in cols.items():
        out[name] = np.take_along_axis(values, order, axis=1)[keep]
    return out


def _contract_frame(spec: FileSpec, cols: Arrays, t0: np.ndarray, pid: pl.Series) -> pl.DataFrame:
    """Typed frame with exactly the contract columns, in order."""
    patient = cols["patient"]
    series = [pid.gather(patient).alias("patient_id")]
    for column in spec.columns[1:]:
        values = cols[column.name]
        if column.kind == "date":
            values = t0[patient] + values.astype("timedelta64[D]")
        if column.kind == "enum" and values.dtype.kind == "i":
            series.append(pl.Series(_enum_labels(column.name)).gather(values).alias(column.name))
        else:
            dtype = POLARS_TYPE.get(column.kind, pl.String)
            series.append(pl.Series(column.name, values, nan_to_null=True).cast(dtype))
    return pl.DataFrame(series)


def _enum_labels(name: str) -> tuple[str, ...]:
    """Labels that integer codes of an enum column stand for."""
    labels = {
        "level": LEVELS,
        "etiology": ETIOLOGY,
        "cement_leakage": LEAKAGE,
        "detection": DETECTION,
        "procedure": ("vertebroplasty",),
        "instrument": ("VAS", "ODI"),
        "status": ("alive", "dead", "withdrawn", "lost"),
    }
    return labels[name]


def _latent_frame(pat: Arrays) -> pl.DataFrame:
    """One row per patient: covariates, treatment and the uncensored times from t0."""
    n = len(pat["age"])
    return pl.DataFrame(
        {
            "patient_id": _patient_ids(n),
            "t0": pl.Series(pat["t0"]).cast(pl.Date),
            "cutoff_day": pat["cutoff_day"],
            "age": pat["age"],
            "sex": np.where(pat["male"], "M", "F"),
            "bmd": pat["bmd"],
            "glucocorticoids": pat["steroids"],
            "prior_fractures": pat["prior"],
            "n_levels": pat["n_levels"].astype(np.int64),
            "etiology": pl.Series(ETIOLOGY).gather(pat["etiology"]),
            "treated": pat["treated"],
            "treat_day": pl.Series(
                _with_nulls(pat["treat_day"], ~pat["treated"]), nan_to_null=True
            ).cast(pl.Int64),
            **{
                f"t_{k}": pat[f"t_{k}"]
                for k in ("adjacent", "remote", "same", "death", "loss", "withdraw")
            },
        }
    )


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
        "enrolment": [ENROL_FIRST.isoformat(), _last_enrolment(cutoff).isoformat()],
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


def _make_dirty(
    tables: dict[str, pl.DataFrame], rng: np.random.Generator, dirty: float
) -> tuple[dict[str, pl.DataFrame], dict[str, dict[str, int]]]:
    """All-string tables with ~dirty x rows distinct rows breaking one rule each."""
    out, counts = {}, {}
    for name in TABLES:
        out[name], counts[name] = _dirty_table(name, tables[name], rng, dirty)
    return out, counts


def _dirty_table(
    name: str, frame: pl.DataFrame, rng: np.random.Generator, dirty: float
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Corrupt distinct rows of one table, cycling over the rules that apply to it."""
    rules = [r for r in DIRTY_RULES if r in DIRTY_COLUMN[name]]
    chosen = rng.permutation(frame.height)[: round(dirty * frame.height)]
    strings = frame.select(pl.all().cast(pl.String))
    extra = []
    for i, rule in enumerate(rules):
        rows = np.sort(chosen[i :: len(rules)])
        column = DIRTY_COLUMN[name][rule]
        if rule == "duplicate_key_conflict":
            extra.append(_conflicting_copies(frame[rows], column).select(pl.all().cast(pl.String)))
            continue
        bad = _corrupt(rule, column, strings[rows])
        strings = strings.with_columns(strings[column].scatter(rows, bad))
    counts = {rule: len(chosen[i :: len(rules)]) for i, rule in enumerate(rules)}
    return pl.concat([strings, *extra]), counts


def _corrupt(rule: str, column: str, rows: pl.DataFrame) -> pl.Series:
    """Values of `column` in `rows` that break `rule` (and nothing else)."""
    s = rows[column]
    if rule == "missing_value":
        return pl.Series([None] * len(s), dtype=pl.String)
    if rule == "bad_type":
        return {
            "birth_year": s.str.slice(0, 2) + "x" + s.str.slice(3),
            "genant_grade": "II" + s,
            "cement_volume_ml": s + "ml",
            "score": pl.Series(["abc"] * len(s)),
        }[column]
    if rule == "bad_date":
        day = s.str.to_date("%Y-%m-%d")
        slashed = day.dt.strftime("%d/%m/%Y")
        feb30 = s.str.slice(0, 4) + "-02-30"
        return pl.select(
            pl.when(pl.int_range(len(s)) % 2 == 0).then(slashed).otherwise(feb30)
        ).to_series()
    if rule == "future_date":  # a hundred years on keeps dates of one patient distinct
        return (s.str.slice(0, 4).cast(pl.Int64) + 100).cast(pl.String) + s.str.slice(4)
    if rule == "unknown_patient":
        return s + "x"
    if rule == "bad_enum":
        return pl.Series([BAD_ENUM[column]] * len(s))
    if column == "score":  # out of range for its own instrument
        return pl.select(
            pl.when(rows["instrument"] == "VAS").then(pl.lit("14")).otherwise(pl.lit("140"))
        ).to_series()
    return pl.Series([OUT_OF_RANGE[column]] * len(s))


def _conflicting_copies(rows: pl.DataFrame, column: str) -> pl.DataFrame:
    """Copies of typed rows with the same natural key and a different, valid `column`."""
    c = pl.col(column)
    change = {
        "birth_year": c + 1,
        "genant_grade": c % 3 + 1,
        "cement_volume_ml": (c + 0.5).round(1),
        "score": pl.when(c >= 5).then(c - 1).otherwise(c + 1).round(1),
        "detection": pl.when(c == "clinical")
        .then(pl.lit("radiographic"))
        .otherwise(pl.lit("clinical")),
        "status": pl.when(c == "alive").then(pl.lit("lost")).otherwise(pl.lit("alive")),
    }[column]
    return rows.with_columns(change.alias(column))
