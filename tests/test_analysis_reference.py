"""Every model of one outcome, computed by registry.analysis on the product's own frames,
against R on the same frames (tests/reference/analysis_reference.R).

Tolerances: survival, CIF and coefficients 1e-6 relative; standard errors 1e-4 relative;
test statistics 1e-6 relative.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from registry.analysis import analyse_outcome
from registry.study import load_study

HERE = Path(__file__).parent


def frame(name: str, treated_bool: bool) -> pl.DataFrame:
    data = pl.read_csv(HERE / "data" / f"demo_adjacent_{name}.csv")
    treated = pl.col("treated").cast(pl.Boolean) if treated_bool else pl.col("treated")
    return data.with_columns(
        pl.col("id").cast(pl.String).alias("patient_id"),
        pl.lit("adjacent").alias("outcome"),
        treated,
        pl.col("glucocorticoids").cast(pl.Boolean),
        pl.col("has_covariates").cast(pl.Boolean),
    )


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    study = load_study()
    return analyse_outcome(
        "adjacent",
        frame("outcomes", True),
        frame("counting", False),
        frame("landmark", True),
        study,
    )


@pytest.fixture(scope="module")
def r() -> dict[tuple[str, str], float]:
    table = pl.read_csv(HERE / "reference" / "analysis" / "adjacent.csv", infer_schema_length=0)
    return {(m, q): float(v) for m, q, v in table.iter_rows()}


def close(ours: float, theirs: float, rel: float) -> None:
    assert ours == pytest.approx(theirs, rel=rel, abs=1e-12), (ours, theirs)


@pytest.mark.parametrize("arm", ["treated", "untreated"])
def test_km_at_years(result: dict[str, Any], r: dict[tuple[str, str], float], arm: str) -> None:
    # R: summary(survfit(Surv(duration_days, event == 1) ~ treated, conf.type = "log-log"), times = years)
    km = result["km"][arm]
    for year in "12345":
        close(km["survival_at_years"][year], r[(f"km_{arm}", f"surv_{year}")], 1e-9)
        close(km["ci_lower_at_years"][year], r[(f"km_{arm}", f"lower_{year}")], 1e-6)
        close(km["ci_upper_at_years"][year], r[(f"km_{arm}", f"upper_{year}")], 1e-6)


def test_logrank(result: dict[str, Any], r: dict[tuple[str, str], float]) -> None:
    # R: survdiff(Surv(duration_days, event == 1) ~ treated [+ strata(site_id)])$chisq
    close(result["logrank"]["statistic"], r[("logrank", "chisq")], 1e-6)
    close(result["logrank_stratified_site"]["statistic"], r[("logrank_site", "chisq")], 1e-6)


@pytest.mark.parametrize(
    "model",
    [
        "unadjusted",
        "adjusted",
        "time_varying",
        "time_varying_adjusted",
        "landmark",
        "iptw",
        "death_cause_specific",
    ],
)
def test_cox_models(result: dict[str, Any], r: dict[tuple[str, str], float], model: str) -> None:
    # R: coxph(...) as in analysis_reference.R; iptw with weights = w, robust = TRUE
    fit = result["cox"][model]
    close(math.log(fit["hr"]), r[(model, "coef")], 1e-6)
    close(fit["se"], r[(model, "se")], 1e-4)


def test_ph_test(result: dict[str, Any], r: dict[tuple[str, str], float]) -> None:
    # R: cox.zph(coxph(Surv(start, stop, event == 1) ~ treated + covariates))$table
    rows = {row["term"]: row["chisq"] for row in result["ph_test"]["table"]}
    close(rows["treated"], r[("ph_test", "treated_chisq")], 1e-4)
    close(rows["GLOBAL"], r[("ph_test", "global_chisq")], 1e-4)


@pytest.mark.parametrize("arm", ["treated", "untreated"])
def test_cumulative_incidence(
    result: dict[str, Any], r: dict[tuple[str, str], float], arm: str
) -> None:
    # R: timepoints(cuminc(duration_days, event, treated, cencode = 0), years)$est
    for year in "12345":
        close(result["cif"][arm]["at_years"][year], r[(f"cif_{arm}", f"cif_{year}")], 1e-9)


def test_gray_and_fine_gray(result: dict[str, Any], r: dict[tuple[str, str], float]) -> None:
    # R: cuminc(...)$Tests; crr(landmark duration, event, treated, failcode = 1, cencode = 0)
    close(result["gray_test"]["statistic"], r[("gray", "stat")], 1e-6)
    close(math.log(result["fine_gray"]["hr"]), r[("fine_gray", "coef")], 1e-6)
    close(result["fine_gray"]["se"], r[("fine_gray", "se")], 1e-4)


def test_rmst(result: dict[str, Any], r: dict[tuple[str, str], float]) -> None:
    # R: summary(survfit(Surv(duration_days, event == 1) ~ treated, data = lm), rmean = 1736)$table
    rmst = result["rmst"]
    for arm in ("treated", "untreated"):
        close(rmst["rmst"][arm], r[("rmst", arm)], 1e-9)
        close(rmst["se"][arm], r[("rmst", f"se_{arm}")], 1e-6)


def test_piecewise_hazard_ratios(result: dict[str, Any], r: dict[tuple[str, str], float]) -> None:
    # R: survSplit(Surv(start, stop, ev) ~ ., cut = 365); coxph(... ~ t01 + t15 + covariates)
    for period, key in (("0-1y", "0_1y"), ("1-5y", "1_5y")):
        fit = result["cox"]["piecewise"][period]
        close(math.log(fit["hr"]), r[("piecewise", f"coef_{key}")], 1e-6)
        close(fit["se"], r[("piecewise", f"se_{key}")], 1e-4)


def test_rmst_difference_is_treated_minus_untreated(result: dict[str, Any]) -> None:
    rmst = result["rmst"]
    assert rmst["difference_days"] == pytest.approx(
        rmst["rmst"]["treated"] - rmst["rmst"]["untreated"]
    )
    assert rmst["ci_lower"] < rmst["difference_days"] < rmst["ci_upper"]


def test_the_golden_frames_are_what_the_generator_writes_today(tmp_path: Path) -> None:
    """tests/reference/make_demo_frames.py rebuilds the frames the R scripts read from the
    product's current stages; a change to synth, ingest, cohort or time-to-event that moves
    them fails here, so R's outputs are never compared with frames R did not see (rerun the
    generator, then analysis_reference.R and iptw_reference.R)."""
    from tests.reference.make_demo_frames import OUTCOME, demo_frames, iptw_frame, numbered

    frames = numbered(demo_frames(tmp_path))
    files = {f"demo_{OUTCOME}_{name}.csv": frame for name, frame in frames.items()}
    files["iptw_landmark.csv"] = iptw_frame(frames["landmark"])
    for name, frame in files.items():
        assert frame.write_csv() == (HERE / "data" / name).read_text(), name
