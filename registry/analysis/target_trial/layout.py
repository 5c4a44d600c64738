"""The replicate engine's arrays straight from one outcome's frame, without the clone frame.

`engine.prepare` reads the clone rows of `clones.build_clones` (one row per clone and
interval, every covariate and the latest scores carried on each row, string clone ids, a
cross join of clones and intervals, two as-of joins): at a million patients that frame holds
~40 million rows and most of the estimate's time and memory. `prepare_outcome` builds the
same `Prepared` from per-patient arrays: a clone's rows are its intervals up to its exit
(`np.repeat`), a patient's initiation rows are a contiguous block (row -> initiation row is
arithmetic, not a join), covariates are computed once per patient and gathered, and the
latest VAS and ODI are one `searchsorted` over (patient, day) keys. Rows come in the same
order as prepare's (clones by clone id, then start; initiation rows by patient id, then
interval), and patients in the same order, so every number — bootstrap included — is the
one `prepare(build_clones(...))` gives (tests/test_target_trial_layout.py checks each
array; tests/test_target_trial_pinned.py the whole block).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from registry.analysis.target_trial import NotEstimable
from registry.analysis.target_trial.clones import SCORES, check_cohort, eligible, intervals
from registry.analysis.target_trial.engine import (
    INTERCEPT,
    NO_TREAT,
    TREAT,
    Prepared,
    compact_initiation,
    finish_prepare,
)
from registry.errors import ModelFitError
from registry.models.iptw import design_matrix
from registry.study import COVARIATES
from registry.time_to_event import CENSORED

_SHIFT = np.int64(2**31)  # day offsets shifted to non-negative, below 2**32


def prepare_outcome(
    outcome: pl.DataFrame, assessments: pl.DataFrame, *, grace_days: int, years: tuple[int, ...]
) -> Prepared | NotEstimable:
    """`engine.prepare(build_clones(outcome, ...), ...)` without the clone frame (see the
    module docstring), or why the cohort cannot answer the target trial."""
    patients = eligible(outcome)
    reason = check_cohort(patients, grace_days=grace_days)
    if reason is not None:
        return reason
    duration = patients.get_column("duration_days").to_numpy().astype(np.int64)
    grid = intervals(grace_days, int(duration.max()))
    clones = _clones(patients, grace_days)
    order = _patient_order(patients, clones)  # engine index -> row of `patients`
    patients = patients[order]
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    clone_p = rank[clones["patient"]]
    exit_day, exit_event = clones["exit_day"], clones["exit_event"]
    last_day = int(exit_day.max())
    starts_all = grid.get_column("start").to_numpy()
    present = int(np.searchsorted(starts_all, last_day, side="left"))  # intervals with rows
    starts = starts_all[:present]
    stops_full = grid.get_column("stop").to_numpy()[:present]
    in_grace = grid.get_column("in_grace").to_numpy()[:present]
    stops = np.minimum(stops_full, last_day)  # a clone's last row stops at its exit
    # clone rows, in int32 (tens of millions of rows at a million patients; days, intervals
    # and row numbers all fit) and each intermediate released once used
    counts = np.searchsorted(starts, exit_day, side="left")
    row_clone = np.repeat(np.arange(counts.size, dtype=np.int32), counts)
    first = np.repeat((np.cumsum(counts) - counts).astype(np.int32), counts)
    row_interval = np.arange(row_clone.size, dtype=np.int32)
    row_interval -= first
    clone_exit = exit_day.astype(np.int32)[row_clone]
    row_stop = stops_full.astype(np.int32)[row_interval]
    last = row_stop >= clone_exit
    np.minimum(row_stop, clone_exit, out=row_stop)
    del clone_exit
    row_event = np.where(last, exit_event[row_clone], CENSORED).astype(np.int8)
    row_patient = clone_p.astype(np.int32)[row_clone]
    row_strategy = clones["strategy"][row_clone]
    del row_clone
    p_duration = patients.get_column("duration_days").to_numpy().astype(np.int32)
    deviated = last & (row_event == CENSORED) & (row_stop < p_duration[row_patient])
    del last
    # initiation rows, by patient id then interval
    init_order = patients.get_column("patient_id").arg_sort().to_numpy()
    init = _initiation(patients, init_order, starts, stops)
    init_offset = np.zeros(order.size, dtype=np.int32)
    init_offset[init["order"]] = np.cumsum(init["counts"]) - init["counts"]
    init_count = np.zeros(order.size, dtype=np.int32)
    init_count[init["order"]] = init["counts"]

    row_offset, row_count = init_offset[row_patient], init_count[row_patient]
    row_init = np.where(row_interval < row_count, row_offset + row_interval, -1)
    last_grace = int(np.flatnonzero(in_grace).max())
    has_last = (row_strategy == TREAT) & (last_grace < row_count)
    row_last = np.where(has_last, row_offset + last_grace, -1)
    del row_offset, row_count
    y = init["initiated"]
    by_interval = np.bincount(init["interval"], weights=y, minlength=present)
    active = np.flatnonzero(by_interval[init["interval"]] > 0)
    if active.size == 0:
        raise ModelFitError("nobody started treatment in any interval")
    # only the model's rows go on: the design of the others would be dropped unread
    maps, init = compact_initiation(
        {"init": row_init, "last_grace": row_last},
        {"patient": init["patient"], "interval": init["interval"], "y": y, "active": active},
    )
    x, names = _design(patients, assessments, init, starts, in_grace)
    return finish_prepare(
        patient_ids=patients.get_column("patient_id").to_list(),
        rows={
            "patient": row_patient, "strategy": row_strategy, "interval": row_interval,
            "stop": row_stop,
            "event": row_event, "first": first, "deviated": deviated, **maps,
        },
        init=init | {"x": x, "names": names},
        grid={"start": starts, "stop": stops, "in_grace": in_grace},
        years=years,
    )  # fmt: skip


def _design(patients: pl.DataFrame, assessments: pl.DataFrame, init: dict[str, np.ndarray],
            starts: np.ndarray, in_grace: np.ndarray) -> tuple[np.ndarray, list[str]]:  # fmt: skip
    """The initiation rows' design, the intercept first, filled a column at a time (the
    stacked copies of a column_stack were each as large as the design)."""
    design, names = design_matrix(patients, COVARIATES)
    scores = _latest_scores(patients, assessments, init["patient"], starts[init["interval"]])
    columns = [*names, *(c for s in SCORES for c in (s.lower(), f"{s.lower()}_missing")),
               "weeks", "after_grace"]  # fmt: skip
    x = np.empty((init["patient"].size, 1 + len(columns)))
    x[:, 0] = 1.0
    for k in range(design.shape[1]):
        x[:, 1 + k] = design[:, k][init["patient"]]
    k = 1 + design.shape[1]
    for name in SCORES:
        x[:, k] = np.nan_to_num(scores[name], nan=0.0)
        x[:, k + 1] = np.isnan(scores[name])
        k += 2
    x[:, k] = starts[init["interval"]] / 7
    x[:, k + 1] = ~in_grace[init["interval"]]
    return x, [INTERCEPT, *columns]


def _clones(patients: pl.DataFrame, grace_days: int) -> dict[str, np.ndarray]:
    """Per clone (treat clones, then no_treat): patient row, strategy, exit day and event."""
    day = patients.get_column("treat_day").fill_null(-1).to_numpy().astype(np.int64)
    has_day = patients.get_column("treat_day").is_not_null().to_numpy()
    duration = patients.get_column("duration_days").to_numpy().astype(np.int64)
    event = patients.get_column("event").to_numpy().astype(np.int8)
    in_grace = has_day & (day <= grace_days) & (day < duration)
    deviates = ~in_grace & (duration > grace_days)
    switched = has_day & (day < duration)
    n = duration.size
    return {
        "patient": np.concatenate([np.arange(n), np.arange(n)]),
        "strategy": np.repeat(np.array([TREAT, NO_TREAT], dtype=np.int8), n),
        "exit_day": np.concatenate(
            [np.where(deviates, grace_days, duration), np.where(switched, day, duration)]
        ),
        "exit_event": np.concatenate(
            [np.where(deviates, CENSORED, event), np.where(switched, CENSORED, event)]
        ).astype(np.int8),
    }


def _patient_order(patients: pl.DataFrame, clones: dict[str, np.ndarray]) -> np.ndarray:
    """Patients in the order prepare meets them: clones sorted by their clone id
    ("<patient_id>:<strategy>", compared as strings), then the clones in that order."""
    ids = patients.get_column("patient_id")
    names = pl.Series(["treat", "no_treat"])[pl.Series(clones["strategy"]).cast(pl.Int64)]
    clone_id = ids[pl.Series(clones["patient"])] + ":" + names
    sorted_clones = clone_id.arg_sort().to_numpy()
    ordered = clones["patient"][sorted_clones]
    _, first = np.unique(ordered, return_index=True)
    order = ordered[np.sort(first)]
    clones.update({k: v[sorted_clones] for k, v in clones.items()})
    return order


def _initiation(patients: pl.DataFrame, init_order: np.ndarray, starts: np.ndarray,
                stops: np.ndarray) -> dict[str, np.ndarray]:  # fmt: skip
    """Initiation rows (patient index, interval, initiated), patients by id: a patient is at
    risk from interval 0 until the interval holding its procedure (or its exit)."""
    duration = patients.get_column("duration_days").to_numpy().astype(np.int64)[init_order]
    day = patients.get_column("treat_day").fill_null(-1).to_numpy().astype(np.int64)[init_order]
    has_day = patients.get_column("treat_day").is_not_null().to_numpy()[init_order]
    at_risk_day = has_day & (day < duration)
    until = np.where(at_risk_day, np.minimum(day, duration), duration)
    counts = np.searchsorted(starts, until, side="left")
    counts = np.where(duration > 0, np.maximum(counts, 1), 0)
    patient = np.repeat(init_order.astype(np.int32), counts)
    interval = np.arange(patient.size, dtype=np.int32)
    interval -= np.repeat((np.cumsum(counts) - counts).astype(np.int32), counts)
    d = np.repeat(np.where(at_risk_day, day, -1), counts)
    started = np.repeat(at_risk_day, counts) & (d <= stops[interval])
    started &= (d > starts[interval]) | (starts[interval] == 0)
    return {"order": init_order, "counts": counts, "patient": patient, "interval": interval,
            "initiated": started.astype(np.float64)}  # fmt: skip


def _latest_scores(patients: pl.DataFrame, assessments: pl.DataFrame, patient: np.ndarray,
                   start: np.ndarray) -> dict[str, np.ndarray]:  # fmt: skip
    """Per row: the latest VAS and ODI recorded on or before t0 + start (NaN: none)."""
    if assessments.is_empty():  # (an empty frame may not even type its columns)
        return {instrument: np.full(patient.size, np.nan) for instrument in SCORES}
    code = patients.select("patient_id", "t0").with_row_index("__p")
    found = assessments.join(code, on="patient_id", how="inner").select(
        pl.col("__p").cast(pl.Int64),
        (pl.col("assessed_on") - pl.col("t0")).dt.total_days().cast(pl.Int64).alias("day"),
        "instrument",
        pl.col("score").cast(pl.Float64),
    )
    query = patient.astype(np.int64) * 2**32 + (start.astype(np.int64) + _SHIFT)
    out = {}
    for instrument in SCORES:
        rows = found.filter(pl.col("instrument") == instrument)
        if rows.is_empty():
            out[instrument] = np.full(patient.size, np.nan)
            continue
        days = rows.get_column("day").to_numpy()
        keys = rows.get_column("__p").to_numpy() * 2**32 + (days + _SHIFT)
        order = np.argsort(keys, kind="stable")
        keys, score = keys[order], rows.get_column("score").to_numpy()[order]
        at = np.searchsorted(keys, query, side="right") - 1
        ok = (at >= 0) & (keys[np.maximum(at, 0)] >> 32 == patient)
        out[instrument] = np.where(ok, score[np.maximum(at, 0)], np.nan)
    return out
