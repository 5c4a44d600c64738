"""The analysis stage end to end on small synthetic registries: results.json's contract."""

from __future__ import annotations

import bisect
import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from registry.analysis.curves import km_result
from registry.analysis.results import suppress_small
from registry.cohort import read_registry
from registry.config import Settings
from registry.models import km
from registry.pipeline import (
    analyse_registry,
    data_quality,
    ingest_into,
    init_registry,
    open_registry,
)
from registry.quality import run_checks, summarise_checks
from registry.synth import generate_cohort, write_cohort

AS_OF = dt.date(2026, 1, 1)
COX_MODELS = ("unadjusted", "adjusted", "time_varying", "time_varying_adjusted", "landmark", "iptw")


def registry_with(tmp: Path, patients: int, **options: Any) -> Path:
    write_cohort(generate_cohort(patients=patients, **options), tmp / "in")
    db = tmp / "r.duckdb"
    init_registry(db)
    ingest_into(Settings(db=db), [tmp / "in"], as_of=AS_OF)
    return db


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("analysis")
    db = registry_with(tmp, 2500, seed=5)
    analyse_registry(db, None, tmp / "out", as_of=AS_OF)
    return json.loads((tmp / "out" / "results.json").read_text())


def test_results_have_every_documented_key(results: dict[str, Any]) -> None:
    assert set(results["outcomes"]) == {"adjacent", "remote", "same_level", "any_new"}
    adjacent = results["outcomes"]["adjacent"]
    for arm in ("treated", "untreated"):
        km = adjacent["km"][arm]
        for key in (
            "times_days",
            "survival",
            "ci_lower",
            "ci_upper",
            "at_risk",
            "events",
            "median_days",
        ):
            assert key in km, key
        assert set(km["survival_at_years"]) == {"1", "2", "3", "4", "5"}
        cif = adjacent["cif"][arm]
        assert {"times_days", "cif", "ci_lower", "ci_upper", "at_years"} <= set(cif)
    assert {"statistic", "p"} <= set(adjacent["logrank"])
    for model in COX_MODELS:
        fit = adjacent["cox"][model]
        assert "error" not in fit, (model, fit)
        assert {"hr", "ci_lower", "ci_upper", "p", "n", "events"} <= set(fit), model
        assert fit["ci_lower"] < fit["hr"] < fit["ci_upper"]
    for key in ("fine_gray", "ph_test", "rmst", "gray_test"):
        assert "error" not in adjacent[key], (key, adjacent[key])
    assert {"n", "n_treated", "n_untreated", "attrition"} <= set(results["cohort"])
    for instrument in ("VAS", "ODI"):
        for arm in ("treated", "untreated"):
            row = results["pro"][instrument][arm]
            for key in ("n", "baseline_mean", "baseline_sd", "followup_mean", "followup_sd",
                        "change_mean", "change_ci_lower", "change_ci_upper", "p_ttest", "p_wilcoxon"):  # fmt: skip
                assert key in row, key
    prov = results["provenance"]
    assert {"study_sha256", "data_snapshot_sha256", "versions", "as_of"} <= set(prov)


def test_the_primary_analysis_is_the_time_varying_one(results: dict[str, Any]) -> None:
    cox = results["outcomes"]["adjacent"]["cox"]
    assert "primary" in cox["time_varying"]["label"]
    assert "immortal-time" in cox["unadjusted"]["label"]
    assert "primary" not in cox["unadjusted"]["label"]


def test_iptw_balances_the_covariates(results: dict[str, Any]) -> None:
    iptw = results["outcomes"]["adjacent"]["cox"]["iptw"]
    assert iptw["robust"] and iptw["max_abs_smd_after"] < 0.1
    before = max(abs(row["smd_before"]) for row in iptw["balance"])
    assert before > iptw["max_abs_smd_after"]


def test_pain_and_disability_reproduce_the_press_release(results: dict[str, Any]) -> None:
    vas, odi = results["pro"]["VAS"]["treated"], results["pro"]["ODI"]["treated"]
    assert vas["baseline_mean"] == pytest.approx(7.9, abs=0.2)
    assert vas["followup_mean"] == pytest.approx(1.3, abs=0.2)
    assert odi["baseline_mean"] == pytest.approx(69.3, abs=1.5)
    assert odi["followup_mean"] == pytest.approx(18.8, abs=1.0)
    # and the spreads (7.9 ± 1.5 -> 1.3 ± 1.8; 69.3 ± 13.5 -> 18.8 ± 6.9), on the product's
    # own anchors (analysis_pro.anchors: the cohort's treat_on, else t0)
    assert (vas["baseline_sd"], vas["followup_sd"]) == pytest.approx((1.5, 1.8), abs=0.2)
    assert (odi["baseline_sd"], odi["followup_sd"]) == pytest.approx((13.5, 6.9), abs=1.5)


def test_small_counts_are_suppressed_everywhere(results: dict[str, Any]) -> None:
    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif key in ("n", "events", "at_risk", "censored") and isinstance(value, int):
            assert not 0 < value < 5, (key, value)

    walk(results)


def test_suppression_rule() -> None:
    data = {"n": 3, "events": [0, 1, 7], "hr": 2, "cohort": {"excluded": 4, "remaining": 5}}
    assert suppress_small(data, 5) == {
        "n": None, "events": [0, None, 7], "hr": 2, "cohort": {"excluded": None, "remaining": 5}
    }  # fmt: skip


def test_an_empty_registry_still_writes_results(tmp_path: Path) -> None:
    db = tmp_path / "empty.duckdb"
    init_registry(db)
    results = analyse_registry(db, None, tmp_path, as_of=AS_OF)
    assert results["cohort"]["n"] == 0
    assert "error" in results["outcomes"]["adjacent"]["cox"]["time_varying"]
    json.loads((tmp_path / "results.json").read_text())


def test_a_tiny_registry_shows_no_small_cells(tmp_path: Path) -> None:
    db = registry_with(tmp_path, 12, seed=3)
    results = analyse_registry(db, None, None, as_of=AS_OF)
    cohort = results["cohort"]
    assert cohort["n_treated"] is None and cohort["n_untreated"] is None  # each arm < 5
    km = results["outcomes"]["adjacent"]["km"]
    assert any("fewer than 5" in km[arm].get("error", "") for arm in ("treated", "untreated"))
    for arm in ("treated", "untreated"):  # a curve is shown only for an arm of 5 or more
        assert "error" in km[arm] or km[arm]["n"] >= 5
        cif = results["outcomes"]["adjacent"]["cif"][arm]
        assert ("error" in cif) == ("error" in km[arm])
    for row in results["table1"]:
        for arm in ("treated", "untreated"):
            cell = row[arm]
            assert cell["n"] is None or cell["n"] >= 5
            if cell["n"] is None:
                assert cell.get("percent") is None and cell.get("mean") is None


def test_the_stricter_threshold_of_study_and_settings_wins(tmp_path: Path) -> None:
    db = registry_with(tmp_path, 300, seed=4)
    results = analyse_registry(db, None, None, as_of=AS_OF, min_cell_count=1000)
    assert results["small_cell_threshold"] == 1000
    assert results["cohort"]["n"] is None


def _step(times: list[float], values: list[Any], at: float) -> Any:
    """The value of a right-continuous step curve at a day."""
    return values[bisect.bisect_right(times, at) - 1]


@pytest.mark.parametrize("weighted", [False, True])
def test_km_curves_keep_exact_steps_censorings_and_numbers_at_risk(weighted: bool) -> None:
    rng = np.random.default_rng(7)
    duration = rng.integers(1, 1900, 400).astype(float)
    event = rng.random(400) < 0.3
    weights = rng.uniform(0.5, 2.0, 400) if weighted else None
    with np.errstate(invalid="ignore"):  # the jackknife SE is NaN where the curve hits 0
        full = km.fit_km(duration, event, weights=weights)
    curve = km_result(full)
    times = curve["times_days"]
    assert times[0] == 0.0 and times[-1] == full.times[-1]
    assert len(times) < full.times.size  # censoring-only rows are dropped ...
    for i, t in enumerate(full.times):  # ... and the step functions are unchanged
        for key in ("survival", "ci_lower", "ci_upper"):
            kept, value = _step(times, curve[key], t), getattr(full, key)[i]
            assert kept == value or (np.isnan(kept) and np.isnan(value)), (key, t)
    censored = np.rint(full.censored).astype(int)
    assert curve["censored_times_days"] == full.times[censored > 0].tolist()
    assert curve["censored"] == censored[censored > 0].tolist()
    for year in range(6):  # the report's numbers at risk: at_risk at the first time >= day
        day = round(year * 365.25)
        i = bisect.bisect_left(times, day)
        if i < len(times):
            expected = weights[duration >= day].sum() if weighted else (duration >= day).sum()
            assert curve["at_risk"][i] == round(float(expected)), year


def test_check_counts_equal_the_checks_rows(tmp_path: Path) -> None:
    db = registry_with(tmp_path, 800, seed=3, dirty=0.05)
    con = open_registry(db, read_only=True)
    try:
        expected = summarise_checks(run_checks(con)).to_dicts()
        assert any(row["violations"] for row in expected)  # the dirty registry breaks some
        assert data_quality(con)["checks"] == expected
        counted = read_registry(con).after_death  # counted once, not run again
        assert data_quality(con, counted=counted)["checks"] == expected
    finally:
        con.close()
