"""Patient-reported outcomes: pain (VAS 0-10) and disability (ODI 0-100 %) before and after.

Each patient has an anchor: the first vertebroplasty for the treated, t0 (the first index
diagnosis) for the untreated. Visits are picked per patient and instrument, by day since
the anchor:

* baseline: the last assessment on or before the anchor day. The untreated have no
  procedure to wait for and their baseline visit happens during the first week after t0,
  so for them the limit is anchor + 7 days (UNTREATED_BASELINE_DAYS).
* 1 month: the assessment closest to day 30 within days 21-45; 6 months: closest to day 180
  within 150-210; 12 months: closest to day 365 within 330-400. Ties: the earlier one.
  All windows count from the anchor, so an untreated patient whose clinic counts the month
  from a day-5 baseline visit and comes on day 50 has no 1-month score (about 15% of the
  untreated in the synthetic cohort).

The before/after comparison pairs baseline with the 1-month visit (change = follow-up minus
baseline, so improvement is negative) and reports the paired t test and the Wilcoxon signed-
rank test as R's wilcox.test(follow_up, baseline, paired = TRUE) with its defaults (R 4.2,
tests/reference/pro_wilcoxon_reference.R): zero changes are dropped; with fewer than 50
non-zero changes and neither ties nor zeros the p-value is exact; otherwise it is the normal
approximation with the tie-corrected variance and a continuity correction of 0.5. (scipy's
defaults differ -- no continuity correction, and exact with ties or zeros -- and gave 0.0039
where R gives 0.0091 on datasets::sleep.)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

INSTRUMENTS = ("VAS", "ODI")
ARMS = ("treated", "untreated")
UNTREATED_BASELINE_DAYS = 7
# visit -> (first day, last day, target day) after the anchor
WINDOWS = {"1 month": (21, 45, 30), "6 months": (150, 210, 180), "12 months": (330, 400, 365)}
VISITS = ("baseline", *WINDOWS)
KEY = ["patient_id", "instrument"]


def pick_visits(assessments: pl.DataFrame, anchors: pl.DataFrame) -> pl.DataFrame:
    """One row per patient, instrument and visit: the assessment chosen for that visit."""
    # Integer keys (patient rank, instrument code, visit code, preference) make this one
    # sort of small integers instead of several sorts of millions of strings; their order is
    # the strings' order, so rows come out by patient, instrument and day as before.
    ranked = anchors.with_columns(pl.col("patient_id").rank("dense").alias("_patient"))
    days = assessments.join(ranked, on="patient_id", how="inner").with_columns(
        (pl.col("assessed_on").cast(pl.Date) - pl.col("anchor_on").cast(pl.Date))
        .dt.total_days()
        .alias("day"),
        pl.col("score").cast(pl.Float64),
    )
    instruments = pl.Enum(days.get_column("instrument").unique().sort())
    keys = ["_patient", "_instrument", "_visit"]
    candidates = (
        days.with_columns(
            pl.col("instrument").cast(instruments).to_physical().alias("_instrument"),
            *_visit_and_preference(),
        )
        .filter(pl.col("_visit").is_not_null())
        .sort([*keys, "_preference"])
    )
    first = pl.any_horizontal(pl.col(k) != pl.col(k).shift(1) for k in keys).fill_null(True)
    visit = pl.col("_visit").replace_strict(range(len(VISITS)), VISITS, return_dtype=pl.String)
    return candidates.filter(first).select(
        "patient_id", "arm", "instrument", visit.alias("visit"), "day", "score"
    )


def window_parameters() -> dict[str, int]:
    """The visit windows as the parameters of sql/queries/analysis/pro_visits.sql."""
    found = {"untreated_baseline_days": UNTREATED_BASELINE_DAYS}
    for k, (first, last, aim) in enumerate(WINDOWS.values(), start=1):
        found |= {f"first_{k}": first, f"last_{k}": last, f"aim_{k}": aim}
    return found


def visit_labels(picked: pl.DataFrame) -> pl.DataFrame:
    """Rows of pro_visits.sql as pick_visits returns them (visit codes as VISITS' names)."""
    return picked.select("patient_id", "arm", "instrument", visit_label(), "day", "score")


def visit_label() -> pl.Expr:
    """`visit`: the visit code (0 baseline, 1-3 WINDOWS) as VISITS' name."""
    visit = pl.col("visit_code").replace_strict(range(len(VISITS)), VISITS, return_dtype=pl.String)
    return visit.alias("visit")


def _visit_and_preference() -> tuple[pl.Expr, pl.Expr]:
    """Each assessment's visit (index into VISITS; null: none) and its preference (lower wins).

    Baseline: the last assessment on or before the anchor (anchor + 7 days for the
    untreated). Windows: the one closest to the target day, the earlier one on ties.
    """
    day = pl.col("day")
    limit = pl.when(pl.col("arm") == "untreated").then(UNTREATED_BASELINE_DAYS).otherwise(0)
    visit: Any = pl.when(day <= limit).then(0)  # a when/then chain, grown per window
    preference: Any = pl.when(day <= limit).then(limit - day)
    for code, (first, last, aim) in enumerate(WINDOWS.values(), start=1):
        inside = day.is_between(first, last)
        visit = visit.when(inside).then(code)
        # distance to the target first, then the day itself (window days are below 2048)
        preference = preference.when(inside).then((day - aim).abs() * 2048 + day)
    return visit.alias("_visit"), preference.alias("_preference")


def _grid(*extra: tuple[str, tuple[str, ...]]) -> pl.DataFrame:
    """Every instrument x arm (x extra) combination, in a fixed order."""
    grid = pl.DataFrame({"instrument": INSTRUMENTS}).join(pl.DataFrame({"arm": ARMS}), how="cross")
    for name, values in extra:
        grid = grid.join(pl.DataFrame({name: values}), how="cross")
    return grid


def trajectories(visits: pl.DataFrame) -> pl.DataFrame:
    """Mean, SD and n per instrument, arm and visit (every combination, n = 0 if none)."""
    summary = visits.group_by(["instrument", "arm", "visit"]).agg(
        pl.len().cast(pl.Int64).alias("n"),
        pl.col("score").mean().alias("mean"),
        pl.col("score").std().alias("sd"),
    )
    return trajectory_grid(summary)


def trajectory_grid(summary: pl.DataFrame) -> pl.DataFrame:
    """Every instrument, arm and visit with its n, mean and SD from `summary` (n = 0 if
    none): shared by the Polars path and sql/queries/analysis/pro_visit_summary.sql's."""
    summary = summary.select("instrument", "arm", "visit", "n", "mean", "sd")
    return (
        _grid(("visit", VISITS))
        .join(summary, on=["instrument", "arm", "visit"], how="left")
        .with_columns(pl.col("n").fill_null(0))
    )


def paired_changes(visits: pl.DataFrame) -> pl.DataFrame:
    """Patients with both a baseline and a 1-month score: baseline, follow_up and change."""
    baseline = visits.filter(pl.col("visit") == "baseline").select(
        *KEY, "arm", pl.col("score").alias("baseline")
    )
    follow_up = visits.filter(pl.col("visit") == "1 month").select(
        *KEY, pl.col("score").alias("follow_up")
    )
    return baseline.join(follow_up, on=KEY, how="inner").with_columns(
        (pl.col("follow_up") - pl.col("baseline")).alias("change")
    )


def before_after(visits: pl.DataFrame) -> pl.DataFrame:
    """Per instrument and arm: n, baseline and 1-month mean/SD, paired change, t and Wilcoxon p."""
    pairs = paired_changes(visits)
    moments = pairs.group_by(["instrument", "arm"]).agg(*pair_moments())
    return change_table(moments, _wilcoxon_p(pairs))


def pair_moments() -> list[pl.Expr]:
    """n and the means and SDs of baseline, follow_up and change (change = follow_up -
    baseline), as aggregations: over a group_by, or a select on one group's pairs."""
    return [
        pl.len().cast(pl.Int64).alias("n"),
        pl.col("baseline").mean().alias("baseline_mean"),
        pl.col("baseline").std().alias("baseline_sd"),
        pl.col("follow_up").mean().alias("follow_up_mean"),
        pl.col("follow_up").std().alias("follow_up_sd"),
        pl.col("change").mean().alias("change_mean"),
        pl.col("change").std().alias("change_sd"),
    ]


def change_table(moments: pl.DataFrame, wilcoxon: pl.DataFrame) -> pl.DataFrame:
    """Every instrument and arm with its paired moments (n = 0 if none), t-based CI and p,
    and Wilcoxon p (instrument, arm, wilcoxon_p): shared by the Polars path and
    sql/queries/analysis/pro_pairs.sql's."""
    table = (
        _grid()
        .join(moments, on=["instrument", "arm"], how="left")
        .with_columns(pl.col("n").fill_null(0))
    )
    return _with_t_statistics(table).join(wilcoxon, on=["instrument", "arm"], how="left")


def _with_t_statistics(table: pl.DataFrame) -> pl.DataFrame:
    """Add the t-based 95% CI of the mean change and the paired t-test p (null if n < 2)."""
    n = table["n"].to_numpy().astype(float)
    mean = table["change_mean"].fill_null(np.nan).to_numpy()
    sd = table["change_sd"].fill_null(np.nan).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        se = sd / np.sqrt(n)
        df = np.where(n > 1, n - 1, np.nan)
        half = stats.t.ppf(0.975, df) * se
        p = 2 * stats.t.sf(np.abs(mean / se), df)
    columns = {"change_lower": mean - half, "change_upper": mean + half, "t_p": p}
    return table.with_columns(
        pl.Series(name, values).fill_nan(None) for name, values in columns.items()
    )


def _wilcoxon_p(pairs: pl.DataFrame) -> pl.DataFrame:
    """Wilcoxon signed-rank p per instrument and arm (null when no change is non-zero)."""
    changes = {
        (part["instrument"][0], part["arm"][0]): part["change"].to_numpy()
        for part in pairs.partition_by(["instrument", "arm"])
    }
    return wilcoxon_table(changes)


def wilcoxon_table(changes: dict[tuple[str, str], np.ndarray]) -> pl.DataFrame:
    """instrument, arm, wilcoxon_p of the paired changes of each (instrument, arm)."""
    rows = [
        {"instrument": instrument, "arm": arm, "wilcoxon_p": _wilcoxon(change)}
        for (instrument, arm), change in changes.items()
    ]
    schema = {"instrument": pl.String, "arm": pl.String, "wilcoxon_p": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


def _wilcoxon(change: np.ndarray) -> float | None:
    """R's wilcox.test p of the paired changes (null when no change is non-zero)."""
    test = signed_rank_test(change)
    return None if test is None or math.isnan(test[1]) else test[1]


def signed_rank_test(change: np.ndarray) -> tuple[float, float] | None:
    """(V, two-sided p) of R's wilcox.test(change) with its defaults; None without a
    non-zero change. V is the sum of the ranks of the positive changes."""
    x = np.asarray(change, dtype=np.float64)
    nonzero = x[x != 0]
    n = nonzero.size
    if n == 0:
        return None
    ranks = stats.rankdata(np.abs(nonzero))
    v = float(ranks[nonzero > 0].sum())
    _, tied = np.unique(ranks, return_counts=True)
    if n < 50 and tied.size == n and n == x.size:  # no ties, no zeros: exact
        return v, _exact_signed_rank_p(v, n)
    z = v - n * (n + 1) / 4
    sigma = math.sqrt(n * (n + 1) * (2 * n + 1) / 24 - float(np.sum(tied**3 - tied)) / 48)
    z = (z - math.copysign(0.5, z) * (z != 0)) / sigma
    return v, float(2 * min(stats.norm.cdf(z), stats.norm.sf(z)))


def _exact_signed_rank_p(v: float, n: int) -> float:
    """R's exact two-sided p: min(1, 2 P(V <= v)) or min(1, 2 P(V >= v)) from the null
    distribution of V (subsets of 1..n by their sum, counted exactly for n < 50)."""
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1.0
    for k in range(1, n + 1):
        counts[k:] = counts[k:] + counts[:-k].copy()
    cdf = np.cumsum(counts) / 2.0**n
    w = round(v)
    # P(V >= w) = P(V <= n(n+1)/2 - w) by symmetry: no 1 - cdf cancellation in the tail
    tail = cdf[counts.size - 1 - w] if v > n * (n + 1) / 4 else cdf[w]
    return float(min(1.0, 2 * tail))
