"""The multiple-imputation simulation script (benchmarks/mi_simulation.py): which fit is the
pooled one and which the complete case, and the table's arithmetic."""

from __future__ import annotations

import importlib
import math
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "mi_simulation.py"


@pytest.fixture(scope="module")
def sim() -> ModuleType:
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(SCRIPT.parent))
        return importlib.import_module(SCRIPT.stem)


def fit(hr: float, lower: float, upper: float, **extra: object) -> dict[str, object]:
    return {"hr": hr, "ci_lower": lower, "ci_upper": upper, "n": 100, "events": 20, **extra}


def test_pooled_fit_is_the_one_with_an_mi_block(sim: ModuleType) -> None:
    pooled = fit(0.6, 0.4, 0.9, mi={"imputations": 20, "fmi": 0.2, "df": 80.0})
    cc = fit(0.45, 0.3, 0.7)
    found = sim.split_estimates({sim.MODEL: pooled, f"{sim.MODEL}_complete_case": cc})
    assert found == {"pooled": pooled, "complete_case": cc}
    fields = sim.estimate_fields("pooled", found["pooled"])
    assert (fields["pooled_hr"], fields["pooled_fmi"], fields["pooled_imputations"]) == (
        0.6, 0.2, 20)  # fmt: skip


def test_without_imputation_the_model_itself_is_the_complete_case(sim: ModuleType) -> None:
    cc = fit(0.45, 0.3, 0.7)
    assert sim.split_estimates({sim.MODEL: cc}) == {"pooled": None, "complete_case": cc}
    failed = sim.split_estimates({sim.MODEL: {"error": "did not converge"}})
    assert failed == {"pooled": None, "complete_case": None}
    assert sim.estimate_fields("complete_case", None)["complete_case_hr"] is None


def test_summary_bias_sd_width_and_coverage(sim: ModuleType) -> None:
    runs = [
        {"pooled_hr": 0.5, "pooled_ci_lower": 0.4, "pooled_ci_upper": 0.7},
        {"pooled_hr": 0.7, "pooled_ci_lower": 0.5, "pooled_ci_upper": 0.9},
        {"pooled_hr": 0.3, "pooled_ci_lower": 0.2, "pooled_ci_upper": 0.5},
        {"pooled_hr": None, "pooled_ci_lower": None, "pooled_ci_upper": None},
    ]
    row = sim.summarise(runs, "pooled", 0.6)
    logs = [math.log(h) for h in (0.5, 0.7, 0.3)]
    assert (row["runs"], row["estimated"]) == (4, 3)
    assert row["mean_hr"] == pytest.approx(0.5)
    assert row["bias_log_hr"] == pytest.approx(sum(logs) / 3 - math.log(0.6))
    assert row["empirical_sd_log_hr"] == pytest.approx(
        math.sqrt(sum((x - sum(logs) / 3) ** 2 for x in logs) / 2)
    )
    assert row["mean_ci_width_log_hr"] == pytest.approx(
        (math.log(0.7 / 0.4) + math.log(0.9 / 0.5) + math.log(0.5 / 0.2)) / 3
    )
    assert row["coverage"] == pytest.approx(2 / 3)
    assert row["ci_excludes_truth"] == pytest.approx(1 / 3)
    empty = sim.summarise(runs[3:], "pooled", 0.6)
    assert (empty["mean_hr"], empty["coverage"], empty["bias_log_hr"]) == (None, None, None)


def test_table_says_when_nothing_was_pooled(sim: ModuleType) -> None:
    options = sim.parse_args(["--seeds", "1"])
    run = {"seed": 1, "hr": 0.6, "missing_realised": {"bmd_t_score": 0.3}, "seconds": 2.0,
           **sim.estimate_fields("pooled", None),
           **sim.estimate_fields("complete_case", fit(0.45, 0.3, 0.7))}  # fmt: skip
    rows = [sim.summarise([run], name, 0.6) for name in sim.ESTIMATORS]
    page = sim.to_markdown(options, rows, 10.0, [run])
    assert "| complete case | 1 (1) | 0.450 |" in page
    assert "| pooled | 1 (0) | – |" in page
    assert "No pooled estimate" in page
    assert "realised BMD missing 30.0 %" in page


@pytest.mark.slow
def test_one_seed_end_to_end(sim: ModuleType) -> None:
    options = sim.parse_args(["--patients", "600", "--imputations", "2"])
    run = sim.one_run(options, 1)
    assert run["complete_case_hr"] > 0 and run["complete_case_n"] < 600
    assert run["missing_realised"]["bmd_t_score"] == pytest.approx(0.3, abs=0.06)
