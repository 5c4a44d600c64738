"""Table 1: baseline characteristics by arm, with standardised mean differences. Pure."""

from __future__ import annotations

from typing import cast

import numpy as np
import polars as pl

from registry.cohort import Cohort
from registry.levels import POSITION
from registry.models.iptw import standardised_difference
from registry.result_types import Num, Table1Cell, Table1Row

REGIONS = {  # where the index levels are: the thoracolumbar junction dominates
    "cervical (C1-C7)": (POSITION["C1"], POSITION["C7"]),
    "thoracic (T1-T10)": (POSITION["T1"], POSITION["T10"]),
    "thoracolumbar (T11-L2)": (POSITION["T11"], POSITION["L2"]),
    "lumbar (L3-L5)": (POSITION["L3"], POSITION["L5"]),
}
CONTINUOUS = {
    "age": "Age, years",
    "bmd_t_score": "BMD T-score",
    "prior_vertebral_fractures": "Prior vertebral fractures",
    "n_index_levels": "Index levels per patient",
    "baseline_vas": "Baseline VAS (0-10)",
    "baseline_odi": "Baseline ODI (%)",
}
BINARY = {
    "female": "Women",
    "glucocorticoids": "Glucocorticoids",
    "any_prior_fracture": "Any prior vertebral fracture",
}


def baseline_frame(cohort: Cohort, baseline_scores: pl.DataFrame) -> pl.DataFrame:
    """One row per patient: arm, the Table 1 variables (PRO baseline joined by patient: the
    scores' `patient` is the row index in cohort.patients, see analysis.pro.baseline_of)."""
    scores = baseline_scores.select("patient", "baseline_vas", "baseline_odi")
    regions = [
        (pl.col("position").is_between(low, high)).any().alias(name)
        for name, (low, high) in REGIONS.items()
    ]
    where = cohort.reference_levels.group_by("patient_id").agg(regions)
    frame = cohort.patients.with_row_index("patient").select(
        "patient", "patient_id", "treated", "age", "bmd_t_score", "prior_vertebral_fractures",
        "n_index_levels", "glucocorticoids",
        (pl.col("sex") == "F").alias("female"),
        (pl.col("prior_vertebral_fractures") > 0).alias("any_prior_fracture"),
    )  # fmt: skip
    frame = frame.join(where, on="patient_id", how="left")
    return frame.join(scores, on="patient", how="left").drop("patient")


def describe(frame: pl.DataFrame, column: str, *, binary: bool, threshold: int) -> Table1Cell:
    """n, mean ± SD (or count and %) and missing for one arm and variable. The percentage of
    a small count is withheld too (with n shown it would give the count back), and so are
    the mean and SD of fewer than `threshold` values."""
    values = frame.get_column(column)
    present = values.drop_nulls().cast(pl.Float64)
    out: Table1Cell = {"n": present.len(), "missing": values.null_count()}
    small = 0 < present.len() < threshold
    if binary:
        count = int(present.sum())
        hidden = small or 0 < count < threshold or 0 < present.len() - count < threshold
        percent = 100 * count / present.len() if present.len() and not hidden else None
        out |= {"count": count, "percent": percent}
    else:
        mean, sd = cast(Num, present.mean()), cast(Num, present.std())
        out |= {"mean": None if small else mean, "sd": None if small else sd}
    return out


def smd(frame: pl.DataFrame, column: str) -> float | None:
    """Unweighted standardised mean difference, treated minus untreated (complete cases)."""
    rows = frame.select("treated", column).drop_nulls()
    treated = rows.get_column("treated").to_numpy()
    if rows.is_empty() or treated.all() or not treated.any():
        return None
    x = rows.get_column(column).cast(pl.Float64).to_numpy()
    return standardised_difference(x, treated, np.ones(len(x)))


def table_one(
    cohort: Cohort, baseline_scores: pl.DataFrame, weighted: dict[str, float | None], threshold: int
) -> list[Table1Row]:
    """Rows of Table 1; `weighted` maps covariate -> SMD after IPT weighting (when known)."""
    frame = baseline_frame(cohort, baseline_scores)
    arms = {
        "treated": frame.filter(pl.col("treated")),
        "untreated": frame.filter(~pl.col("treated")),
    }
    variables = [(c, label, False) for c, label in CONTINUOUS.items()]
    variables += [(c, label, True) for c, label in BINARY.items()]
    variables += [(c, f"Index level {c}", True) for c in REGIONS]
    weight_key = {"female": "male", "any_prior_fracture": None}
    rows: list[Table1Row] = []
    for column, label, binary in variables:
        key = weight_key.get(column, column)
        after = weighted.get(key) if key else None
        rows.append({
            "variable": column, "label": label, "binary": binary,
            "treated": describe(arms["treated"], column, binary=binary, threshold=threshold),
            "untreated": describe(arms["untreated"], column, binary=binary, threshold=threshold),
            "smd_before": smd(frame, column),
            "smd_after": (-after if column == "female" and after is not None else after),
        })  # fmt: skip
    return rows
