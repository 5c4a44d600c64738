"""Pain (VAS) and disability (ODI) before and after, anchored on the cohort's own dates."""

from __future__ import annotations

from typing import Any

import polars as pl

from registry.cohort import Cohort
from registry.models import pro

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


def pro_results(cohort: Cohort, assessments: pl.DataFrame) -> dict[str, Any]:
    """results.json's `pro`: before/after per instrument and arm, and visit trajectories."""
    eligible = assessments.join(cohort.patients.select("patient_id"), on="patient_id", how="semi")
    summary = pro.summarise_pro(eligible, anchors(cohort))
    table = summary.before_after.rename(RENAMED)
    out: dict[str, Any] = {}
    for row in table.iter_rows(named=True):
        instrument, arm = row.pop("instrument"), row.pop("arm")
        out.setdefault(instrument, {})[arm] = row
    out["trajectories"] = summary.trajectories.to_dicts()
    return out
