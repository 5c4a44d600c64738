"""The clone–censor–weight estimate on arrays, built once and rerun per bootstrap replicate.

`prepare` turns the clone rows and the treatment-initiation rows (clones.py, weights.py) into
NumPy arrays and index maps; `run` takes one frequency weight per patient (ones for the point
estimate, multinomial counts for a bootstrap replicate) and refits the initiation model,
rebuilds the censoring weights, truncates them and gives each strategy's weighted
Aalen–Johansen risks, its curve on a fixed day grid, and the weighted cause-specific hazard
ratio. Nothing is re-sorted or re-joined per replicate: a replicate of n patients costs one
GLM fit and a few passes over the rows.

Weights. The unstabilised weight of a clone row is 1 / P(uncensored to the row's interval
start | history) (weights.py). The stabilised weight multiplies it by the marginal
probability of remaining uncensored, which depends only on the strategy and the interval
(the time-only model): the product of (1 - p) for `no_treat` and, after the grace period,
1 - prod over the grace intervals of (1 - p) for `treat` (the probability of having started
by its end). A numerator that depended on the clone's own treatment history (p of the last
grace interval only for clones untreated at its start) would weigh early and late starters
differently and bias the `treat` risks: on the tv-confounding cohort it moved the 5-year
risk by 2.5 percentage points.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import polars as pl

from registry.analysis.target_trial.clones import STRATEGIES
from registry.analysis.target_trial.protocol import Protocol
from registry.analysis.target_trial.risks import year_day
from registry.analysis.target_trial.weights import (
    TIME_TERMS,
    active_rows,
    initiation_rows,
    model_frame,
    usable_columns,
)
from registry.errors import ModelFitError
from registry.time_to_event import CENSORED, EVENT

TREAT, NO_TREAT = 0, 1
CURVE_STEP = 14  # days between the points of the published curves


@dataclass(frozen=True)
class Axis:
    """One strategy's rows against the common event times, with their sort orders fixed."""

    rows: np.ndarray  # the strategy's clone rows
    stop_order: np.ndarray
    stop_pos: np.ndarray  # per event time: first row (in stop order) with stop >= time
    start_order: np.ndarray
    start_pos: np.ndarray
    event_rows: np.ndarray  # rows ending with the outcome or death
    event_time: np.ndarray  # their index on the time axis
    event_code: np.ndarray

    @classmethod
    def build(cls, rows: np.ndarray, start: np.ndarray, stop: np.ndarray, code: np.ndarray,
              times: np.ndarray) -> Axis:  # fmt: skip
        stop_order, start_order = stable_order(stop), stable_order(start)
        hit = np.flatnonzero(code > 0)
        return cls(
            rows=rows,
            stop_order=stop_order,
            stop_pos=np.searchsorted(stop[stop_order], times, side="left"),
            start_order=start_order,
            start_pos=np.searchsorted(start[start_order], times, side="left"),
            event_rows=hit,
            event_time=np.searchsorted(times, stop[hit]),
            event_code=code[hit],
        )

    def sums(self, w_all: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Weighted at-risk, outcome events and deaths at each event time."""
        w = w_all[self.rows]
        n = self.stop_pos.size
        at_risk = (
            _tail(w[self.stop_order])[self.stop_pos] - _tail(w[self.start_order])[self.start_pos]
        )
        we = w[self.event_rows]
        outcome = self.event_code == EVENT
        d1 = np.bincount(self.event_time[outcome], weights=we[outcome], minlength=n)
        d2 = np.bincount(self.event_time[~outcome], weights=we[~outcome], minlength=n)
        return at_risk, d1, d2


def stable_order(days: np.ndarray) -> np.ndarray:
    """np.argsort(days, kind="stable"); whole days in 0..65535 (always, for follow-up capped
    at five years) are sorted as uint16, which NumPy radix-sorts: the same permutation (a
    stable sort of equal keys has only one), several times faster on tens of millions of rows."""
    small = days.size and days.min() >= 0 and days.max() <= np.iinfo(np.uint16).max
    if small and np.array_equal(days, np.floor(days)):
        return np.argsort(days.astype(np.uint16), kind="stable")
    return np.argsort(days, kind="stable")


def _tail(w: np.ndarray) -> np.ndarray:
    """Sum of w[k:] for every k, with a final 0."""
    return np.concatenate([np.cumsum(w[::-1])[::-1], [0.0]])


@dataclass(frozen=True)
class Prepared:
    """Everything a replicate needs, as arrays over clone rows and initiation rows."""

    n_patients: int
    patient_ids: list[str]
    # clone rows, sorted by clone then start
    row_patient: np.ndarray  # patient index 0..n-1
    row_strategy: np.ndarray  # TREAT / NO_TREAT
    row_interval: np.ndarray
    row_start: np.ndarray
    row_stop: np.ndarray
    row_event: np.ndarray
    row_first: np.ndarray  # index of the clone's first row, per row
    row_deviated: np.ndarray  # the clone's last row, censored because it left its strategy
    row_init: np.ndarray  # index of the row's initiation row, -1 when none
    row_last_grace: np.ndarray  # treat rows: the initiation row of the last grace interval
    # initiation model
    init_patient: np.ndarray
    init_interval: np.ndarray
    init_y: np.ndarray
    init_x: np.ndarray  # denominator design, with intercept
    init_x_num: np.ndarray  # numerator (time-only) design, with intercept
    den_names: list[str]
    num_names: list[str]
    init_active: np.ndarray  # rows of intervals with a start: the model's data
    n_intervals: int
    last_grace: int
    interval_start: np.ndarray
    interval_stop: np.ndarray
    interval_in_grace: np.ndarray
    last_day: int
    grid: np.ndarray  # curve days
    year_days: dict[int, int]
    times: np.ndarray  # every outcome or death time of the clones
    axes: tuple[Axis, Axis]  # TREAT, NO_TREAT
    outcome_rows: np.ndarray  # clone rows ending with the outcome
    outcome_time: np.ndarray  # their index on the time axis
    grid_pos: np.ndarray  # per grid day: index into the cif (0 = before the first time)
    year_pos: list[int]

    # The model's data, gathered once rather than in every replicate (a frozen dataclass
    # still caches: cached_property writes the instance's __dict__ directly).
    @cached_property
    def x_active(self) -> np.ndarray:
        """Denominator design of the active initiation rows."""
        return self.init_x[self.init_active]

    @cached_property
    def x_num_active(self) -> np.ndarray:
        """Numerator (time-only) design of the active initiation rows."""
        return self.init_x_num[self.init_active]

    @cached_property
    def y_active(self) -> np.ndarray:
        """Whether treatment started, in the active initiation rows."""
        return self.init_y[self.init_active]

    @cached_property
    def patient_active(self) -> np.ndarray:
        """Patient of each active initiation row."""
        return self.init_patient[self.init_active]

    @cached_property
    def first_active(self) -> tuple[np.ndarray, np.ndarray]:
        """The intervals with a start, and the first active row of each."""
        intervals, first = np.unique(self.init_interval[self.init_active], return_index=True)
        return intervals, first


@dataclass(frozen=True)
class RunResult:
    """One run's numbers: risks per strategy and year, curves, hazard ratio, weights."""

    risks: dict[str, dict[int, float | None]]
    curves: dict[str, np.ndarray]  # strategy -> risk at each grid day
    log_hr: float | None
    coef_den: np.ndarray
    coef_num: np.ndarray
    w_raw: np.ndarray  # per clone row, before truncation (the weight the protocol uses)
    w: np.ndarray  # truncated
    cap: float
    p_den: np.ndarray  # per initiation row


def _index_of(keys: pl.DataFrame, lookup: pl.DataFrame) -> np.ndarray:
    """Row number in `lookup` of each (patient, interval) of `keys`, -1 when absent."""
    found = keys.join(
        lookup.with_row_index("__i"), on=["__p", "interval"], how="left", maintain_order="left"
    )
    return found.get_column("__i").fill_null(-1).cast(pl.Int64).to_numpy()


def prepare(clones: pl.DataFrame, assessments: pl.DataFrame, years: tuple[int, ...]) -> Prepared:
    """Arrays and index maps of one outcome's clone rows (build_clones output); the emulation
    itself builds the same arrays without the clone frame (layout.prepare_outcome)."""
    patient_ids = clones.get_column("patient_id").unique(maintain_order=True).to_list()
    code = pl.DataFrame({"patient_id": patient_ids, "__p": np.arange(len(patient_ids))})
    rows = clones.join(code, on="patient_id", maintain_order="left").sort("clone_id", "start")
    init = initiation_rows(clones, assessments).join(code, on="patient_id", maintain_order="left")
    frame = model_frame(init)
    active = active_rows(init.with_row_index("__r")).get_column("__r").to_numpy()
    if active.size == 0:
        raise ModelFitError("nobody started treatment in any interval")
    grid = (
        rows.group_by("interval")
        .agg(pl.col("start").first(), pl.col("stop").max(), pl.col("in_grace").first())
        .sort("interval")
    )
    last_grace = int(grid.filter(pl.col("in_grace")).get_column("interval").max())  # type: ignore[arg-type]
    keys = init.select("__p", "interval")
    row_keys = rows.select("__p", "interval")
    row_init = _index_of(row_keys, keys)
    row_last = _index_of(
        row_keys.with_columns(pl.lit(last_grace, pl.Int32).alias("interval")), keys
    )
    strategy = (rows.get_column("strategy") == "no_treat").cast(pl.Int8).to_numpy()
    clone = rows.get_column("clone_id")
    first_flag = (clone != clone.shift(1)).fill_null(True).to_numpy()
    first = np.maximum.accumulate(np.where(first_flag, np.arange(rows.height), 0))
    last_flag = np.append(first_flag[1:], True)
    deviated = (
        last_flag
        & (rows.get_column("event").to_numpy() == CENSORED)
        & (rows.get_column("stop").to_numpy() < rows.get_column("duration_days").to_numpy())
    )
    return finish_prepare(
        patient_ids=patient_ids,
        rows={
            "patient": rows.get_column("__p").to_numpy(),
            "strategy": strategy,
            "interval": rows.get_column("interval").to_numpy(),
            "start": rows.get_column("start").to_numpy().astype(float),
            "stop": rows.get_column("stop").to_numpy().astype(float),
            "event": rows.get_column("event").to_numpy(),
            "first": first,
            "deviated": deviated,
            "init": row_init,
            "last_grace": np.where(strategy == TREAT, row_last, -1),
        },
        init={
            "patient": init.get_column("__p").to_numpy(),
            "interval": init.get_column("interval").to_numpy(),
            "y": init.get_column("initiated").to_numpy().astype(float),
            "x": frame.to_numpy(),
            "names": list(frame.columns),
            "active": active,
        },
        grid={c: grid.get_column(c).to_numpy() for c in ("start", "stop", "in_grace")},
        years=years,
    )


def finish_prepare(
    *,
    patient_ids: list[str],
    rows: dict[str, np.ndarray],
    init: dict[str, Any],
    grid: dict[str, np.ndarray],
    years: tuple[int, ...],
) -> Prepared:
    """Prepared from the clone rows' arrays (in clone then start order), the initiation rows'
    (`x`: every model column, named by `names`; `active`: rows of intervals with a start) and
    the interval grid: the model's terms, the strategies' time axes and the curve grid."""
    last_grace = int(np.flatnonzero(grid["in_grace"]).max())
    active = init["active"]
    if last_grace not in set(init["interval"][active].tolist()):
        # the treat clones untreated at its start would weigh 1 / 0: nobody stands for them
        raise ModelFitError(
            "nobody started treatment in the grace period's last week, so the clones still "
            "untreated then have nobody to stand for them (a positivity violation)"
        )
    names = init["names"]
    fitted = init["x"][active]
    den_terms = usable_columns(fitted, names, names)
    num_terms = usable_columns(fitted, names, list(TIME_TERMS))
    del fitted
    strategy, start, stop, event = rows["strategy"], rows["start"], rows["stop"], rows["event"]
    last_day = int(stop.max())
    times = np.unique(stop[event > 0])
    axes = tuple(
        Axis.build(mine, start[mine], stop[mine], event[mine], times)
        for mine in (np.flatnonzero(strategy == code) for code in (TREAT, NO_TREAT))
    )
    outcome_rows = np.flatnonzero(event == EVENT)
    curve_days = np.unique(np.concatenate([np.arange(0, last_day + 1, CURVE_STEP), [last_day]]))
    year_days = {y: year_day(y) for y in years}
    columns = {name: k for k, name in enumerate(names)}
    return Prepared(
        n_patients=len(patient_ids),
        patient_ids=patient_ids,
        row_patient=rows["patient"],
        row_strategy=strategy,
        row_interval=rows["interval"],
        row_start=start,
        row_stop=stop,
        row_event=event,
        row_first=rows["first"],
        row_deviated=rows["deviated"],
        row_init=rows["init"],
        row_last_grace=rows["last_grace"],
        init_patient=init["patient"],
        init_interval=init["interval"],
        init_y=init["y"],
        init_x=_with_intercept(init["x"], [columns[t] for t in den_terms]),
        init_x_num=_with_intercept(init["x"], [columns[t] for t in num_terms]),
        den_names=["(Intercept)", *den_terms],
        num_names=["(Intercept)", *num_terms],
        init_active=active,
        n_intervals=grid["start"].size,
        last_grace=last_grace,
        interval_start=grid["start"],
        interval_stop=grid["stop"],
        interval_in_grace=grid["in_grace"],
        last_day=last_day,
        grid=curve_days,
        year_days=year_days,
        times=times,
        axes=axes,  # type: ignore[arg-type]
        outcome_rows=outcome_rows,
        outcome_time=np.searchsorted(times, stop[outcome_rows]),
        grid_pos=np.searchsorted(times, curve_days, side="right"),
        year_pos=[int(np.searchsorted(times, d, side="right")) for d in year_days.values()],
    )


def _with_intercept(x: np.ndarray, columns: list[int]) -> np.ndarray:
    """A column of ones, then the chosen columns of x, filled in place (no stacked copies:
    at a million patients each is 2 GB)."""
    out = np.empty((x.shape[0], len(columns) + 1))
    out[:, 0] = 1.0
    for k, column in enumerate(columns, start=1):
        out[:, k] = x[:, column]
    return out


def fit_glm(y: np.ndarray, x: np.ndarray, freq: np.ndarray, start: np.ndarray | None) -> np.ndarray:
    """Logistic regression coefficients with frequency weights, by Newton's method.

    The same maximum as statsmodels' GLM (weights.fit_logistic, checked against R's glm to
    1e-8; tests compare the two to 1e-9) at a third of its time: one Cholesky-free solve per
    step, and a bootstrap replicate warm-started from the point estimate needs 3-4 steps.
    """
    beta = np.zeros(x.shape[1]) if start is None else start.copy()
    for _ in range(100):
        p = _expit(x @ beta)
        gradient = x.T @ (freq * (y - p))
        hessian = (x * (freq * p * (1.0 - p))[:, None]).T @ x
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError as error:
            raise ModelFitError("the treatment-initiation model is singular") from error
        beta = beta + step
        if not np.all(np.isfinite(beta)):
            break
        if np.max(np.abs(step)) < 1e-11 * max(1.0, float(np.max(np.abs(beta)))):
            return beta
    raise ModelFitError("the treatment-initiation model did not converge")


def _expit(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _cumulative_before(prep: Prepared, factor: np.ndarray) -> np.ndarray:
    """Per clone row: the product of `factor` over the clone's earlier rows."""
    with np.errstate(divide="ignore"):
        log = np.log(factor)
    total = np.cumsum(log)
    before = total - log
    return np.exp(before - before[prep.row_first])


def censoring_factors(prep: Prepared, p: np.ndarray) -> np.ndarray:
    """Each clone row's probability of staying uncensored through its interval."""
    p_row = np.where(prep.row_init >= 0, p[np.maximum(prep.row_init, 0)], 0.0)
    p_last = np.where(prep.row_last_grace >= 0, p[np.maximum(prep.row_last_grace, 0)], 1.0)
    at_last = (prep.row_interval == prep.last_grace) & (prep.row_init >= 0)
    treat = np.where(at_last, p_last, 1.0)
    return np.where(prep.row_strategy == TREAT, treat, 1.0 - p_row)


def marginal_uncensored(prep: Prepared, p_interval: np.ndarray) -> np.ndarray:
    """Per clone row: the time-only model's probability of remaining uncensored to its start."""
    untreated = np.concatenate([[1.0], np.cumprod(1.0 - p_interval)])  # to each interval start
    started_by_grace = 1.0 - untreated[prep.last_grace + 1]
    after_grace = prep.row_interval > prep.last_grace
    treat = np.where(after_grace, started_by_grace, 1.0)
    return np.where(prep.row_strategy == TREAT, treat, untreated[prep.row_interval])


def weighted_percentile(values: np.ndarray, freq: np.ndarray, q: float) -> float:
    """np.percentile (linear) of `values` each repeated `freq` (whole) times."""
    return float(np.percentile(np.repeat(values, freq.astype(np.int64)), q))


def run(prep: Prepared, protocol: Protocol, freq: np.ndarray, start: RunResult | None) -> RunResult:
    """One estimate with per-patient frequency weights (see the module docstring)."""
    act, x, x_num = prep.init_active, prep.x_active, prep.x_num_active
    f_init = freq[prep.patient_active].astype(float)
    y = prep.y_active
    if not 0 < float(f_init @ y) < float(f_init.sum()):
        raise ModelFitError("treatment initiation needs intervals with and without a start")
    coef_den = fit_glm(y, x, f_init, None if start is None else start.coef_den)
    coef_num = fit_glm(y, x_num, f_init, None if start is None else start.coef_num)
    p_den = np.zeros(len(prep.init_y))
    p_den[act] = _expit(x @ coef_den)
    p_interval = np.zeros(prep.n_intervals)
    intervals, first_rows = prep.first_active
    p_interval[intervals] = _expit(x_num[first_rows] @ coef_num)
    w_raw = 1.0 / _cumulative_before(prep, censoring_factors(prep, p_den))
    if protocol.weights == "stabilised":
        w_raw = w_raw * marginal_uncensored(prep, p_interval)
    row_freq = freq[prep.row_patient].astype(float)
    cap = weighted_percentile(w_raw, row_freq, protocol.truncation_percentile)
    w = np.minimum(w_raw, cap)
    wf = w * row_freq
    risks, curves = {}, {}
    sums = {}
    for code, name in enumerate(STRATEGIES):
        at_risk, d1, d2 = prep.axes[code].sums(wf)
        with np.errstate(divide="ignore", invalid="ignore"):
            h1 = np.where(at_risk > 0, d1 / at_risk, 0.0)
            h2 = np.where(at_risk > 0, d2 / at_risk, 0.0)
        survival = np.cumprod(1.0 - h1 - h2)
        cif = np.concatenate([[0.0], np.cumsum(np.concatenate([[1.0], survival[:-1]]) * h1)])
        risks[name] = {
            y: float(cif[pos]) if y_day <= prep.last_day else None
            for (y, y_day), pos in zip(prep.year_days.items(), prep.year_pos, strict=True)
        }
        curves[name] = cif[prep.grid_pos]
        sums[code] = (at_risk, d1)
    ties = np.bincount(
        prep.outcome_time, weights=(row_freq[prep.outcome_rows] > 0), minlength=prep.times.size
    )
    log_hr = cause_specific_log_hr(*sums[TREAT], *sums[NO_TREAT], ties)
    return RunResult(risks, curves, log_hr, coef_den, coef_num, w_raw, w, cap, p_den)


def cause_specific_log_hr(
    r1: np.ndarray, d1: np.ndarray, r0: np.ndarray, d0: np.ndarray, ties: np.ndarray
) -> float | None:
    """log HR (treat vs no_treat) of the outcome, deaths censored: weighted Cox, Efron ties.

    The strategy is the only covariate, so the partial likelihood needs only, at each outcome
    time, the weighted at-risk sum and weighted events of each strategy and the number of tied
    rows: Newton's method runs over event times, not rows (equal to coxph with case weights
    and ties = "efron" on the clone rows; see tests).
    """
    keep = (d1 + d0 > 0) & (ties > 0)
    if d1.sum() <= 0 or d0.sum() <= 0:
        return None
    return _efron_newton(r1[keep], r0[keep], d1[keep], d0[keep], ties[keep].astype(np.int64))


def _efron_newton(
    r1: np.ndarray, r0: np.ndarray, d1: np.ndarray, d0: np.ndarray, m: np.ndarray
) -> float | None:
    """Maximise the Efron partial likelihood of one binary covariate (x = 1: treat)."""
    k_time = np.repeat(np.arange(m.size), m)
    frac = (np.arange(m.sum()) - np.repeat(np.cumsum(m) - m, m)) / np.repeat(m, m)
    mean_w = (d1 + d0) / m
    beta = 0.0
    for _ in range(50):
        e = np.exp(beta)
        num = e * (r1[k_time] - frac * d1[k_time])
        den = r0[k_time] + num - frac * d0[k_time]
        share = num / den
        score = d1.sum() - np.sum(mean_w[k_time] * share)
        info = np.sum(mean_w[k_time] * share * (1.0 - share))
        if info <= 0:
            return None
        step = score / info
        beta += step
        if abs(beta) > 30:  # a hazard ratio beyond e^30: the strategies separate, no estimate
            return None
        if abs(step) < 1e-13 * max(1.0, abs(beta)):
            break
    return float(beta) if np.isfinite(beta) else None
