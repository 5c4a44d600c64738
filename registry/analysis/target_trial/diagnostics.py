"""Diagnostics of the clone–censor–weight estimate: weights, deviations, balance, positivity.

* weights: per strategy and interval, the censoring weights of the clone rows before
  truncation (mean, SD, min, 99th percentile, max), and what truncation capped;
* censored: per strategy and interval, the clones followed at its start and those censored in
  it because their patient left the strategy;
* balance: among the clones still followed at the end of the grace period, the standardised
  mean difference between the strategies of every term of the initiation model (baseline
  covariates, and the latest VAS and ODI at the start of the first grace-period interval in
  which anybody started: the history the decision starts from), unweighted and weighted;
  both use the unweighted pooled SD, so the two columns share a scale;
* positivity: each patient's modelled probability of starting within the grace period, from
  the history at the first interval in which anybody started (the decision's start).
Warnings are sentences without counts (they are published as they are).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from registry.analysis.target_trial.engine import TREAT, Prepared, RunResult
from registry.analysis.target_trial.protocol import Protocol
from registry.analysis.target_trial.result import truncation
from registry.analysis.target_trial.risks import year_day
from registry.analysis.target_trial.weights import TIME_TERMS

SMD_LIMIT = 0.1  # |SMD| above this after weighting: imbalance
POSITIVITY_SHARE = 0.9  # fewer patients than this share within the bounds: a warning
WEIGHT_LIMIT = 20.0  # a weight above this before truncation: a warning


def diagnostics(prep: Prepared, protocol: Protocol, point: RunResult) -> dict[str, Any]:
    """The diagnostics block of one outcome (see the module docstring)."""
    weights = weight_summary(prep, point)
    balance = balance_table(prep, point)
    positivity = positivity_summary(prep, point, protocol.positivity_bounds)
    capped = float(np.mean(point.w_raw > point.cap))
    return {
        "weights": weights,
        "truncation": {
            "percentile": protocol.truncation_percentile,
            "cap": point.cap,
            "share_capped": capped,
        },
        "censored": deviation_table(prep),
        "balance": balance,
        "positivity": positivity,
        "warnings": warnings_for(balance, positivity, float(point.w_raw.max()), protocol),
    }


def _by_strategy_and_interval(prep: Prepared, **columns: np.ndarray) -> pl.DataFrame:
    """Clone rows keyed by strategy code (TREAT first, as "treat" sorts after "no_treat")
    and interval: grouping on small integers, names attached to the groups only (a string
    per row cost seconds at a million patients)."""
    return pl.DataFrame({"code": prep.row_strategy, "interval": prep.row_interval, **columns})


def _named(table: pl.DataFrame, prep: Prepared) -> pl.DataFrame:
    """Groups sorted treat first then by interval, with the strategy's name, start and stop."""
    table = table.sort("code", "interval")
    intervals = table.get_column("interval").to_numpy()
    return table.with_columns(
        pl.Series("strategy", np.where(table.get_column("code").to_numpy() == TREAT,
                                       "treat", "no_treat")),
        pl.Series("start", prep.interval_start[intervals]),
        pl.Series("stop", prep.interval_stop[intervals]),
    )  # fmt: skip


def weight_summary(prep: Prepared, point: RunResult) -> list[dict[str, Any]]:
    """Per strategy and interval: the weights before truncation."""
    table = (
        _by_strategy_and_interval(prep, w_raw=point.w_raw)
        .group_by("code", "interval")
        .agg(
            pl.col("w_raw").mean().alias("mean"),
            pl.col("w_raw").std().fill_null(0.0).alias("sd"),
            pl.col("w_raw").min().alias("min"),
            pl.col("w_raw").quantile(0.99, "linear").alias("p99"),
            pl.col("w_raw").max().alias("max"),
        )
    )
    named = _named(table, prep)
    return named.select("strategy", "interval", "start", "stop", "mean", "sd", "min", "p99",
                        "max").to_dicts()  # fmt: skip


def deviation_table(prep: Prepared) -> list[dict[str, Any]]:
    """Per strategy and period: clones followed at its start, and censored for deviating.

    Periods are the grace period's weeks, then whole years of follow-up (the 4-weekly
    intervals after the grace period grouped by the year their start falls in): every
    published count is a cell of the small-count solver, and yearly rows after the grace
    period keep what a reader needs (when deviations happen) without a count per 4 weeks."""
    table = _named(
        _by_strategy_and_interval(prep, deviated=prep.row_deviated)
        .group_by("code", "interval")
        .agg(pl.len().alias("at_risk"), pl.col("deviated").sum().alias("censored")),
        prep,
    )
    starts, stops = prep.interval_start, prep.interval_stop
    years = np.array([year_day(y) for y in range(1, 101)])
    period = {
        k: k if k <= prep.last_grace else prep.last_grace + 1 + int(np.sum(years <= starts[k]))
        for k in range(prep.n_intervals)
    }
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for row in table.sort("interval").iter_rows(named=True):
        k = row["interval"]
        key = (row["strategy"], period[k])
        if key not in rows:  # the period's first interval: its clones at risk
            rows[key] = {
                "strategy": row["strategy"],
                "interval": k,
                "start": int(starts[k]),
                "stop": int(stops[k]),
                "at_risk": int(row["at_risk"]),
                "censored": 0,
            }
        rows[key]["stop"] = max(rows[key]["stop"], int(stops[k]))
        rows[key]["censored"] += int(row["censored"])
    order = {"treat": 0, "no_treat": 1}
    return sorted(rows.values(), key=lambda r: (order[r["strategy"]], r["interval"]))


def _covariate_columns(prep: Prepared) -> list[int]:
    return [k for k, name in enumerate(prep.den_names) if k and name not in TIME_TERMS]


def decision_rows(prep: Prepared) -> np.ndarray:
    """Per patient: the initiation row of the first interval of the grace period in which
    anybody started (the history the decision starts from), -1 when the patient has none."""
    active = np.unique(prep.init_interval[prep.init_active])
    first = active[active <= prep.last_grace]
    rows = np.full(prep.n_patients, -1)
    if first.size == 0:
        return rows
    at = np.flatnonzero(prep.init_interval == first[0])
    rows[prep.init_patient[at]] = at
    return rows


def balance_table(prep: Prepared, point: RunResult) -> list[dict[str, Any]]:
    """SMD of each model term between strategies among clones followed past the grace period."""
    followed = np.flatnonzero(prep.row_interval == prep.last_grace + 1)
    if followed.size == 0:
        return []
    decision = decision_rows(prep)[prep.row_patient[followed]]
    keep = decision >= 0
    followed, decision = followed[keep], decision[keep]
    treat = prep.row_strategy[followed] == TREAT
    w = point.w[followed]
    table = []
    for k in _covariate_columns(prep):
        x = prep.init_x[decision, k]
        table.append(
            {
                "covariate": prep.den_names[k],
                "smd_unweighted": _smd(x, treat, np.ones_like(w)),
                "smd_weighted": _smd(x, treat, w),
            }
        )
    return table


def _smd(x: np.ndarray, treat: np.ndarray, w: np.ndarray) -> float | None:
    """Weighted mean difference over the unweighted pooled SD (None if a group is empty)."""
    a, b = treat, ~treat
    if not a.any() or not b.any() or w[a].sum() <= 0 or w[b].sum() <= 0:
        return None
    pooled = np.sqrt((np.var(x[a]) + np.var(x[b])) / 2.0)
    diff = np.average(x[a], weights=w[a]) - np.average(x[b], weights=w[b])
    if pooled == 0:
        return 0.0 if diff == 0 else None
    return float(diff / pooled)


def positivity_summary(
    prep: Prepared, point: RunResult, bounds: tuple[float, float]
) -> dict[str, Any]:
    """Share of patients whose modelled probability of starting in the grace period is within
    the bounds, with its range."""
    active = np.unique(prep.init_interval[prep.init_active])
    grace = active[active <= prep.last_grace]
    rows = decision_rows(prep)
    rows = rows[rows >= 0]
    if rows.size == 0:
        return {"bounds": list(bounds), "share_within": None, "min": None, "max": None}
    x = prep.init_x[rows].copy()
    names = prep.den_names
    untreated = np.ones(rows.size)
    for k in grace:
        if "weeks" in names:
            x[:, names.index("weeks")] = prep.interval_start[k] / 7.0
        if "after_grace" in names:
            x[:, names.index("after_grace")] = 0.0
        untreated *= 1.0 - 1.0 / (1.0 + np.exp(-(x @ point.coef_den)))
    p = 1.0 - untreated
    low, high = bounds
    return {
        "bounds": list(bounds),
        "share_within": float(np.mean((p >= low) & (p <= high))),
        "min": float(p.min()),
        "max": float(p.max()),
    }


def warnings_for(
    balance: list[dict[str, Any]],
    positivity: dict[str, Any],
    largest_weight: float,
    protocol: Protocol,
) -> list[str]:
    """Plain sentences for every diagnostic out of bounds."""
    found = []
    share = positivity["share_within"]
    low, high = protocol.positivity_bounds
    if share is not None and share < POSITIVITY_SHARE:
        found.append(
            f"Positivity: fewer than {POSITIVITY_SHARE:.0%} of patients have a modelled "
            f"probability of vertebroplasty within the grace period between {low:g} and {high:g}; "
            "the strategies are compared where few patients could have followed both."
        )
    unbalanced = [
        row["covariate"]
        for row in balance
        if row["smd_weighted"] is not None and abs(row["smd_weighted"]) > SMD_LIMIT
    ]
    if unbalanced:
        found.append(
            f"Balance: after weighting, {', '.join(unbalanced)} still differ by more than "
            f"{SMD_LIMIT:g} standard deviations between the strategies at the end of the grace "
            "period; the initiation model may miss a confounder's form."
        )
    if largest_weight > WEIGHT_LIMIT:
        found.append(
            f"Weights: some censoring weights exceed {WEIGHT_LIMIT:g} before truncation "
            f"(the protocol's weights are {truncation(protocol)}); a few clones carry much "
            "weight and the intervals are wide."
        )
    return found
