"""Pain (VAS) and disability (ODI) before and after, anchored on the cohort's own dates."""

from __future__ import annotations

from typing import cast

import duckdb
import polars as pl

from registry.cohort import Cohort
from registry.db import query
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


def anchors(cohort: Cohort) -> pl.DataFrame:
    """Treated: the day of the study treatment; untreated: t0 (the index diagnosis)."""
    arm = pl.when(pl.col("treated")).then(pl.lit("treated")).otherwise(pl.lit("untreated"))
    return cohort.patients.select(
        "patient_id", arm.alias("arm"), pl.coalesce("treat_on", "t0").alias("anchor_on")
    )


def visits(cohort: Cohort, assessments: pl.DataFrame) -> pl.DataFrame:
    """The assessment picked for each patient, instrument and visit (eligible patients: the
    anchors are theirs only). Pick once and pass the result to summarise_visits and
    baseline_of; at a million patients a pick costs seconds."""
    return pro.pick_visits(assessments, anchors(cohort))


def visits_in_db(con: duckdb.DuckDBPyConnection, cohort: Cohort) -> pl.DataFrame:
    """`visits`, picked by DuckDB from the registry's assessments table: the same rows in the
    same order, without reading every assessment into Python (at ten million patients the
    pick in Polars held some 18 GiB)."""
    con.register("pro_anchors", anchors(cohort))
    try:
        picked = query(con, "queries/analysis/pro_visits", **pro.window_parameters())
    finally:
        con.unregister("pro_anchors")
    return pro.visit_labels(picked)


def quantiles(picked: pl.DataFrame, threshold: int) -> ProQuantiles:
    """Box-plot statistics per instrument, arm and visit (fences at the 5th/95th centiles,
    so no single patient's extreme score is drawn); visits with fewer than `threshold`
    patients are left out."""
    score = pl.col("score")
    table = picked.group_by("instrument", "arm", "visit").agg(
        score.quantile(0.25, "linear").alias("q1"),
        score.median().alias("median"),
        score.quantile(0.75, "linear").alias("q3"),
        score.quantile(0.05, "linear").alias("lowerfence"),
        score.quantile(0.95, "linear").alias("upperfence"),
        score.mean().alias("mean"),
        score.std().alias("sd"),
        pl.len().alias("n"),
    )
    out: dict[str, dict[str, dict[str, BoxStats]]] = {}
    table = table.filter(pl.col("n") >= threshold)
    for row in table.sort("instrument", "arm", "visit").iter_rows(named=True):
        instrument, arm, visit = row.pop("instrument"), row.pop("arm"), row.pop("visit")
        out.setdefault(instrument, {}).setdefault(arm, {})[visit] = cast(BoxStats, row)
    return cast(ProQuantiles, out)  # instruments and arms are the contract's names


def summarise_visits(picked: pl.DataFrame, threshold: int = 5) -> ProResults:
    """results.json's `pro` from the picked visits (see `visits`)."""
    table = pro.before_after(picked).rename(RENAMED)
    changes: dict[str, dict[str, ProChange]] = {}
    for row in table.iter_rows(named=True):
        instrument, arm = row.pop("instrument"), row.pop("arm")
        if 0 < (row.get("n") or 0) < threshold:  # too few pairs: their summaries are withheld
            row = {key: (value if key == "n" else None) for key, value in row.items()}
        changes.setdefault(instrument, {})[arm] = cast(ProChange, row)
    out = cast(ProResults, changes)  # the instruments first, as results.json has always had
    trajectories = pro.trajectories(picked).filter(pl.col("n") >= threshold)
    out["trajectories"] = cast(list[Trajectory], trajectories.to_dicts())
    out["quantiles"] = quantiles(picked, threshold)
    return out


def baseline_of(picked: pl.DataFrame) -> pl.DataFrame:
    """patient_id, instrument, score of the baseline visits among the picked visits."""
    return picked.filter(pl.col("visit") == "baseline").select("patient_id", "instrument", "score")
