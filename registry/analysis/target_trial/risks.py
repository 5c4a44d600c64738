"""Weighted Aalen–Johansen cumulative incidence of the outcome, death competing, per strategy.

Each clone row (start, stop] carries the weight of its interval, so a clone's weight in a
risk set is the one of the interval holding that time. Censoring at a time counts after the
events of that time (as R's survfit does).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from registry.analysis.target_trial import NotEstimable
from registry.constants import DAYS_PER_YEAR
from registry.time_to_event import COMPETING, EVENT

YEARS = (1, 2, 5)


def weighted_at_risk(
    start: np.ndarray, stop: np.ndarray, w: np.ndarray, times: np.ndarray
) -> np.ndarray:
    """Sum of the weights of rows with start < t <= stop, for each t (two sorted sums)."""
    return _weight_at_or_after(stop, w, times) - _weight_at_or_after(start, w, times)


def _weight_at_or_after(day: np.ndarray, w: np.ndarray, times: np.ndarray) -> np.ndarray:
    order = np.argsort(day, kind="stable")
    tail = np.concatenate([np.cumsum(w[order][::-1])[::-1], [0.0]])
    return tail[np.searchsorted(day[order], times, side="left")]


def weighted_events(
    stop: np.ndarray, code: np.ndarray, w: np.ndarray, times: np.ndarray, kind: int
) -> np.ndarray:
    """Sum of the weights of the rows ending with event `kind` at each time."""
    hit = code == kind
    index = np.searchsorted(times, stop[hit])
    return np.bincount(index, weights=w[hit], minlength=len(times))


def aalen_johansen_arrays(
    start: np.ndarray, stop: np.ndarray, code: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, ...]:
    """times, weighted at-risk, cif (outcome), cif_death, survival at each event time."""
    times = np.unique(stop[code > 0])
    at_risk = weighted_at_risk(start, stop, w, times)
    d1 = weighted_events(stop, code, w, times, EVENT)
    d2 = weighted_events(stop, code, w, times, COMPETING)
    with np.errstate(divide="ignore", invalid="ignore"):  # a time whose rows all weigh 0
        hazard1 = np.where(at_risk > 0, d1 / at_risk, 0.0)
        hazard2 = np.where(at_risk > 0, d2 / at_risk, 0.0)
    survival = np.cumprod(1.0 - hazard1 - hazard2)
    before = np.concatenate([[1.0], survival[:-1]])
    return times, at_risk, np.cumsum(before * hazard1), np.cumsum(before * hazard2), survival


def aalen_johansen(rows: pl.DataFrame, weight: str) -> pl.DataFrame:
    """time, at_risk (weighted), cif (outcome), cif_death, survival at each event time."""
    start, stop = (rows.get_column(c).to_numpy().astype(float) for c in ("start", "stop"))
    code, w = rows.get_column("event").to_numpy(), rows.get_column(weight).to_numpy()
    names = ("time", "at_risk", "cif", "cif_death", "survival")
    return pl.DataFrame(dict(zip(names, aalen_johansen_arrays(start, stop, code, w), strict=True)))


def year_day(year: int) -> int:
    """The day a whole year ends on, as the rest of the analysis rounds it (5 -> 1826)."""
    return round(year * DAYS_PER_YEAR)


def risk_at(curve: pl.DataFrame, day: float, last_day: float) -> float | None:
    """The curve's value at a day (0 before the first event), None beyond follow-up."""
    if last_day < day:
        return None
    reached = curve.filter(pl.col("time") <= day)
    return float(reached.get_column("cif")[-1]) if reached.height else 0.0


def strategy_risks(rows: pl.DataFrame, weight: str) -> tuple[pl.DataFrame, dict[int, float | None]]:
    """One strategy's curve and its risks at 1, 2 and 5 years."""
    curve = aalen_johansen(rows, weight)
    last = float(rows.get_column("stop").max())  # type: ignore[arg-type]
    return curve, {y: risk_at(curve, year_day(y), last) for y in YEARS}


def contrasts(treat: dict[int, float | None], no_treat: dict[int, float | None]) -> pl.DataFrame:
    """year, risk of each strategy, risk difference and ratio (treat vs no_treat)."""
    rows = []
    for year in YEARS:
        a, b = treat[year], no_treat[year]
        rd = a - b if a is not None and b is not None else None
        rr = a / b if a is not None and b else None
        rows.append({"year": year, "treat": a, "no_treat": b, "rd": rd, "rr": rr})
    return pl.DataFrame(
        rows, schema={k: pl.Float64 for k in ("treat", "no_treat", "rd", "rr")} | {"year": pl.Int64}
    )


def target_trial_risks(
    weighted: pl.DataFrame, *, weight: str = "sw"
) -> tuple[pl.DataFrame, pl.DataFrame] | NotEstimable:
    """Curves (strategy, time, ...) and the risk table of both strategies, or why not."""
    curves, risks = [], {}
    for strategy in ("treat", "no_treat"):
        rows = weighted.filter(pl.col("strategy") == strategy)
        if rows.filter(pl.col("event") > 0).is_empty():
            return NotEstimable(f"no outcome or death among the {strategy} clones")
        curve, risks[strategy] = strategy_risks(rows, weight)
        curves.append(curve.with_columns(pl.lit(strategy).alias("strategy")))
    return pl.concat(curves), contrasts(risks["treat"], risks["no_treat"])
