"""Multiple imputation in the analysis: pooled fits in the models' keys, complete-case twins
beside them, the missing_data section, and its small counts protected."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from rich.console import Console

from registry.analysis.outcome import ADJUSTED
from registry.analysis.pooling import pool_cox
from registry.missing_data import MissingData
from registry.pipeline import Analysis, analyse, build_analysis, run_demo
from registry.result_types import CoxFit

AS_OF = dt.date(2026, 1, 1)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mi")
    run_demo(out, patients=700, seed=11, as_of=AS_OF, console=Console(quiet=True),
             built_at=dt.datetime(2026, 1, 2))  # fmt: skip
    return out / "registry.duckdb"


def knock_out(analysis: Analysis, column: str, share: float, seed: int) -> Analysis:
    """The analysis with `column` set to null for a random share of its patients, in the
    cohort and in every analysis frame (has_covariates recomputed)."""
    ids = analysis.cohort.patients.get_column("patient_id")
    rng = np.random.default_rng(seed)
    gone = ids.filter(pl.Series(rng.random(ids.len()) < share))
    covariates = analysis.study.covariates

    def drop(frame: pl.DataFrame) -> pl.DataFrame:
        nulled = frame.with_columns(
            pl.when(pl.col("patient_id").is_in(gone.implode()))
            .then(None)
            .otherwise(pl.col(column))
            .alias(column)
        )
        complete = pl.all_horizontal(pl.col(c).is_not_null() for c in covariates)
        return nulled.with_columns(complete.alias("has_covariates"))

    cohort = dataclasses.replace(analysis.cohort, patients=drop(analysis.cohort.patients))
    tte = dataclasses.replace(analysis.tte, patients=cohort.patients)  # its frames follow
    assert tte.outcomes.equals(drop(analysis.tte.outcomes))
    return dataclasses.replace(analysis, cohort=cohort, tte=tte)


def with_spec(analysis: Analysis, threshold: int = 5, **spec: Any) -> Analysis:
    study = analysis.study
    trial = dataclasses.replace(study.target_trial, enabled=False)  # not what is tested here
    changed = dataclasses.replace(
        study,
        missing_data=MissingData(**spec),
        target_trial=trial,
        outcomes=("adjacent",),
        min_cell_count=threshold,
    )
    return dataclasses.replace(analysis, study=changed)


@pytest.fixture(scope="module")
def imputed(demo_db: Path) -> dict[str, Any]:
    analysis = knock_out(build_analysis(demo_db, None), "bmd_t_score", 0.3, seed=1)
    # threshold 1: nothing withheld, so that every count can be checked (see test_privacy)
    return dict(analyse(with_spec(analysis, 1, imputations=5, iterations=5), as_of=AS_OF))


def test_adjusted_models_are_pooled_with_their_complete_case_twins(
    imputed: dict[str, Any],
) -> None:
    cox = imputed["outcomes"]["adjacent"]["cox"]
    section = imputed["missing_data"]
    n, complete = section["n"], section["complete_cases"]
    assert complete < 0.8 * n
    for model in ("adjusted", "time_varying_adjusted", "death_cause_specific"):
        pooled, twin = cox[model], cox[f"{model}_complete_case"]
        assert pooled["mi"]["imputations"] == 5 and "mi" not in twin
        assert (pooled["n"], twin["n"]) == (n, complete)
        assert pooled["ci_lower"] < pooled["hr"] < pooled["ci_upper"]
        # pooled variance = within + (1 + 1/m) between: never below the mean within-variance
        assert pooled["se"] ** 2 >= pooled["mi"]["within"] - 1e-15
        assert 0 <= pooled["mi"]["fmi"] <= 1
    for period in ("0-1y", "1-5y"):
        assert cox["piecewise"][period]["mi"]["imputations"] == 5
        assert cox["piecewise_complete_case"][period]["n"] == complete
    # the unadjusted models read no covariate: neither pooled nor twinned
    assert "mi" not in cox["time_varying"] and "time_varying_complete_case" not in cox
    iptw = cox["iptw"]
    assert iptw["mi"]["imputations"] == 5
    assert iptw["n"] == cox["landmark"]["n"] > cox["iptw_complete_case"]["n"]
    assert {r["covariate"] for r in iptw["balance"]} >= {"bmd_t_score", "age"}


def test_missing_data_section_describes_what_was_imputed(imputed: dict[str, Any]) -> None:
    section = imputed["missing_data"]
    assert (section["method"], section["imputations"], section["note"]) == (
        "multiple_imputation", 5, None,
    )  # fmt: skip
    bmd = next(v for v in section["variables"] if v["covariate"] == "bmd_t_score")
    assert bmd["imputed"] and bmd["method"] in ("pmm", "logreg") and bmd["predictors"]
    assert bmd["percent"] == pytest.approx(100 * bmd["missing"] / section["n"])
    counts = [p["count"] for p in section["patterns"]]
    assert sum(counts) == section["n"]  # no pattern is small in this cohort
    assert (
        next(p["count"] for p in section["patterns"] if not p["missing"])
        == section["complete_cases"]
    )
    models = {(r["model"], r["term"]) for r in section["fmi"]}
    assert ("time_varying_adjusted", "treated") in models
    assert ("piecewise", "treated 0-1y") in models
    chain = section["chains"]["bmd_t_score"]
    assert len(chain["mean"]) == 5 and all(len(c) == 5 for c in chain["mean"])
    shares = section["distributions"]["bmd_t_score"]
    for key in ("observed", "imputed"):
        shown = [s for s in shares[key] if s is not None]
        assert shown and sum(shown) <= 1 + 1e-12


def test_complete_case_method_keeps_the_old_models(demo_db: Path) -> None:
    analysis = knock_out(build_analysis(demo_db, None), "bmd_t_score", 0.3, seed=1)
    results = analyse(with_spec(analysis, method="complete_case"), as_of=AS_OF)
    cox = results["outcomes"]["adjacent"]["cox"]
    assert not any(key.endswith("_complete_case") for key in cox)
    assert "mi" not in cox["time_varying_adjusted"]
    section = results["missing_data"]
    assert section["method"] == "complete_case" and section["imputations"] == 0
    assert section["note"] == "the study file asks for complete-case analysis"
    assert section["chains"] is None and section["distributions"] == {}


def test_nothing_missing_means_nothing_imputed(demo_db: Path) -> None:
    analysis = build_analysis(demo_db, None)
    complete = analysis.cohort.patients.filter(pl.col("has_covariates"))
    ids = complete.get_column("patient_id").implode()
    tte = dataclasses.replace(analysis.tte, patients=complete)  # its frames follow
    assert tte.counting.equals(analysis.tte.counting.filter(pl.col("patient_id").is_in(ids)))
    analysis = dataclasses.replace(
        analysis, cohort=dataclasses.replace(analysis.cohort, patients=complete), tte=tte
    )
    results = analyse(with_spec(analysis, imputations=3), as_of=AS_OF)
    section = results["missing_data"]
    assert section["method"] == "complete_case" and section["imputations"] == 0
    assert section["note"] is not None and "nothing was imputed" in section["note"]
    assert "time_varying_adjusted_complete_case" not in results["outcomes"]["adjacent"]["cox"]


def fit(hr: float, se: float, events: int = 100) -> CoxFit:
    wald = {"hr": hr, "ci_lower": 0.0, "ci_upper": 0.0, "p": 0.5, "se": se}
    return {**wald, "n": 500, "events": events, "robust": False, "converged": True,  # type: ignore[typeddict-item]
            "label": "x", "terms": {"treated": dict(wald), "age": dict(wald)}}  # fmt: skip


def test_identical_imputations_pool_to_the_single_fit_with_a_t_interval() -> None:
    pooled = pool_cox([fit(0.8, 0.2)] * 4)
    assert "error" not in pooled
    assert pooled["hr"] == pytest.approx(0.8, rel=1e-14)
    assert pooled["se"] == pytest.approx(0.2, rel=1e-14)
    assert pooled["mi"]["between"] == 0.0 and pooled["mi"]["riv"] == 0.0
    # no between-imputation variance: t with the complete-data df (events - coefficients)
    from scipy import stats

    q = stats.t.ppf(0.975, pooled["mi"]["df"])
    assert pooled["ci_upper"] == pytest.approx(math.exp(math.log(0.8) + q * 0.2), rel=1e-12)
    assert pooled["mi"]["df"] < 98  # the Barnard-Rubin df never exceeds dfcom = 100 - 2


def test_a_failed_imputation_fails_the_pooled_fit_and_says_how_many() -> None:
    pooled = pool_cox([fit(0.8, 0.2), {"error": "no events"}, fit(0.9, 0.2)])
    assert pooled == {"error": "1 of 3 imputations: no events"}


@pytest.mark.parametrize(
    "bad",
    [fit(0.0, 0.2), fit(math.inf, 0.2), fit(0.8, math.inf), fit(0.8, math.nan), fit(0.8, -1.0)],
)
def test_a_non_finite_fit_is_not_pooled_and_says_why(bad: CoxFit) -> None:
    # an infinite coefficient on one completed dataset (a 41-patient demo found it) crashed
    # the whole analysis in Rubin's rules; the model is now an error, its complete-case twin kept
    pooled = pool_cox([fit(0.8, 0.2), bad, fit(0.9, 0.2)])
    assert set(pooled) == {"error"}
    assert pooled["error"].startswith("not pooled: on completed dataset 2 the estimate of treated")


@pytest.mark.parametrize("model", ADJUSTED)
def test_every_adjusted_model_has_a_catalogued_twin_key(model: str) -> None:
    from registry.result_types import CoxModels

    assert f"{model}_complete_case" in CoxModels.__annotations__


def test_a_small_pattern_withholds_every_pattern_count(demo_db: Path) -> None:
    analysis = knock_out(build_analysis(demo_db, None), "bmd_t_score", 0.3, seed=1)
    results = analyse(with_spec(analysis, 20, imputations=2, iterations=2), as_of=AS_OF)
    section = results["missing_data"]
    truth = {tuple(p["missing"]): p["count"] for p in patterns_of(analysis)}
    assert any(0 < v < 20 for v in truth.values()), "the cohort should have a small pattern"
    # all or nothing: n, the complete cases and the missing counts would give one back
    assert [p["count"] for p in section["patterns"]] == [None] * len(truth)
    assert {tuple(p["missing"]) for p in section["patterns"]} == set(truth)
    assert results["cohort"]["n"] == section["n"] == analysis.cohort.patients.height


def patterns_of(analysis: Analysis) -> list[dict[str, Any]]:
    from registry.analysis.missing import patterns

    return list(patterns(analysis.cohort.patients, analysis.study))


def test_a_covariate_left_out_of_the_imputation_keeps_pooled_sizes_protected(
    demo_db: Path,
) -> None:
    # glucocorticoids (about 2 % missing) are not imputed: the pooled models lose those
    # patients, so the pooled n sits between the cohort and the complete cases, a few
    # patients from the cohort
    analysis = knock_out(build_analysis(demo_db, None), "bmd_t_score", 0.3, seed=1)
    k = 40
    study_missing = analysis.cohort.patients.get_column("glucocorticoids").null_count()
    assert 0 < study_missing < k
    results = analyse(
        with_spec(analysis, k, imputations=2, iterations=2, variables=("bmd_t_score",)),
        as_of=AS_OF,
    )
    outcome = results["outcomes"]["adjacent"]
    cohort_n = results["cohort"]["n"]
    assert cohort_n == analysis.cohort.patients.height  # the checks below are not vacuous
    for model in ("adjusted", "time_varying_adjusted", "death_cause_specific"):
        pooled, twin = outcome["cox"][model], outcome["cox"][f"{model}_complete_case"]
        assert "mi" in pooled
        shown = [v for v in (cohort_n, pooled["n"], twin["n"]) if v is not None]
        assert all(a == b or abs(a - b) >= k for a in shown for b in shown), model
        kind = "deaths_first" if model == "death_cause_specific" else "events"
        events = [v for v in (outcome[kind], pooled["events"], twin["events"]) if v is not None]
        assert all(a == b or abs(a - b) >= k for a in events for b in events), model
    notes = results["missing_data"]["notes"]
    assert notes and all(not any(ch.isdigit() for ch in note) for note in notes)


def test_nothing_imputable_is_said_and_the_attrition_is_complete_case(demo_db: Path) -> None:
    analysis = knock_out(build_analysis(demo_db, None), "bmd_t_score", 0.3, seed=1)
    results = analyse(with_spec(analysis, 1, imputations=2, variables=("age",)), as_of=AS_OF)
    section = results["missing_data"]
    assert section["method"] == "complete_case" and section["imputations"] == 0
    assert section["note"] is not None and "could be imputed" in section["note"]
    assert len(section["notes"]) == 2  # BMD and glucocorticoids, each left out
    last = results["cohort"]["attrition"][-1]
    assert (last["rule"], last["applies_to"]) == (
        "missing covariates for adjusted models", "adjusted models",
    )  # fmt: skip
    assert "time_varying_adjusted_complete_case" not in results["outcomes"]["adjacent"]["cox"]
