"""Contract tables: what a registry would have seen of the latent cohort by the cut-off."""

from __future__ import annotations

import numpy as np
import polars as pl

from registry.ingest.contract import SPECS, FileSpec
from registry.levels import LEVELS
from registry.synth.latent import patient_ids, stage_rng, with_nulls
from registry.synth.params import (
    CONTACT_DAYS,
    DETECTION,
    DETECTION_P,
    ETIOLOGY,
    GENANT_P,
    HORIZON_DAYS,
    LEAKAGE,
    LEAKAGE_P,
    LEVEL_P,
    MISSING_COVARIATE,
    NEW_LEVEL_FLOOR,
    PRO_DECIMALS,
    PRO_MOMENTS,
    PRO_SCALE,
    Arrays,
)

POLARS_TYPE = {"date": pl.Date, "int": pl.Int64, "float": pl.Float64, "bool": pl.Boolean}


def build_tables(pat: Arrays, seed: int) -> dict[str, pl.DataFrame]:
    """The six contract tables as the registry would see them at the cut-off."""
    _observation_window(pat)
    pid = patient_ids(len(pat["age"]))
    raw = {
        "patients": _patients_rows(pat, stage_rng(seed, 4)),
        "index_fractures": _index_rows(pat, stage_rng(seed, 5)),
        "procedures": _procedure_rows(pat, stage_rng(seed, 6)),
        "assessments": _assessment_rows(pat, stage_rng(seed, 7)),
        "fractures": _fracture_rows(pat, stage_rng(seed, 8)),
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


def _to_day(t: np.ndarray) -> np.ndarray:
    """Whole days from t0 of a continuous time (day 1 is the first day after t0)."""
    return np.ceil(np.minimum(t, 1e7)).astype(np.int64)


def _patients_rows(pat: Arrays, rng: np.random.Generator) -> Arrays:
    """One row per patient; ~2% of the optional covariates left blank."""
    n = len(pat["age"])
    year = pat["t0"].astype("datetime64[Y]").astype(np.int64) + 1970
    return {
        "patient": np.arange(n),
        "site_id": np.array([f"S{i:02d}" for i in range(1, 9)])[pat["site"]],
        "sex": np.where(pat["male"], "M", "F"),
        "birth_year": year - pat["age"],
        "bmd_t_score": with_nulls(pat["bmd"], rng.random(n) < MISSING_COVARIATE),
        "glucocorticoids": with_nulls(pat["steroids"], rng.random(n) < MISSING_COVARIATE),
        "prior_vertebral_fractures": pat["prior"],
    }


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
    vas, odi = (_pro_scores(pat, rng, instrument) for instrument in ("VAS", "ODI"))
    held = np.ones(days.shape, dtype=bool)
    if "visit_day" in pat:  # tv-confounding
        days, vas, odi, held = _untreated_schedule_then_treated(pat, days, vas, odi)
    valid = held & (days < pat["end_day"][:, None]) & (days <= pat["last_day"][:, None])
    return _long(
        np.repeat(days, 2, axis=1),
        np.repeat(valid, 2, axis=1),
        "assessed_on",
        instrument=np.tile(np.array([0, 1]), days.shape),
        score=np.stack([vas, odi], axis=2).reshape(len(days), 2 * days.shape[1]),
    )


def _untreated_schedule_then_treated(
    pat: Arrays, days: np.ndarray, vas: np.ndarray, odi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """tv-confounding: the untreated schedule's visits up to the procedure day (scores that
    follow severity), then the treated course's one-, six- and twelve-month visits; days,
    VAS, ODI and which visits are held."""
    treated = pat["treated"]
    before = ~treated[:, None] | (pat["visit_day"] <= pat["treat_day"][:, None])
    after = np.repeat(treated[:, None], days.shape[1] - 1, axis=1)
    return (
        np.column_stack([pat["visit_day"], days[:, 1:]]),
        np.column_stack([pat["visit_vas"], vas[:, 1:]]),
        np.column_stack([pat["visit_odi"], odi[:, 1:]]),
        np.column_stack([before, after]),
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
