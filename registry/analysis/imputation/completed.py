"""One completed dataset put into an analysis frame."""

from __future__ import annotations

import polars as pl


def with_covariates(frame: pl.DataFrame, completed: pl.DataFrame) -> pl.DataFrame:
    """`frame` with its covariate columns replaced by those of `completed` (joined on
    patient_id, row order and column order kept) and has_covariates recomputed from them."""
    covariates = [c for c in completed.columns if c != "patient_id"]
    replaced = [c for c in covariates if c in frame.columns]
    joined = frame.drop(replaced).join(
        completed.select("patient_id", *replaced),
        on="patient_id",
        how="left",
        maintain_order="left",
    )
    flag = pl.all_horizontal(pl.col(c).is_not_null() for c in replaced) if replaced else (
        pl.lit(True))  # fmt: skip
    order = [*frame.columns, *(["has_covariates"] if "has_covariates" not in frame.columns else [])]
    return joined.with_columns(flag.alias("has_covariates")).select(order)
