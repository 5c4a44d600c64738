"""Cox models of the treatment: fixed, time-varying, piecewise, IPTW; the PH diagnostics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import polars as pl

from registry import catalogue
from registry.analysis.common import (
    PIECE_DAY,
    complete,
    covariate_matrix,
    cox_result,
    guarded,
)
from registry.analysis.curves import km_by_arm
from registry.models import cox, lifelines_fits
from registry.models.iptw import Propensity, design_matrix, fit_propensity, summarise_weights
from registry.result_types import (
    BalanceRow,
    CoxFit,
    Histogram,
    IPTWFit,
    PHRow,
    PHTest,
    Piecewise,
    SchoenfeldSmooth,
    WeightSummary,
)
from registry.study import Study


def fit_fixed(frame: pl.DataFrame, study: Study, *, adjusted: bool, label: str) -> CoxFit:
    """Cox model on one row per patient (ever-treated or landmark frame), Efron ties; lifelines
    fits the unadjusted ones (see registry/models/lifelines_fits.py for who fits what)."""
    rows = complete(frame, adjusted=adjusted)
    x, names = covariate_matrix(rows, study, adjusted=adjusted)
    engine = cox.fit_cox if adjusted else lifelines_fits.fit_cox_fixed
    fit = engine(
        rows.get_column("duration_days").to_numpy().astype(float),
        rows.get_column("event").to_numpy() == 1,
        x,
        names=tuple(names),
    )
    return cox_result(fit, label)


def fit_time_varying(
    counting: pl.DataFrame, study: Study, *, adjusted: bool, cause: int = 1, ph: bool = True
) -> CoxFit:
    """Cox model on (start, stop] rows with treatment as a time-varying exposure; cause 2
    makes death the event (the competing event's cause-specific hazard). The adjusted
    outcome model carries its Schoenfeld-residual test (R's cox.zph) under `ph_test` (unless
    `ph` is false: the fits on imputed datasets, which are pooled, carry none)."""
    rows = complete(counting, adjusted=adjusted)
    x, names = covariate_matrix(rows, study, adjusted=adjusted)
    fit = cox.fit_cox(
        rows.get_column("stop").to_numpy().astype(float),
        rows.get_column("event").to_numpy() == cause,
        x,
        start=rows.get_column("start").to_numpy().astype(float),
        names=tuple(names),
    )
    key = "death_cause_specific" if cause == 2 else "time_varying"
    label = catalogue.model(key).description
    result = cox_result(fit, label)
    result |= {"n": rows.get_column("patient_id").n_unique(), "n_rows": rows.height}
    if adjusted and cause == 1 and ph:
        result["ph_test"] = guarded(lambda: ph_result(cox.ph_test(fit), schoenfeld(fit, study)))
    return result


def ph_result(table: pl.DataFrame, smooth: dict[str, SchoenfeldSmooth] | None = None) -> PHTest:
    """The cox.zph table; `violated` when the global test is significant at 5 %, in which
    case the piecewise hazard ratios and the RMST difference are the ones to read; `smooth`
    the binned residuals (see schoenfeld)."""
    global_p = float(table.filter(pl.col("term") == "GLOBAL").get_column("p").item())
    result: PHTest = {
        "table": cast(list[PHRow], table.to_dicts()),
        "global_p": global_p,
        "violated": global_p < 0.05,
    }
    if smooth:
        result["smooth"] = smooth
    return result


def schoenfeld(fit: cox.CoxFit, study: Study) -> dict[str, SchoenfeldSmooth]:
    """Binned scaled Schoenfeld residuals of the treatment term (no single patient shown)."""
    smooth = guarded(
        lambda: cox.scaled_schoenfeld_smooth(fit, "treated", min_events=study.min_cell_count)
    )
    return {"treated": smooth} if "error" not in smooth else {}


def split_at(counting: pl.DataFrame, day: int) -> pl.DataFrame:
    """Split (start, stop] rows at `day`; `period` is 0 before it and 1 after."""
    crossing = (pl.col("start") < day) & (pl.col("stop") > day)
    schema = counting.schema
    early = counting.filter(crossing).with_columns(
        pl.lit(day).cast(schema["stop"]).alias("stop"),
        pl.lit(0).cast(schema["event"]).alias("event"),
    )
    late = counting.with_columns(
        pl.when(crossing)
        .then(pl.lit(day))
        .otherwise(pl.col("start"))
        .cast(schema["start"])
        .alias("start")
    )
    both = pl.concat([early, late])
    return both.with_columns((pl.col("start") >= day).cast(pl.Int8).alias("period"))


def fit_piecewise(counting: pl.DataFrame, study: Study) -> Piecewise:
    """Time-varying adjusted Cox with separate treatment HRs for 0-1 and 1-5 years."""
    usable = complete(counting, adjusted=True)
    patients = usable.get_column("patient_id").n_unique()  # the split adds rows, not patients
    # only the columns the model reads are split (no ids or labels: at ten million patients
    # the split frame would otherwise add some 10 GiB)
    used = ("start", "stop", "event", "treated", *study.covariates)
    rows = split_at(usable.select(used), PIECE_DAY)
    del usable
    x, names = covariate_matrix(rows, study, adjusted=True)
    period = rows.get_column("period").to_numpy()
    x = np.column_stack([x[:, 0] * (1 - period), x[:, 0] * period, x[:, 1:]])
    stop = rows.get_column("stop").to_numpy().astype(float)
    start = rows.get_column("start").to_numpy().astype(float)
    event = rows.get_column("event").to_numpy() == 1
    del rows, period
    fit = cox.fit_cox(
        stop, event, x, start=start, names=("treated_0_1y", "treated_1_5y", *names[1:])
    )
    return {
        "0-1y": {**cox_result(fit, "treated 0-1 year", "treated_0_1y"), "n": patients},
        "1-5y": {**cox_result(fit, "treated 1-5 years", "treated_1_5y"), "n": patients},
    }


def fit_iptw(landmark: pl.DataFrame, study: Study) -> tuple[IPTWFit, np.ndarray | None]:
    """Stabilised-IPTW Cox on the landmark frame (no immortal time) with robust variance."""
    parts = iptw_parts(landmark, study)
    return iptw_result(parts, parts.propensity.score, parts.propensity.weights, study), (
        parts.propensity.weights
    )


@dataclass(frozen=True)
class IPTWParts:
    """One IPTW fit before it is summarised: its rows, propensity model and Cox result
    (what pooling over imputations averages; see registry/analysis/pooling.py)."""

    rows: pl.DataFrame
    treated: np.ndarray
    propensity: Propensity
    cox: CoxFit


def iptw_parts(landmark: pl.DataFrame, study: Study) -> IPTWParts:
    """The propensity model and the weighted Cox model of the landmark frame's complete rows."""
    rows = complete(landmark, adjusted=True)
    x, names = design_matrix(rows, study.covariates)
    treated = rows.get_column("treated").cast(pl.Boolean).to_numpy()
    ps = fit_propensity(treated, x, names)
    fit = cox.fit_cox(
        rows.get_column("duration_days").to_numpy().astype(float),
        rows.get_column("event").to_numpy() == 1,
        treated.astype(float)[:, None],
        weights=ps.weights,
        robust=True,
        names=("treated",),
    )
    return IPTWParts(rows, treated, ps, cox_result(fit, catalogue.model("iptw").description))


def iptw_result(
    parts: IPTWParts,
    score: np.ndarray,
    weights: np.ndarray,
    study: Study,
    *,
    fit: CoxFit | None = None,
    balance: list[BalanceRow] | None = None,
) -> IPTWFit:
    """The published IPTW block: the Cox fit (or a pooled one), the weights' summary and
    histograms, balance and the weighted curves, from these scores and weights."""
    treated = parts.treated
    rows_balance = balance or cast(list[BalanceRow], parts.propensity.balance.to_dicts())
    cap = float(np.quantile(weights, 0.99)) * 1.5
    return {
        **(fit or parts.cox),
        "weights": cast(WeightSummary, summarise_weights(weights, treated)),
        "balance": rows_balance,
        "max_abs_smd_after": max(
            (abs(r["smd_after"]) for r in rows_balance if r["smd_after"] is not None),
            default=0.0,
        ),
        "weighted_km": km_by_arm(parts.rows, study.min_cell_count, weights=weights),
        "ps_histogram": histogram(score, treated, np.linspace(0, 1, 21), study),
        "weights_histogram": histogram(
            np.minimum(weights, cap), treated, np.linspace(0, cap, 21), study
        ),
    }


def histogram(
    values: np.ndarray, treated: np.ndarray, edges: np.ndarray, study: Study
) -> Histogram:
    """Counts per bin and arm (small counts suppressed here: these lists have no count key)."""

    def counts(mask: np.ndarray) -> list[int | None]:
        found = np.histogram(values[mask], bins=edges)[0]
        return [None if 0 < c < study.min_cell_count else int(c) for c in found]

    return {"bin_edges": edges.tolist(), "treated": counts(treated), "untreated": counts(~treated)}
