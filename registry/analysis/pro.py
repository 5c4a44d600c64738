"""Pain (VAS) and disability (ODI) before and after, anchored on the cohort's own dates."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import duckdb
import polars as pl

from registry.cohort import Cohort
from registry.db import load_sql, query
from registry.models import pro
from registry.result_types import BoxStats, ProChange, ProQuantiles, ProResults, Trajectory

RENAMED = {
    "follow_up_mean": "followup_mean",
    "follow_up_sd": "followup_sd",
    "change_lower": "change_ci_lower",
    "change_upper": "change_ci_upper",
    "t_p": "p_ttest",
    "wilcoxon_p": "p_wilcoxon",
}


BOX_COLUMNS = ["q1", "median", "q3", "lowerfence", "upperfence", "mean", "sd", "n"]


def anchors(cohort: Cohort) -> pl.DataFrame:
    """Treated: the day of the study treatment; untreated: t0 (the index diagnosis)."""
    return cohort.patients.select(
        "patient_id", _arm(pl.String()), pl.coalesce("treat_on", "t0").alias("anchor_on")
    )


def anchor_rows(cohort: Cohort) -> pl.DataFrame:
    """`anchors` as DuckDB joins them (pro_anchors): `patient`, the UInt32 row index in
    cohort.patients' order, first; the arm an Enum (one byte a patient, not a string)."""
    rows = cohort.patients.with_row_index("patient")
    arm = _arm(pl.Enum(pro.ARMS))
    return rows.select(
        "patient", "patient_id", arm, pl.coalesce("treat_on", "t0").alias("anchor_on")
    )


def _arm(dtype: pl.DataType) -> pl.Expr:
    """`arm`: "treated" or "untreated", from the cohort's `treated`."""
    treated, untreated = (pl.lit(arm, dtype) for arm in pro.ARMS)
    return pl.when(pl.col("treated")).then(treated).otherwise(untreated).alias("arm")


def visits(cohort: Cohort, assessments: pl.DataFrame) -> pl.DataFrame:
    """The assessment picked for each patient, instrument and visit (eligible patients: the
    anchors are theirs only), in Polars: the reference implementation (the pipeline uses
    `summarise_in_db`). Pick once and pass the result to summarise_visits and baseline_of."""
    return pro.pick_visits(assessments, anchors(cohort))


@contextmanager
def picked_in_db(con: duckdb.DuckDBPyConnection, cohort: Cohort) -> Iterator[None]:
    """For the block: the cohort's anchors registered as pro_anchors (`anchor_rows`) and
    the visits picked by sql/queries/analysis/pro_pick.sql into the TEMP table pro_picked
    (a temp table works on a read-only connection; DuckDB spills it under memory_limit);
    both dropped afterwards, whatever happens."""
    con.register("pro_anchors", anchor_rows(cohort))
    try:
        pick = load_sql("queries/analysis/pro_pick")
        con.execute(f"CREATE OR REPLACE TEMP TABLE pro_picked AS\n{pick}", pro.window_parameters())
        yield
    finally:
        try:
            con.execute("DROP TABLE IF EXISTS pro_picked")
        finally:
            con.unregister("pro_anchors")


def visits_in_db(con: duckdb.DuckDBPyConnection, cohort: Cohort) -> pl.DataFrame:
    """`visits`, picked by DuckDB from the registry's assessments table: the same rows in the
    same order (the report's summaries use `summarise_in_db`, which never fetches them)."""
    with picked_in_db(con, cohort):
        return pro.visit_labels(query(con, "queries/analysis/pro_visits"))


def summarise_in_db(
    con: duckdb.DuckDBPyConnection, cohort: Cohort, threshold: int = 5
) -> tuple[ProResults, pl.DataFrame]:
    """`summarise_visits(visits_in_db(con, cohort), threshold)` and the baseline scores for
    Table 1 (see `baseline_of`), the pick kept in DuckDB: one instrument-arm-visit group's
    scores (and one arm's pairs) at a time come into Python, in patient order, never every
    picked visit (at a million patients those held some 1.5 GiB in Polars). Not DuckDB's own
    avg/stddev: its parallel sums add in another order each run."""
    with picked_in_db(con, cohort):
        groups = query(con, "queries/analysis/pro_visit_groups")
        boxes, moments, changes = [], [], {}
        for instrument, arm, code in groups.iter_rows():
            key = {"instrument": instrument, "arm": arm}
            scores = _fetch(con, "pro_scores", key | {"visit_code": code})
            boxes.append(scores.select(*box_aggregates()).with_columns(
                pl.lit(instrument).alias("instrument"), pl.lit(arm).alias("arm"),
                pl.lit(code).alias("visit_code")))  # fmt: skip
            if code == 1:  # the 1-month visit: pair it with the baseline
                pairs = _fetch(con, "pro_pairs", key).with_columns(
                    (pl.col("follow_up") - pl.col("baseline")).alias("change")
                )
                if pairs.height:
                    labels = [pl.lit(instrument).alias("instrument"), pl.lit(arm).alias("arm")]
                    moments.append(pairs.select(*pro.pair_moments()).with_columns(labels))
                    changes[(instrument, arm)] = pairs.get_column("change").to_numpy()
        baseline = query(con, "queries/analysis/pro_baseline")
    summary = pl.concat(boxes) if boxes else _no_boxes()
    summary = summary.with_columns(pro.visit_label()).drop("visit_code")
    moment_table = pl.concat(moments) if moments else _no_moments()
    table = pro.change_table(moment_table, pro.wilcoxon_table(changes))
    return _results(table, pro.trajectory_grid(summary), summary, threshold), baseline


def _fetch(con: duckdb.DuckDBPyConnection, name: str, parameters: dict[str, Any]) -> pl.DataFrame:
    """One group's rows of sql/queries/analysis/<name>.sql (scores as Float64), in patient
    order: summarised here, so that two runs give the same numbers to the last bit."""
    found = query(con, f"queries/analysis/{name}", **parameters)
    return found.with_columns(pl.all().cast(pl.Float64))


def _no_boxes() -> pl.DataFrame:
    """box statistics with no group: the columns summarise_in_db builds."""
    empty = pl.DataFrame(schema={"score": pl.Float64}).select(*box_aggregates()).clear()
    return empty.with_columns(pl.lit(None, pl.String).alias("instrument"),
                              pl.lit(None, pl.String).alias("arm"),
                              pl.lit(None, pl.Int32).alias("visit_code")).clear()  # fmt: skip


def _no_moments() -> pl.DataFrame:
    """paired moments with no pair: the columns summarise_in_db builds."""
    schema = {"baseline": pl.Float64, "follow_up": pl.Float64, "change": pl.Float64}
    empty = pl.DataFrame(schema=schema).select(*pro.pair_moments()).clear()
    return empty.with_columns(pl.lit(None, pl.String).alias("instrument"),
                              pl.lit(None, pl.String).alias("arm")).clear()  # fmt: skip


def quantiles(picked: pl.DataFrame, threshold: int) -> ProQuantiles:
    """Box-plot statistics per instrument, arm and visit (fences at the 5th/95th centiles,
    so no single patient's extreme score is drawn); visits with fewer than `threshold`
    patients are left out."""
    return quantiles_of(box_table(picked), threshold)


def box_table(picked: pl.DataFrame) -> pl.DataFrame:
    """instrument, arm, visit and BOX_COLUMNS of the picked scores, one row per visit seen."""
    return picked.group_by("instrument", "arm", "visit").agg(*box_aggregates())


def box_aggregates() -> list[pl.Expr]:
    """BOX_COLUMNS as aggregations of `score` (quantiles by linear interpolation, R's type
    7): over a group_by, or a select on one group's scores."""
    score = pl.col("score")
    return [
        score.quantile(0.25, "linear").alias("q1"),
        score.median().alias("median"),
        score.quantile(0.75, "linear").alias("q3"),
        score.quantile(0.05, "linear").alias("lowerfence"),
        score.quantile(0.95, "linear").alias("upperfence"),
        score.mean().alias("mean"),
        score.std().alias("sd"),
        pl.len().alias("n"),
    ]


def quantiles_of(table: pl.DataFrame, threshold: int) -> ProQuantiles:
    """results.json's `quantiles` from a `box_table` (or pro_visit_summary.sql's rows)."""
    out: dict[str, dict[str, dict[str, BoxStats]]] = {}
    table = table.filter(pl.col("n") >= threshold).select(
        "instrument", "arm", "visit", *BOX_COLUMNS
    )
    for row in table.sort("instrument", "arm", "visit").iter_rows(named=True):
        instrument, arm, visit = row.pop("instrument"), row.pop("arm"), row.pop("visit")
        out.setdefault(instrument, {}).setdefault(arm, {})[visit] = cast(BoxStats, row)
    return cast(ProQuantiles, out)  # instruments and arms are the contract's names


def summarise_visits(picked: pl.DataFrame, threshold: int = 5) -> ProResults:
    """results.json's `pro` from the picked visits (see `visits`): the reference for
    `summarise_in_db`."""
    table = pro.before_after(picked)
    return _results(table, pro.trajectories(picked), box_table(picked), threshold)


def _results(
    before_after: pl.DataFrame, trajectories: pl.DataFrame, boxes: pl.DataFrame, threshold: int
) -> ProResults:
    """results.json's `pro` from the before/after table, the trajectory grid and the box
    table, with groups of fewer than `threshold` patients withheld."""
    table = before_after.rename(RENAMED)
    changes: dict[str, dict[str, ProChange]] = {}
    for row in table.iter_rows(named=True):
        instrument, arm = row.pop("instrument"), row.pop("arm")
        if 0 < (row.get("n") or 0) < threshold:  # too few pairs: their summaries are withheld
            row = {key: (value if key == "n" else None) for key, value in row.items()}
        changes.setdefault(instrument, {})[arm] = cast(ProChange, row)
    out = cast(ProResults, changes)  # the instruments first, as results.json has always had
    shown = trajectories.filter(pl.col("n") >= threshold)
    out["trajectories"] = cast(list[Trajectory], shown.to_dicts())
    out["quantiles"] = quantiles_of(boxes, threshold)
    return out


def baseline_of(picked: pl.DataFrame, cohort: Cohort) -> pl.DataFrame:
    """The baseline scores among the picked visits, as sql/queries/analysis/pro_baseline.sql
    gives them: `patient` (UInt32 row index in cohort.patients), baseline_vas, baseline_odi
    (Float64, null when not assessed); one row per patient with a baseline, by patient."""
    index = cohort.patients.select("patient_id").with_row_index("patient")
    baseline = picked.filter(pl.col("visit") == "baseline").join(index, on="patient_id")
    score = pl.col("score").cast(pl.Float64)
    return (
        baseline.group_by("patient")
        .agg(
            score.filter(pl.col("instrument") == "VAS").first().alias("baseline_vas"),
            score.filter(pl.col("instrument") == "ODI").first().alias("baseline_odi"),
        )
        .sort("patient")
    )
