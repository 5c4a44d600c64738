"""Every estimator of the study for one outcome."""

from __future__ import annotations

from typing import Any

import polars as pl

from registry import catalogue
from registry.analysis.common import guarded
from registry.analysis.curves import competing_risks, km_by_arm, logrank_result, rmst
from registry.analysis.hazards import (
    fit_fixed,
    fit_iptw,
    fit_piecewise,
    fit_time_varying,
    iptw_parts,
)
from registry.result_types import CoxFit, ModelError, OutcomeResults, PHTest
from registry.study import Study

# The models that read covariates: with multiple imputation each is fitted on every completed
# dataset and pooled (registry/analysis/pooling.py), its complete-case fit kept beside it.
ADJUSTED = ("adjusted", "time_varying_adjusted", "iptw", "piecewise", "death_cause_specific")


def analyse_outcome(name: str, outcomes: pl.DataFrame, counting: pl.DataFrame,
                    landmark: pl.DataFrame, study: Study) -> OutcomeResults:  # fmt: skip
    """Every estimator of the study for one outcome."""
    out = outcomes.filter(pl.col("outcome") == name)
    cp = counting.filter(pl.col("outcome") == name)
    lm = landmark.filter(pl.col("outcome") == name)
    iptw = guarded(lambda: fit_iptw(lm, study)[0])
    tv_adjusted = guarded(lambda: fit_time_varying(cp, study, adjusted=True))
    cr = competing_risks(out, lm, study.min_cell_count)
    return {
        "n": out.height,
        "events": int((out.get_column("event") == 1).sum()),
        "deaths_first": int((out.get_column("event") == 2).sum()),
        "km": km_by_arm(out, study.min_cell_count),
        "km_landmark": km_by_arm(lm, study.min_cell_count),
        "logrank": guarded(lambda: logrank_result(out, stratified=False)),
        "logrank_stratified_site": guarded(lambda: logrank_result(out, stratified=True)),
        "cox": {
            "unadjusted": _fixed(out, study, "unadjusted", adjusted=False),
            "adjusted": _fixed(out, study, "adjusted", adjusted=True),
            "time_varying": guarded(lambda: fit_time_varying(cp, study, adjusted=False)),
            "time_varying_adjusted": tv_adjusted,
            "landmark": _fixed(lm, study, "landmark", adjusted=False),
            "iptw": iptw,
            "piecewise": guarded(lambda: fit_piecewise(cp, study)),
            "death_cause_specific": guarded(
                lambda: fit_time_varying(cp, study, adjusted=True, cause=2)
            ),
        },
        "cif": cr["cif"],
        "cif_death": cr["cif_death"],
        "gray_test": cr["gray_test"],
        "fine_gray": cr["fine_gray"],
        "ph_test": ph_test_of(tv_adjusted),
        "rmst": guarded(lambda: rmst(lm, study)),
    }


def adjusted_fits(name: str, outcomes: pl.DataFrame, counting: pl.DataFrame,
                  landmark: pl.DataFrame, study: Study) -> dict[str, Any]:  # fmt: skip
    """The ADJUSTED models of one outcome on one (completed) dataset, before pooling: the
    IPTW one as its parts ({"parts": IPTWParts}), whose scores and weights pooling averages."""
    out = outcomes.filter(pl.col("outcome") == name)
    cp = counting.filter(pl.col("outcome") == name)
    lm = landmark.filter(pl.col("outcome") == name)
    return {
        "adjusted": _fixed(out, study, "adjusted", adjusted=True),
        "time_varying_adjusted": guarded(
            lambda: fit_time_varying(cp, study, adjusted=True, ph=False)
        ),
        "iptw": guarded(lambda: {"parts": iptw_parts(lm, study)}),
        "piecewise": guarded(lambda: fit_piecewise(cp, study)),
        "death_cause_specific": guarded(
            lambda: fit_time_varying(cp, study, adjusted=True, cause=2, ph=False)
        ),
    }


def ph_test_of(fit: CoxFit | ModelError) -> PHTest | ModelError:
    """The PH test the time-varying adjusted fit carries, moved out of it: results.json
    holds it as the outcome's `ph_test`."""
    if "error" in fit:
        return {"error": "the adjusted model was not fitted"}
    return fit.pop("ph_test", {"error": "the adjusted model was not fitted"})


def _fixed(frame: pl.DataFrame, study: Study, model: str, *, adjusted: bool) -> CoxFit | ModelError:
    """A fixed-covariate Cox model, labelled in results.json with its catalogue description."""
    label = catalogue.model(model).description
    return guarded(lambda: fit_fixed(frame, study, adjusted=adjusted, label=label))
