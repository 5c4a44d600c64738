"""Complementary suppression (registry/privacy/suppression.py, registry/privacy/protect.py) and the published
curves (registry/analysis/publish.py) on small hand-made inputs and random ones."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.analysis.curves import _cif, _km
from registry.analysis.publish import published_km, withheld_years
from registry.models import km
from registry.privacy.protect import protect
from registry.privacy.suppression import Cells
from registry.report.format import describe

K = 5


def attrition(rows: list[tuple[int, int, int, int]]) -> list[dict[str, Any]]:
    """(excluded, remaining, treated, conservative) per step; the last one applies to all."""
    return [
        {"step": i, "rule": f"rule {i}", "excluded": e, "remaining": r, "remaining_treated": t,
         "remaining_conservative": c, "applies_to": "all"}
        for i, (e, r, t, c) in enumerate(rows)
    ]  # fmt: skip


def results_with(rows: list[tuple[int, int, int, int]], **extra: Any) -> dict[str, Any]:
    last = rows[-1]
    cohort = {"n": last[1], "n_treated": last[2], "n_untreated": last[3]}
    return {"cohort": cohort | {"attrition": attrition(rows)}, "outcomes": {}, "table1": [],
            "data_quality": {}, "pro": {}} | extra  # fmt: skip


def test_the_flow_hides_a_step_from_which_a_small_exclusion_follows() -> None:
    # "Registered 58 ... excluded 2 -> 56 remain": 58 - 56 would give the 2 back
    out = protect(results_with([(0, 58, 30, 28), (2, 56, 30, 26)]), K)
    flow = out["cohort"]["attrition"]
    assert flow[1]["excluded"] is None  # the small cell itself
    assert flow[0]["remaining"] is None or flow[1]["remaining"] is None
    assert flow[0]["remaining_conservative"] is None or flow[1]["remaining_conservative"] is None
    assert out["cohort"]["n"] == 56  # the cohort size is the last thing hidden
    assert "/cohort/attrition/0/remaining" in out["withheld"]


def test_nothing_is_withheld_when_no_count_is_small() -> None:
    out = protect(results_with([(0, 60, 30, 30), (10, 50, 25, 25)]), K)
    assert out["withheld"] == [] and out["cohort"]["attrition"][0]["remaining"] == 60


def test_a_small_arm_hides_a_complement_and_no_arm_follows_from_the_cohort() -> None:
    out = protect(results_with([(0, 40, 3, 37)]), K)
    c = out["cohort"]
    assert c["n_untreated"] is None or c["n"] is None


def test_table_one_count_of_20_with_a_complement_of_4_is_withheld_never_a_bound() -> None:
    cell = {"n": 24, "missing": 0, "count": 20, "percent": None}
    table1 = [{"variable": "female", "label": "Women", "binary": True, "treated": dict(cell),
               "untreated": {"n": 30, "missing": 0, "count": 15, "percent": 50.0}}]  # fmt: skip
    out = protect(results_with([(0, 54, 24, 30)], table1=table1), K)
    treated = out["table1"][0]["treated"]
    assert treated["count"] is None or treated["n"] is None
    assert treated["percent"] is None
    text = describe(treated, True, K)
    assert "<5" not in text and ("withheld" in text or text.startswith("20"))


def test_the_solver_protects_a_sum_of_two_small_hidden_cells() -> None:
    cells = Cells(K)
    total = cells.add("total", 50, ("t",))
    parts = [cells.add(n, v, (n,)) for n, v in (("a", 2), ("b", 1), ("c", 47))]
    cells.relate(total, parts)
    hidden = cells.solve()
    assert ("c",) in hidden or ("t",) in hidden  # a + b = 3 would follow otherwise


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 2000), st.booleans()), min_size=1, max_size=120),
    st.sampled_from([5, 10]),
)
def test_published_curves_step_by_at_least_k_events_and_count_in_multiples_of_k(
    rows: list[tuple[int, bool]], k: int
) -> None:
    duration = np.array([d for d, _ in rows], dtype=float)
    event = np.array([e for _, e in rows])
    fit = km.fit_km(duration, event)
    shown = published_km(fit, k)
    assert np.all(shown.events % k == 0) and np.all(shown.censored % k == 0)
    assert np.all(shown.at_risk % k == 0)
    steps = np.flatnonzero(np.diff(shown.survival) != 0) + 1
    assert np.all(shown.events[steps] >= k)
    # what a reader derives, n x (1 - S/S-), is the rounded count, a multiple of k
    with np.errstate(divide="ignore", invalid="ignore"):
        derived = shown.at_risk[steps] * (1 - shown.survival[steps] / shown.survival[steps - 1])
    rest = derived[np.isfinite(derived)] % k
    assert np.all((rest < 1e-6) | (rest > k - 1e-6))
    result = _km(duration, event, None, k)
    assert result["n"] == len(rows) and result["total_events"] == int(event.sum())
    assert all(c % k == 0 and c > 0 for c in result["censored"])
    assert result["median_days"] == fit.median  # the models stay exact


def test_values_at_years_are_withheld_after_fewer_than_k_new_events() -> None:
    days = np.array([100.0, 200, 300, 400, 500, 800])  # 3 by year 1, 5 by 2, 6 by 3
    assert withheld_years(days, np.ones(6), km.YEARS_DAYS, 5) == [True, False, True, True, True]
    assert withheld_years(days[:2], np.ones(2), km.YEARS_DAYS, 5) == [True] * 5
    assert withheld_years(days[:0], np.ones(0), km.YEARS_DAYS, 5) == [False] * 5


def test_cumulative_incidence_is_drawn_from_rounded_counts() -> None:
    rng = np.random.default_rng(1)
    duration = rng.integers(1, 1800, 60).astype(float)
    status = rng.choice([0, 1, 2], 60, p=[0.6, 0.25, 0.15])
    out = _cif(duration, status, 1, 5)
    assert out["cif"][0] == 0 and len(out["times_days"]) == len(out["cif"])
    steps = np.diff(out["cif"])
    assert np.all(steps > 0)  # one step per rounded batch of events
    assert len(out["times_days"]) - 1 <= -(-int((status == 1).sum()) // 5)


def test_values_at_years_listed_as_withheld_are_left_out_of_the_published_results() -> None:
    curve = {"survival_at_years": {"1": 0.9, "2": 0.8}, "ci_lower_at_years": {"1": 0.8, "2": 0.7},
             "withheld_years": ["2"]}  # fmt: skip
    results = results_with([(0, 60, 30, 30)])
    results["outcomes"] = {"adjacent": {"km": {"treated": curve}, "cif": {"treated": {
        "at_years": {"1": 0.1, "2": 0.2}, "withheld_years": ["1"]}}}}  # fmt: skip
    out = protect(results, K)["outcomes"]["adjacent"]
    assert out["km"]["treated"]["survival_at_years"] == {"1": 0.9, "2": None}
    assert out["km"]["treated"]["ci_lower_at_years"] == {"1": 0.8, "2": None}
    assert out["cif"]["treated"]["at_years"] == {"1": None, "2": 0.2}
    assert curve["survival_at_years"]["2"] == 0.8  # the analysis result itself stays exact


def pro_change(values: np.ndarray) -> dict[str, Any]:
    """A paired PRO summary as registry.analysis.pro publishes it (follow-up minus baseline)."""
    from scipy import stats

    n, mean, sd = values.size, float(values.mean()), float(values.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / np.sqrt(n)
    return {"n": n, "baseline_mean": 7.0, "baseline_sd": 1.0, "followup_mean": 7.0 + mean,
            "followup_sd": 1.0, "change_mean": mean, "change_sd": sd,
            "change_ci_lower": mean - half, "change_ci_upper": mean + half,
            "p_ttest": float(stats.ttest_1samp(values, 0.0).pvalue),
            "p_wilcoxon": float(stats.wilcoxon(values).pvalue)}  # fmt: skip


def n_from_interval(change: dict[str, Any]) -> int | None:
    """The attacker: the n whose t-interval with this SD has the published half-width."""
    from scipy import stats

    if change["change_ci_upper"] is None or change["change_sd"] is None:
        return None
    half = change["change_ci_upper"] - change["change_mean"]
    n = np.arange(2, 200)
    found = n[np.abs(stats.t.ppf(0.975, n - 1) * change["change_sd"] / np.sqrt(n) - half) < 1e-9]
    return int(found[0]) if found.size else None


@settings(max_examples=25, deadline=None)
@given(arm=st.integers(8, 60), without=st.integers(1, K - 1), seed=st.integers(0, 1000))
def test_a_withheld_pro_n_cannot_be_worked_back_from_its_interval_or_tests(
    arm: int, without: int, seed: int
) -> None:
    # an arm of `arm` patients of whom `without` have no one-month visit: the paired n is
    # withheld (arm - n is small), so neither its t-interval nor its p-values may give it back
    values = np.random.default_rng(seed).normal(-3.0, 2.0, arm - without).round(1)
    pro = {"VAS": {"treated": pro_change(values), "untreated": pro_change(values[:4])}}
    rows = [(0, arm + 40, arm, 40)]
    out = protect(results_with(rows, pro=pro), K)
    for change in out["pro"]["VAS"].values():
        if change["n"] is None:
            assert n_from_interval(change) is None
            assert change["p_ttest"] is None and change["p_wilcoxon"] is None
    assert out["pro"]["VAS"]["treated"]["n"] is None
    assert out["pro"]["VAS"]["treated"]["change_mean"] == pro["VAS"]["treated"]["change_mean"]


def test_a_models_error_message_publishes_no_count() -> None:
    """'no events among 24 rows' would give back the n the model's cell withholds."""
    from registry.privacy.protect import redact_error_counts

    tree = {
        "outcomes": {
            "adjacent": {
                "cox": {
                    "iptw": {
                        "error": "no events among 1,024 rows: a Cox model needs at least one."
                    },
                    "landmark": {"hr": 0.9, "n": 24},
                }
            }
        }
    }
    redact_error_counts(tree)
    cox = tree["outcomes"]["adjacent"]["cox"]
    assert cox["iptw"]["error"] == "no events among n rows: a Cox model needs at least one."
    assert cox["landmark"] == {"hr": 0.9, "n": 24}
    arm = {"error": "fewer than 5 patients in this arm: not shown"}
    redact_error_counts(arm)
    assert arm["error"] == "fewer than 5 patients in this arm: not shown"


@given(
    st.integers(1, 6).flatmap(
        lambda cols: st.lists(
            st.lists(st.sampled_from([-1.0, 0.0, 1.0]), min_size=cols, max_size=cols),
            min_size=1,
            max_size=8,
        )
    )
)
@settings(max_examples=200, deadline=None)
def test_one_svd_finds_the_determined_cells_that_matrix_rank_finds(rows: list[list[float]]) -> None:
    """The solver's one-SVD test equals the definition: e_i adds no rank to the relations."""

    from registry.privacy.suppression import _in_row_space

    matrix = np.array(rows)
    rank = np.linalg.matrix_rank(matrix)
    expected = [
        np.linalg.matrix_rank(np.vstack([matrix, np.eye(matrix.shape[1])[i]])) == rank
        for i in range(matrix.shape[1])
    ]
    assert _in_row_space(matrix).tolist() == expected
