"""The replicate engine and emulate(): agreement with the frame-by-frame path, the bootstrap,
the contrasts, the verdicts and the not-estimable cases."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.analysis.target_trial.clones import build_clones
from registry.analysis.target_trial.engine import (
    TREAT,
    fit_glm,
    marginal_uncensored,
    prepare,
    run,
    weighted_percentile,
)
from registry.analysis.target_trial.estimate import (
    emulate,
    non_inferiority,
    not_estimable,
)
from registry.analysis.target_trial.hazard import HazardRatio, weighted_hazard_ratio
from registry.analysis.target_trial.protocol import Protocol
from registry.analysis.target_trial.risks import target_trial_risks
from registry.analysis.target_trial.weights import (
    Weights,
    censoring_weights,
    fit_logistic,
    model_frame,
)
from registry.compute import ProcessRunner
from tests.test_target_trial import GRACE, cohort, mixed, vas_scores

YEARS = (1, 2)


def frames(n: int = 240, seed: int = 3) -> tuple[pl.DataFrame, pl.DataFrame]:
    """An outcome frame with follow-up past two years and its scores."""
    rng = np.random.default_rng(seed)
    rows = [
        (
            int(rng.integers(20, 1000)),
            int(rng.choice([0, 1, 2], p=[0.6, 0.25, 0.15])),
            [None, int(rng.integers(15, 56)), int(rng.integers(60, 300))][int(rng.integers(0, 3))],
        )
        for _ in range(n)
    ]
    frame = cohort(rows, seed)
    return frame, vas_scores(frame)


@pytest.fixture(scope="module")
def prepared():  # type: ignore[no-untyped-def]
    frame, scores = frames()
    clones = build_clones(frame, scores, grace_days=GRACE)
    assert isinstance(clones, pl.DataFrame)
    return clones, scores, prepare(clones, scores, YEARS)


@pytest.mark.parametrize("percentile", [100.0, 99.0])
def test_engine_risks_equal_the_frame_path(prepared, percentile: float) -> None:  # type: ignore[no-untyped-def]
    clones, scores, prep = prepared
    protocol = Protocol(weights="unstabilised", truncation_percentile=percentile, years=YEARS)
    ours = run(prep, protocol, np.ones(prep.n_patients), None)
    weights = censoring_weights(clones, scores, percentile=percentile)
    assert isinstance(weights, Weights)
    result = target_trial_risks(weights.rows, weight="w")
    assert isinstance(result, tuple)
    table = result[1]
    for year in YEARS:
        row = table.filter(pl.col("year") == year)
        for strategy in ("treat", "no_treat"):
            assert ours.risks[strategy][year] == pytest.approx(row[strategy][0], abs=1e-12)


def test_stabilising_changes_no_risk_and_is_constant_per_strategy_and_interval(prepared) -> None:  # type: ignore[no-untyped-def]
    _, _, prep = prepared
    ones = np.ones(prep.n_patients)
    raw = run(
        prep, Protocol(weights="unstabilised", truncation_percentile=100.0, years=YEARS), ones, None
    )
    stab = run(
        prep, Protocol(weights="stabilised", truncation_percentile=100.0, years=YEARS), ones, None
    )
    for strategy in ("treat", "no_treat"):
        for year in YEARS:
            assert stab.risks[strategy][year] == pytest.approx(raw.risks[strategy][year], abs=1e-12)
    ratio = pl.DataFrame(
        {"s": prep.row_strategy, "k": prep.row_interval, "r": stab.w_raw / raw.w_raw}
    )
    spread = ratio.group_by("s", "k").agg((pl.col("r").max() - pl.col("r").min()).alias("d"))
    assert spread.get_column("d").max() < 1e-12  # type: ignore[operator]
    # before the grace period ends, nobody can have been censored from the treat strategy
    p = np.full(prep.n_intervals, 0.1)
    numerator = marginal_uncensored(prep, p)
    in_grace = (prep.row_strategy == TREAT) & (prep.row_interval <= prep.last_grace)
    assert np.all(numerator[in_grace] == 1.0)


def test_newton_logistic_equals_statsmodels(prepared) -> None:  # type: ignore[no-untyped-def]
    _, _, prep = prepared
    act = prep.init_active
    ours = fit_glm(prep.init_y[act], prep.init_x[act], np.ones(act.size), None)
    frame = pl.DataFrame(prep.init_x[act][:, 1:], schema=prep.den_names[1:], orient="row")
    theirs = fit_logistic(prep.init_y[act], frame, prep.den_names[1:])
    assert ours == pytest.approx(theirs.coef_, abs=1e-9)


@pytest.mark.parametrize("percentile", [100.0, 95.0])
def test_efron_hazard_ratio_equals_the_row_cox_model(prepared, percentile: float) -> None:  # type: ignore[no-untyped-def]
    clones, scores, prep = prepared
    protocol = Protocol(weights="unstabilised", truncation_percentile=percentile, years=YEARS)
    ours = run(prep, protocol, np.ones(prep.n_patients), None)
    weights = censoring_weights(clones, scores, percentile=percentile)
    assert isinstance(weights, Weights)
    theirs = weighted_hazard_ratio(weights.rows, "w")
    assert isinstance(theirs, HazardRatio)
    assert ours.log_hr == pytest.approx(theirs.coef, abs=1e-9)


@given(st.lists(st.integers(0, 4), min_size=1, max_size=40), st.floats(50, 100))
@settings(max_examples=60, deadline=None)
def test_weighted_percentile_is_the_percentile_of_the_repeated_values(
    counts: list[int], q: float
) -> None:
    values = np.arange(len(counts), dtype=float) * 1.5 + 1
    freq = np.array(counts)
    if freq.sum() == 0:
        freq[0] = 1
    expected = np.percentile(np.repeat(values, freq), q)
    assert weighted_percentile(values, freq, q) == pytest.approx(expected, abs=1e-12)


def test_frequency_weights_equal_duplicated_patients() -> None:
    frame, scores = frames(120, seed=5)
    doubled_ids = frame.head(30).with_columns(pl.col("patient_id") + "b")
    doubled = pl.concat([frame, doubled_ids])
    doubled_scores = pl.concat(
        [scores, scores.join(frame.head(30).select("patient_id"), on="patient_id")
         .with_columns(pl.col("patient_id") + "b")]
    )  # fmt: skip
    protocol = Protocol(years=YEARS, truncation_percentile=97.0)
    one = build_clones(frame, scores, grace_days=GRACE)
    two = build_clones(doubled, doubled_scores, grace_days=GRACE)
    assert isinstance(one, pl.DataFrame) and isinstance(two, pl.DataFrame)
    prep_one, prep_two = prepare(one, scores, YEARS), prepare(two, doubled_scores, YEARS)
    freq = np.ones(prep_one.n_patients)
    ids = prep_one.patient_ids
    first30 = set(frame.head(30).get_column("patient_id").to_list())
    freq[[k for k, pid in enumerate(ids) if pid in first30]] = 2
    a = run(prep_one, protocol, freq, None)
    b = run(prep_two, protocol, np.ones(prep_two.n_patients), None)
    assert a.coef_den == pytest.approx(b.coef_den, abs=1e-9)
    assert a.cap == pytest.approx(b.cap, abs=1e-12)
    for strategy in ("treat", "no_treat"):
        for year in YEARS:
            assert a.risks[strategy][year] == pytest.approx(b.risks[strategy][year], abs=1e-12)


def test_emulate_gives_the_whole_block_reproducibly_and_the_same_through_processes() -> None:
    frame, scores = frames()
    protocol = Protocol(years=YEARS, replicates=30, seed=11, margin_year=2)
    first = emulate(frame, scores, protocol, outcome="adjacent")
    again = emulate(frame, scores, protocol, outcome="adjacent")
    spread = emulate(frame, scores, protocol, outcome="adjacent", runner=ProcessRunner(2))
    assert json.dumps(first) == json.dumps(again) == json.dumps(spread)
    assert first["status"] == "estimated" and first["reason"] is None
    assert set(first) == set(not_estimable("x", protocol, 0))  # the same keys either way
    assert first["bootstrap"] == {"replicates": 30, "succeeded": 30, "seed": 11}
    for year in ("1", "2"):
        rd = first["risk_difference"][year]
        treat, no_treat = (first["strategies"][s]["risk"][year] for s in ("treat", "no_treat"))
        assert rd["estimate"] == pytest.approx(treat - no_treat, abs=1e-15)
        assert rd["ci_lower"] <= rd["ci_upper"]
        assert first["risk_ratio"][year]["estimate"] == pytest.approx(treat / no_treat)
        low, high = first["strategies"]["treat"]["ci"][year]
        assert 0 <= low <= high <= 1
    curve = first["strategies"]["treat"]["curve"]
    assert len(curve["day"]) == len(curve["risk"]) == len(curve["lower"]) == len(curve["upper"])
    assert all(np.diff(curve["risk"]) >= 0)
    hr = first["hazard_ratio"]
    assert hr["ci_lower"] <= hr["ci_upper"] and hr["estimate"] > 0
    assert first["e_value"]["point"] >= 1 and first["e_value"]["ci"] >= 1
    diag = first["diagnostics"]
    assert {row["strategy"] for row in diag["censored"]} == {"treat", "no_treat"}
    treat_rows = [r for r in diag["censored"] if r["strategy"] == "treat"]
    assert treat_rows[0]["at_risk"] == first["patients"]
    deviating = [r for r in treat_rows if r["censored"] > 0]  # only at the grace period's end
    assert [r["stop"] for r in deviating] == [GRACE]
    assert diag["balance"] and 0 <= diag["positivity"]["share_within"] <= 1
    assert first["strategies"]["treat"]["at_risk"]["n"][0] == first["patients"]


def test_a_different_seed_gives_different_intervals_and_the_same_point() -> None:
    frame, scores = frames()
    a, b = (
        emulate(frame, scores, Protocol(years=YEARS, replicates=25, seed=s, margin_year=2),
                outcome="adjacent")
        for s in (1, 2)
    )  # fmt: skip
    assert a["risk_difference"]["1"]["estimate"] == b["risk_difference"]["1"]["estimate"]
    assert a["risk_difference"]["1"]["ci_lower"] != b["risk_difference"]["1"]["ci_lower"]


def test_no_replicates_gives_points_without_intervals() -> None:
    frame, scores = frames()
    protocol = Protocol(years=YEARS, replicates=0, margin_year=2)
    block = emulate(frame, scores, protocol, outcome="adjacent")
    assert block["risk_difference"]["1"]["estimate"] is not None
    assert block["risk_difference"]["1"]["ci_lower"] is None
    assert block["strategies"]["treat"]["ci"]["1"] is None
    assert block["non_inferiority"]["verdict"] == "not estimable"


@pytest.mark.parametrize(
    ("rows", "grace", "reason"),
    [
        ([(400, i % 3, None) for i in range(60)], GRACE, "nobody was treated"),
        ([(400, i % 3, 20) for i in range(60)], GRACE, "everybody was treated"),
        ([(40, i % 3, [None, 20][i % 2]) for i in range(60)], GRACE, "grace period"),
        (mixed(8), GRACE, "too few patients"),
        (mixed(60), 950, "grace period"),  # longer than every follow-up
        ([(400, i % 3, [None, 20][i % 2]) for i in range(60)], GRACE, "last week"),
    ],
)
def test_cohorts_the_design_cannot_answer_give_a_reason_and_no_number(
    rows: list[tuple[int, int, int | None]], grace: int, reason: str
) -> None:
    frame = cohort(rows)
    block = emulate(
        frame, vas_scores(frame), Protocol(grace_days=grace, replicates=5), outcome="adjacent"
    )
    assert block["status"] == "not_estimable" and reason in block["reason"]
    numbers = json.dumps({k: v for k, v in block.items() if k not in ("patients", "reason")})
    assert block["hazard_ratio"]["estimate"] is None
    assert all(v is None for s in block["strategies"].values() for v in s["risk"].values())
    assert '"estimate": null' in numbers and block["non_inferiority"]["verdict"] == "not estimable"


def test_not_estimable_blocks_share_no_mutable_parts() -> None:
    block = not_estimable("why", Protocol(), 3)
    block["strategies"]["treat"]["risk"]["1"] = 0.5
    block["risk_difference"]["1"]["estimate"] = 0.5
    assert block["strategies"]["no_treat"]["risk"]["1"] is None
    assert block["risk_ratio"]["1"]["estimate"] is None


@pytest.mark.parametrize(
    ("scale", "margin", "upper", "verdict"),
    [
        ("difference", 0.05, 0.049, "non-inferior"),
        ("difference", 0.05, 0.05, "not shown"),
        ("difference", 0.05, None, "not estimable"),
        ("ratio", 1.25, 1.2, "non-inferior"),
        ("ratio", 1.25, 1.3, "not shown"),
    ],
)
def test_non_inferiority_compares_the_upper_bound_with_the_margin(
    scale: str, margin: float, upper: float | None, verdict: str
) -> None:
    protocol = Protocol(margin=margin, margin_scale=scale, margin_year=5)  # type: ignore[arg-type]
    contrast = {"5": {"estimate": 0.0, "ci_lower": -0.01, "ci_upper": upper}}
    result = non_inferiority(protocol, contrast, contrast)
    assert result["verdict"] == verdict and result["upper_bound"] == upper
    assert result["margin"] == margin and result["at_year"] == 5 and result["scale"] == scale
    assert math.isfinite(margin)


def test_model_frame_names_match_the_engine_design(prepared) -> None:  # type: ignore[no-untyped-def]
    clones, _, prep = prepared
    assert prep.den_names[0] == "(Intercept)"
    assert set(prep.den_names[1:]) <= set(model_frame(clones.head(3)).columns) | {"weeks"}
    assert prep.num_names[1:] == [n for n in ("weeks", "after_grace") if n in prep.num_names]
