"""The target trial beside R (benchmarks/target_trial_versus_r.py and .R): the comparison's
arithmetic, the page, and (slow, with R) our point estimate equal to R's glm + survfit +
coxph on a small synthetic cohort."""

from __future__ import annotations

import argparse
import importlib
import math
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "target_trial_versus_r.py"


@pytest.fixture(scope="module")
def ttr() -> ModuleType:
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(SCRIPT.parent))
        return importlib.import_module(SCRIPT.stem)


def test_contrasts_are_formed_from_the_risks_as_emulate_forms_them(ttr: ModuleType) -> None:
    numbers = {"risk:treat:1": 0.3, "risk:no_treat:1": 0.2, "risk:treat:2": 0.1,
               "risk:no_treat:2": 0.0, "risk:treat:5": 0.4}  # fmt: skip
    out = ttr.with_contrasts(numbers, ["1", "2", "5"])
    assert out["rd:1"] == pytest.approx(0.1) and out["rr:1"] == pytest.approx(1.5)
    assert out["rd:2"] == pytest.approx(0.1) and out["rr:2"] is None  # no ratio over 0
    assert out["rd:5"] is None and out["rr:5"] is None  # no_treat's 5-year risk missing


def test_block_numbers_reads_risks_contrasts_and_log_hazard_ratio(ttr: ModuleType) -> None:
    block = {
        "strategies": {"treat": {"risk": {"1": 0.2}}, "no_treat": {"risk": {"1": 0.1}}},
        "risk_difference": {"1": {"estimate": 0.1}},
        "risk_ratio": {"1": {"estimate": 2.0}},
        "hazard_ratio": {"estimate": math.e},
    }
    assert ttr.block_numbers(block) == {
        "risk:treat:1": 0.2, "risk:no_treat:1": 0.1, "rd:1": 0.1, "rr:1": 2.0, "log_hr": 1.0
    }  # fmt: skip


def test_agreement_names_the_largest_difference_and_one_sided_numbers(ttr: ModuleType) -> None:
    ours = {"risk:treat:1": 0.25, "risk:no_treat:1": 0.5, "risk:treat:5": 0.3, "log_hr": 0.1}
    r = {"risk:treat:1": 0.25 + 1e-6, "risk:no_treat:1": 0.5, "risk:treat:5": None,
         "log_hr": 0.1, "weight_row_max_abs_diff": 3e-11}  # fmt: skip
    groups = {g["group"]: g for g in ttr.agreement({**ours, "weight_row_max_abs_diff": 0.0}, r)}
    risks = groups[ttr.GROUPS["risk"]]
    assert risks["n"] == 3 and risks["where"] == "risk:treat:1"
    assert risks["max_abs"] == pytest.approx(1e-6) and risks["missing"] == ["risk:treat:5"]
    weights = groups[ttr.GROUPS["weight"]]
    # R's own per-row difference is compared with 0 and has no relative difference
    assert weights["max_abs"] == pytest.approx(3e-11) and weights["max_rel"] == 0.0
    assert groups[ttr.GROUPS["log_hr"]]["max_abs"] == 0.0


@settings(deadline=None)  # the shared machine's load, not the code, sets the time per example
@given(
    st.dictionaries(
        st.sampled_from([f"risk:treat:{y}" for y in (1, 2, 5)] + ["log_hr", "coef_den:a"]),
        st.tuples(st.floats(-10, 10), st.floats(-10, 10)),
        min_size=1,
    )
)
def test_agreement_max_is_the_largest_absolute_difference(pairs: dict) -> None:  # type: ignore[type-arg]
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(SCRIPT.parent))
        ttr = importlib.import_module(SCRIPT.stem)
    ours = {k: a for k, (a, _) in pairs.items()}
    r = {k: b for k, (_, b) in pairs.items()}
    found = ttr.agreement(ours, r)
    assert sum(g["n"] for g in found) == len(pairs)
    assert max(g["max_abs"] for g in found) == max(abs(a - b) for a, b in pairs.values())
    assert all(not g["missing"] for g in found)


def test_r_numbers_read_na_and_empty_as_missing(ttr: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "r_numbers.csv"
    path.write_text("name,value\ncoef_den:(Intercept),-2.5\nrisk:treat:5,\nlog_hr,NA\n")
    assert ttr.read_r_numbers(path) == {"coef_den:(Intercept)": -2.5, "risk:treat:5": None,
                                        "log_hr": None}  # fmt: skip
    steps = tmp_path / "r_seconds.csv"
    steps.write_text("step,seconds,cpu\nread,1.5,1.25\nglm,0.5,0.25\nglm,0.7,0.5\n")
    assert ttr.read_r_steps(steps) == {"read": {"seconds": [1.5], "cpu": [1.25]},
                                       "glm": {"seconds": [0.5, 0.7], "cpu": [0.25, 0.5]}}  # fmt: skip


def test_page_has_the_latest_md_columns_and_flags_disagreement(ttr: ModuleType) -> None:
    row = ttr.table_row(10_000, "ours", [1.0, 3.0, 2.0], 512.4, "10 clone", "note")
    assert row == ["10,000", "ours", "2.000", "1.000", "3.000", "512", "10 clone", "n=3; note"]
    timed = ttr.table_row(10_000, "R", [4.0], None, "10 clone", "", [0.2, 0.9, 0.4])
    assert timed[5] == "" and timed[7] == "n=1; CPU 0.400 s; "  # the median CPU seconds
    groups = [
        {"group": "risks", "n": 6, "max_abs": 2e-13, "max_rel": 1e-12, "where": "risk:treat:2",
         "missing": []},
        {"group": "log hazard ratio", "n": 1, "max_abs": 3e-8, "max_rel": 1e-7,
         "where": "log_hr", "missing": []},
        {"group": "coefficients", "n": 2, "max_abs": 0.0, "max_rel": 0.0, "where": "",
         "missing": ["coef_den:vas"]},
    ]  # fmt: skip
    page = ttr.markdown([row], {10_000: groups}, ["- preamble"])
    assert ("| size | case | median s | min s | max s | peak RSS MiB | rows | notes |"
            in page)  # fmt: skip
    lines = {line.split(" | ")[0]: line for line in page.splitlines() if line.startswith("| ")}
    assert lines["| risks"].endswith("| yes |")
    assert lines["| log hazard ratio"].endswith("| **no** |")
    assert "only one side: coef_den:vas" in lines["| coefficients"]
    assert lines["| coefficients"].endswith("| **no** |")


@pytest.mark.slow
def test_our_point_estimate_equals_r_glm_survfit_coxph(ttr: ModuleType, tmp_path: Path) -> None:
    # benchmarks/target_trial_versus_r.R on the rows our estimate is computed from: glm for
    # both initiation models, its own weights, survfit(id = row) risks, coxph log HR
    if ttr.r_ready():
        pytest.skip(f"R not available: {ttr.r_ready()}")
    args = argparse.Namespace(repeats=1, r_repeats=1)
    table, groups = ttr.compare_size(2_000, args, scratch=tmp_path)
    cases = [row[1] for row in table]
    assert cases[:2] == ["inputs (synth, registry, frames)",
                         "ours: point estimate (emulate, 0 replicates)"]  # fmt: skip
    assert {"R: read the CSV files (read.csv)", "R: survfit"} <= set(cases)
    assert all(float(row[2]) > 0 for row in table)  # every case timed
    for group in groups:
        assert group["n"] > 0 and not group["missing"], group
        assert group["max_abs"] <= 1e-8, group
    assert list(tmp_path.iterdir()) == []  # the scratch folder is removed
