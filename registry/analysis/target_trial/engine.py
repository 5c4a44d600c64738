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
from typing import Any

import numpy as np
import polars as pl

from registry.analysis.target_trial.clones import STRATEGIES
from registry.analysis.target_trial.glm import expit, fit_glm
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
from registry.time_to_event import CENSORED, COMPETING, EVENT

TREAT, NO_TREAT = 0, 1
INTERCEPT = "(Intercept)"
CURVE_STEP = 14  # days between the points of the published curves


@dataclass(frozen=True)
class Axis:
    """One strategy's clone rows ending with the outcome or death, on the common time axis."""

    outcome_rows: np.ndarray  # clone rows ending with the outcome
    outcome_time: np.ndarray  # their index on the time axis
    death_rows: np.ndarray
    death_time: np.ndarray

    @classmethod
    def build(cls, rows: np.ndarray, stop: np.ndarray, code: np.ndarray, times: np.ndarray) -> Axis:
        outcome, death = np.flatnonzero(code == EVENT), np.flatnonzero(code == COMPETING)
        return cls(
            outcome_rows=narrow(rows[outcome]),
            outcome_time=narrow(np.searchsorted(times, stop[outcome])),
            death_rows=narrow(rows[death]),
            death_time=narrow(np.searchsorted(times, stop[death])),
        )

    def events(self, w_all: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Weighted outcome events and deaths at each of the n event times."""
        d1 = np.bincount(self.outcome_time, weights=w_all[self.outcome_rows], minlength=n)
        d2 = np.bincount(self.death_time, weights=w_all[self.death_rows], minlength=n)
        return d1, d2


def at_risk_sums(prep: Prepared, w_all: np.ndarray) -> np.ndarray:
    """Per strategy (rows: TREAT, NO_TREAT) and event time t, the weight of the clone rows
    with start < t <= stop: the weight stopping at or after t less the weight starting at or
    after t, tails over a few thousand bins rather than tens of millions of rows in sorted
    order. One pass over the rows sums them by strategy and interval (their start); a
    clone's rows stop where their interval does, except its last, so the stops are the
    last rows' (summed by exit day) plus each interval's other rows at its stop."""
    n_stops, n_keys = prep.stop_values.size, 2 * prep.n_intervals
    by_key = np.bincount(prep.row_marginal, weights=w_all, minlength=n_keys)
    w_last = w_all[prep.last_rows]
    others = by_key - np.bincount(prep.last_marginal, weights=w_last, minlength=n_keys)
    stops = np.bincount(prep.last_stop_bin, weights=w_last, minlength=2 * n_stops)
    stops += np.bincount(prep.key_stop_bin, weights=others, minlength=2 * n_stops)
    stop_tail = _tails(stops.reshape(2, n_stops))
    start_tail = _tails(by_key.reshape(2, prep.n_intervals))
    return stop_tail[:, prep.stop_pos] - start_tail[:, prep.start_pos]


def _tails(sums: np.ndarray) -> np.ndarray:
    """Per row of `sums`, the sum of its entries k.. for every k, then a final 0."""
    out = np.zeros((sums.shape[0], sums.shape[1] + 1))
    out[:, :-1] = np.cumsum(sums[:, ::-1], axis=1)[:, ::-1]
    return out


def narrow(index: np.ndarray) -> np.ndarray:
    """Whole numbers as int32 when they fit (row indexes of up to ~2 billion rows)."""
    small = index.size == 0 or (index.min() >= -(2**31) and index.max() < 2**31)
    return index.astype(np.int32 if small else np.int64, copy=False)


@dataclass(frozen=True)
class Prepared:
    """Everything a replicate needs, as arrays over clone rows and initiation rows."""

    n_patients: int
    patient_ids: list[str]
    # clone rows, sorted by clone then start
    row_patient: np.ndarray  # patient index 0..n-1
    row_strategy: np.ndarray  # TREAT / NO_TREAT
    row_interval: np.ndarray
    row_stop: np.ndarray
    row_event: np.ndarray
    row_first: np.ndarray  # index of the clone's first row, per row
    row_deviated: np.ndarray  # the clone's last row, censored because it left its strategy
    row_factor: np.ndarray  # where the row's uncensored factor is: see censoring_factors
    row_marginal: np.ndarray  # strategy * n_intervals + interval: see marginal_uncensored
    last_rows: np.ndarray  # each clone's last row
    last_marginal: np.ndarray  # their row_marginal
    last_stop_bin: np.ndarray  # strategy * len(stop_values) + their stop among stop_values
    key_stop_bin: np.ndarray  # per row_marginal value: the stop bin of its rows but the last
    # initiation model: the rows of intervals in which somebody started (in the others the
    # probability is 0 and the rows would only push coefficients to infinity), by patient id
    # then interval
    init_patient: np.ndarray
    init_interval: np.ndarray
    init_y: np.ndarray
    init_x: np.ndarray  # denominator design, with intercept
    den_names: list[str]
    num_names: list[str]
    init_active: np.ndarray  # every initiation row (0..n-1): all are the model's data
    model_intervals: np.ndarray  # the intervals with a start, ascending
    interval_x_num: np.ndarray  # numerator (time-only) design of those intervals
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
    stop_values: np.ndarray  # the distinct stops of the clone rows, ascending
    stop_pos: np.ndarray  # per event time: the first of stop_values at or after it
    start_pos: np.ndarray  # per event time: the first interval starting at or after it
    outcome_rows: np.ndarray  # clone rows ending with the outcome
    outcome_time: np.ndarray  # their index on the time axis
    grid_pos: np.ndarray  # per grid day: index into the cif (0 = before the first time)
    year_pos: list[int]


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
    p_den: np.ndarray  # per initiation row (prep.init_*)


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
    the interval grid: the model's terms, the strategies' time axes and the curve grid. Only
    the active initiation rows are kept (see `compact_initiation`)."""
    last_grace = int(np.flatnonzero(grid["in_grace"]).max())
    if last_grace not in set(init["interval"][init["active"]].tolist()):
        # the treat clones untreated at its start would weigh 1 / 0: nobody stands for them
        raise ModelFitError(
            "nobody started treatment in the grace period's last week, so the clones still "
            "untreated then have nobody to stand for them (a positivity violation)"
        )
    rows, init = compact_initiation(rows, init)
    names, x = init["names"], init["x"]
    with_intercept = names[0] == INTERCEPT  # (then x is the design itself when all terms are)
    candidates = names[1:] if with_intercept else names
    den_terms = usable_columns(x, names, candidates)
    num_terms = usable_columns(x, names, list(TIME_TERMS))
    strategy, stop, event = rows["strategy"], rows["stop"], rows["event"]
    last_day = int(stop.max())
    times = np.unique(stop[event > 0])
    axes = tuple(
        Axis.build(mine, stop[mine], event[mine], times)
        for mine in (np.flatnonzero(strategy == code) for code in (TREAT, NO_TREAT))
    )
    stop_values, stop_index = _stop_bins(stop)
    n_intervals = grid["start"].size
    marginal = narrow(strategy.astype(np.int32) * n_intervals + rows["interval"])
    outcome_rows = np.flatnonzero(event == EVENT)
    curve_days = np.unique(np.concatenate([np.arange(0, last_day + 1, CURVE_STEP), [last_day]]))
    year_days = {y: year_day(y) for y in years}
    columns = {name: k for k, name in enumerate(names)}
    model_intervals, first = np.unique(init["interval"], return_index=True)
    return Prepared(
        n_patients=len(patient_ids),
        patient_ids=patient_ids,
        row_patient=narrow(rows["patient"]),
        row_strategy=strategy,
        row_interval=narrow(rows["interval"]),
        row_stop=stop,
        row_event=event,
        row_first=narrow(rows["first"]),
        row_deviated=rows["deviated"],
        row_factor=_factor_index(rows, init["y"].size, last_grace),
        row_marginal=marginal,
        **_stop_maps(
            rows["first"], marginal, strategy, stop_index, stop_values.size, 2 * n_intervals
        ),
        init_patient=narrow(init["patient"]),
        init_interval=narrow(init["interval"]),
        init_y=init["y"],
        init_x=x
        if with_intercept and den_terms == candidates
        else _with_intercept(x, [columns[t] for t in den_terms]),
        den_names=[INTERCEPT, *den_terms],
        num_names=[INTERCEPT, *num_terms],
        init_active=np.arange(init["y"].size),
        model_intervals=model_intervals,
        interval_x_num=_with_intercept(x[first], [columns[t] for t in num_terms]),
        n_intervals=n_intervals,
        last_grace=last_grace,
        interval_start=grid["start"],
        interval_stop=grid["stop"],
        interval_in_grace=grid["in_grace"],
        last_day=last_day,
        grid=curve_days,
        year_days=year_days,
        times=times,
        axes=axes,  # type: ignore[arg-type]
        stop_values=stop_values,
        stop_pos=np.searchsorted(stop_values, times, side="left"),
        start_pos=np.searchsorted(grid["start"], times, side="left"),
        outcome_rows=narrow(outcome_rows),
        outcome_time=narrow(np.searchsorted(times, stop[outcome_rows])),
        grid_pos=np.searchsorted(times, curve_days, side="right"),
        year_pos=[int(np.searchsorted(times, d, side="right")) for d in year_days.values()],
    )


def _stop_maps(
    first: np.ndarray, marginal: np.ndarray, strategy: np.ndarray, stop_index: np.ndarray,
    n_stops: int, n_keys: int,
) -> dict[str, np.ndarray]:  # fmt: skip
    """at_risk_sums' maps: each clone's last row, its key and stop bin, and per key the stop
    bin of the key's other rows (0 for a key with none: its weight there is 0)."""
    is_last = np.append(first[1:] != first[:-1], True)
    last = np.flatnonzero(is_last)
    bins = strategy.astype(np.int32) * n_stops + stop_index
    key_stop_bin = np.zeros(n_keys, dtype=np.int32)
    others = np.flatnonzero(~is_last)
    key_stop_bin[marginal[others]] = bins[others]
    return {"last_rows": narrow(last), "last_marginal": marginal[last],
            "last_stop_bin": narrow(bins[last]), "key_stop_bin": key_stop_bin}  # fmt: skip


def _stop_bins(stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bins of the rows' stops and each row's bin: every whole day from 0 when the stops
    are whole days (always: follow-up is counted in days; no sort of tens of millions of
    rows), else the distinct stops."""
    whole = np.issubdtype(stop.dtype, np.integer) or np.array_equal(stop, np.floor(stop))
    if stop.size and stop.min() >= 0 and stop.max() < 2**16 and whole:
        return np.arange(int(stop.max()) + 1, dtype=float), stop.astype(np.int32)
    values, index = np.unique(stop, return_inverse=True)
    return values, index


def compact_initiation(
    rows: dict[str, np.ndarray], init: dict[str, Any]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The initiation rows of the active intervals only, the clone rows' `init` and
    `last_grace` maps renumbered (-1 where the row was dropped: its probability is 0, the
    clone's factor 1). At a million patients this drops ~11 of ~21 million rows of the
    design before any copy of it is made."""
    active, n = init["active"], init["y"].size
    if active.size == n:
        return rows, init
    renumber = np.full(n + 1, -1, dtype=np.int64)  # index -1 reads the last: -1
    renumber[active] = np.arange(active.size)
    rows = rows | {key: renumber[rows[key]] for key in ("init", "last_grace")}
    kept = {key: init[key][active] for key in ("patient", "interval", "y", "x") if key in init}
    return rows, init | kept | {"active": np.arange(active.size)}


def _factor_index(rows: dict[str, np.ndarray], n_init: int, last_grace: int) -> np.ndarray:
    """Per clone row, where its uncensored factor sits in [1 - p, p, 1] (run builds that array
    of 2 n + 1 values from the n initiation rows' p): `no_treat` rows 1 - p of their initiation
    row, `treat` rows p in the grace period's last interval (the row's own initiation row is
    that interval's), every other row 1 (no initiation row: already treated, or an interval
    nobody started in)."""
    init, last = rows["init"], rows["last_grace"]
    treat = rows["strategy"] == TREAT
    at_last = treat & (rows["interval"] == last_grace) & (init >= 0)
    index = np.where(treat, np.where(at_last, n_init + last, 2 * n_init), init)
    return narrow(np.where(~treat & (init < 0), 2 * n_init, index))


def _with_intercept(x: np.ndarray, columns: list[int]) -> np.ndarray:
    """A column of ones, then the chosen columns of x, filled in place (no stacked copies:
    at a million patients each is 2 GB)."""
    out = np.empty((x.shape[0], len(columns) + 1))
    out[:, 0] = 1.0
    for k, column in enumerate(columns, start=1):
        out[:, k] = x[:, column]
    return out


def censoring_factors(prep: Prepared, p: np.ndarray) -> np.ndarray:
    """Each clone row's probability of staying uncensored through its interval (p: per
    initiation row): 1 - p for `no_treat`, p of the grace period's last interval for `treat`
    (Maringe et al. 2020), 1 for rows without a risk of deviating."""
    return np.concatenate([1.0 - p, p, [1.0]])[prep.row_factor]


def _uncensored_before(prep: Prepared, p: np.ndarray) -> np.ndarray:
    """Per clone row: the product of its factors over the clone's earlier rows (in logs: a
    running sum over all rows, less the clone's own start)."""
    with np.errstate(divide="ignore"):
        log = np.log(np.concatenate([1.0 - p, p, [1.0]]))[prep.row_factor]
    before = np.cumsum(log)
    before -= log
    del log
    before -= before[prep.row_first]
    return np.exp(before, out=before)


def marginal_uncensored(prep: Prepared, p_interval: np.ndarray) -> np.ndarray:
    """Per clone row: the time-only model's probability of remaining uncensored to its start."""
    untreated = np.concatenate([[1.0], np.cumprod(1.0 - p_interval)])  # to each interval start
    started_by_grace = 1.0 - untreated[prep.last_grace + 1]
    after_grace = np.arange(prep.n_intervals) > prep.last_grace
    treat = np.where(after_grace, started_by_grace, 1.0)
    table = np.empty(2 * prep.n_intervals)
    table[TREAT * prep.n_intervals : (TREAT + 1) * prep.n_intervals] = treat
    table[NO_TREAT * prep.n_intervals : (NO_TREAT + 1) * prep.n_intervals] = untreated[:-1]
    return table[prep.row_marginal]


def weighted_percentile(values: np.ndarray, freq: np.ndarray, q: float) -> float:
    """np.percentile (linear) of `values` each repeated `freq` (whole) times; the 100th is the
    largest value repeated at least once, without the repeated copy (tens of millions of rows
    in a replicate at a million patients)."""
    if q >= 100:
        return float(np.max(values, where=freq > 0, initial=-np.inf))
    return float(np.percentile(np.repeat(values, freq.astype(np.int64)), q))


def _drawn(
    y: np.ndarray, x: np.ndarray, freq: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows with a positive frequency (a bootstrap replicate draws ~63 % of patients: the
    others add nothing to the fit but time)."""
    keep = np.flatnonzero(freq > 0)
    if keep.size == freq.size:
        return y, x, freq
    return y[keep], x[keep], freq[keep]


GUESS_ROWS = 250_000  # a point fit on more rows than this starts from a subsample's fit


def first_guess(y: np.ndarray, x: np.ndarray, freq: np.ndarray) -> np.ndarray | None:
    """Newton's start for a point fit on many rows: the fit on every k-th row (~250,000 of
    them), so that most steps run on a fraction of the rows; the steps on all rows then
    converge to the same maximum (to the fit's tolerance). None (start from zero) when the
    rows are few or the subsample's fit fails."""
    k = y.size // GUESS_ROWS
    if k < 2:
        return None
    try:
        return fit_glm(y[::k], x[::k], freq[::k], None)
    except ModelFitError:
        return None


def interval_totals(
    prep: Prepared, f_init: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The numerator model's data by interval (its design depends on the interval only):
    the share who started, the interval's design row and the number at risk as the weight
    (the same likelihood as one row per patient and interval, on a few dozen rows)."""
    at_risk = np.bincount(prep.init_interval, weights=f_init, minlength=prep.n_intervals)
    started = np.bincount(
        prep.init_interval, weights=f_init * prep.init_y, minlength=prep.n_intervals
    )
    n, e = at_risk[prep.model_intervals], started[prep.model_intervals]
    share = np.divide(e, n, out=np.zeros_like(e), where=n > 0)
    return share, prep.interval_x_num, n


def run(prep: Prepared, protocol: Protocol, freq: np.ndarray, start: RunResult | None) -> RunResult:
    """One estimate with per-patient frequency weights (see the module docstring)."""
    x, y = prep.init_x, prep.init_y
    freq = freq.astype(float)  # (per patient: the gathers below then copy no integers)
    f_init = freq[prep.init_patient]
    if not 0 < float(f_init @ y) < float(f_init.sum()):
        raise ModelFitError("treatment initiation needs intervals with and without a start")
    drawn = _drawn(y, x, f_init)
    coef_den = fit_glm(*drawn, start.coef_den if start is not None else first_guess(*drawn))
    coef_num = fit_glm(*interval_totals(prep, f_init), None if start is None else start.coef_num)
    p_den = expit(x @ coef_den)
    p_interval = np.zeros(prep.n_intervals)
    p_interval[prep.model_intervals] = expit(prep.interval_x_num @ coef_num)
    w_raw = 1.0 / _uncensored_before(prep, p_den)
    if protocol.weights == "stabilised":
        w_raw *= marginal_uncensored(prep, p_interval)
    row_freq = freq[prep.row_patient]
    cap = weighted_percentile(w_raw, row_freq, protocol.truncation_percentile)
    w = np.minimum(w_raw, cap)
    wf = w * row_freq
    risks, curves = {}, {}
    sums = {}
    at_risk_all = at_risk_sums(prep, wf)
    for code, name in enumerate(STRATEGIES):
        at_risk = at_risk_all[code]
        d1, d2 = prep.axes[code].events(wf, prep.times.size)
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
