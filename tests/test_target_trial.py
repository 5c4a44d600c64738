"""Clone–censor–weight: clone rules, edge cases, weights and the weighted Aalen–Johansen."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.analysis.target_trial import NotEstimable
from registry.analysis.target_trial.clones import build_clones, intervals
from registry.analysis.target_trial.risks import aalen_johansen, target_trial_risks
from registry.analysis.target_trial.weights import Weights, censoring_weights

T0 = dt.date(2024, 1, 1)
GRACE = 56


def cohort(rows: list[tuple[int, int, int | None]], seed: int = 1) -> pl.DataFrame:
    """An outcome frame from (duration_days, event, treat_day) with random covariates."""
    rng = np.random.default_rng(seed)
    n = len(rows)
    return pl.DataFrame(
        {
            "patient_id": [f"P{i:05d}" for i in range(n)],
            "t0": [T0] * n,
            "duration_days": [r[0] for r in rows],
            "event": [r[1] for r in rows],
            "treat_day": [r[2] for r in rows],
            "has_covariates": [True] * n,
            "age": rng.normal(75, 8, n).round(),
            "sex": rng.choice(["F", "M"], n).tolist(),
            "bmd_t_score": rng.normal(-2.8, 0.6, n).round(1),
            "glucocorticoids": rng.random(n) < 0.2,
            "prior_vertebral_fractures": rng.integers(0, 3, n),
            "n_index_levels": rng.integers(1, 3, n),
        },
        schema_overrides={"event": pl.Int8, "treat_day": pl.Int64},
    )


def vas_scores(patients: pl.DataFrame, days: tuple[int, ...] = (3, 14)) -> pl.DataFrame:
    """A VAS and an ODI for every patient on each day."""
    ids = patients.get_column("patient_id").to_list()
    rows = [
        (pid, T0 + dt.timedelta(days=d), instrument, float((i * 7 + d) % 10) * scale)
        for i, pid in enumerate(ids)
        for d in days
        for instrument, scale in (("VAS", 1.0), ("ODI", 10.0))
    ]
    return pl.DataFrame(
        rows, schema=["patient_id", "assessed_on", "instrument", "score"], orient="row"
    )


def mixed(n: int = 60) -> list[tuple[int, int, int | None]]:
    """Untreated, treated within the grace period and treated later, with events and deaths."""
    rng = np.random.default_rng(n)
    out: list[tuple[int, int, int | None]] = []
    for i in range(n):
        treat = [None, int(rng.integers(5, 56)), int(rng.integers(60, 300))][i % 3]
        out.append((int(rng.integers(20, 900)), int(rng.integers(0, 3)), treat))
    return out


def clones_of(rows: list[tuple[int, int, int | None]]) -> pl.DataFrame:
    frame = cohort(rows)
    result = build_clones(frame, vas_scores(frame), grace_days=GRACE)
    assert isinstance(result, pl.DataFrame), result
    return result


def exit_of(clones: pl.DataFrame, patient: int, strategy: str) -> tuple[int, int]:
    rows = clones.filter(pl.col("clone_id") == f"P{patient:05d}:{strategy}")
    return int(rows.get_column("stop")[-1]), int(rows.get_column("event")[-1])


def test_clone_rules() -> None:
    special = [
        (400, 0, None),  # untreated: treat clone censored at the grace period's end
        (30, 1, None),  # event in the grace period before deviating: counts for both clones
        (400, 1, 20),  # treated on day 20: no_treat clone censored there
        (25, 1, 25),  # event on the procedure day: counts as untreated
        (400, 2, 70),  # treated after the grace period: treat clone censored at day 56
    ]
    clones = clones_of(special + mixed())
    assert exit_of(clones, 0, "treat") == (GRACE, 0)
    assert exit_of(clones, 0, "no_treat") == (400, 0)
    assert exit_of(clones, 1, "treat") == (30, 1)
    assert exit_of(clones, 1, "no_treat") == (30, 1)
    assert exit_of(clones, 2, "treat") == (400, 1)
    assert exit_of(clones, 2, "no_treat") == (20, 0)
    assert exit_of(clones, 3, "treat") == (25, 1)
    assert exit_of(clones, 3, "no_treat") == (25, 1)
    assert exit_of(clones, 4, "treat") == (GRACE, 0)
    assert exit_of(clones, 4, "no_treat") == (70, 0)


def test_intervals_are_weekly_in_the_grace_period_then_four_weekly() -> None:
    grid = intervals(GRACE, 200)
    assert grid.get_column("start").to_list() == [0, 7, 14, 21, 28, 35, 42, 49, 56, 84, 112,
                                                  140, 168, 196]  # fmt: skip
    assert grid.filter(pl.col("in_grace")).height == 8
    assert grid.get_column("stop")[-1] >= 200


def test_scores_are_the_latest_on_or_before_the_interval_start() -> None:
    clones = clones_of(mixed())
    first = clones.filter(pl.col("clone_id") == "P00000:no_treat").sort("start")
    vas = dict(zip(first.get_column("start"), first.get_column("vas"), strict=True))
    assert vas[0] is None  # nothing recorded yet on day 0
    assert vas[7] == 3.0  # day 3's score
    assert vas[14] == 4.0  # day 14's score, recorded on the interval's first day


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        ([(400, 0, None)] * 30, "nobody was treated"),
        ([(400, 0, 10)] * 30, "everybody was treated"),
        ([(40, 0, None)] * 15 + [(40, 0, 10)] * 15, "no follow-up goes beyond"),
        ([(400, 0, None), (400, 0, 10)] * 5, "too few patients"),
    ],
)
def test_edge_cases_give_a_reason(rows: list[tuple[int, int, int | None]], reason: str) -> None:
    frame = cohort(rows)
    result = build_clones(frame, vas_scores(frame), grace_days=GRACE)
    assert isinstance(result, NotEstimable)
    assert reason in result.reason


def test_a_grace_period_beyond_follow_up_gives_a_reason() -> None:
    frame = cohort(mixed())
    result = build_clones(frame, vas_scores(frame), grace_days=2000)
    assert isinstance(result, NotEstimable)
    assert "grace period" in result.reason


patient = st.tuples(
    st.integers(1, 700), st.integers(0, 2), st.one_of(st.none(), st.integers(0, 400))
)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(patient, min_size=20, max_size=40).map(lambda r: [*r, (300, 0, 10), (300, 0, None)])
)
def test_clone_rows_tile_each_clone_follow_up(rows: list[tuple[int, int, int | None]]) -> None:
    clones = clones_of(rows)
    by_clone = clones.group_by("clone_id").agg(
        pl.col("start").first().alias("first"),
        (pl.col("start").slice(1) == pl.col("stop").slice(0, pl.len() - 1)).all().alias("tiled"),
        (pl.col("event").slice(0, pl.len() - 1) == 0).all().alias("only_last"),
        pl.col("stop").last(),
        pl.col("strategy").first(),
        pl.col("treat_day").first(),
        pl.col("duration_days").first(),
    )
    assert by_clone.get_column("first").eq(0).all()
    assert by_clone.get_column("tiled").all() and by_clone.get_column("only_last").all()
    assert (by_clone.get_column("stop") <= by_clone.get_column("duration_days")).all()
    no_treat = by_clone.filter(
        (pl.col("strategy") == "no_treat") & pl.col("treat_day").is_not_null()
    )
    beyond = by_clone.filter((pl.col("strategy") == "treat") & (pl.col("stop") > GRACE))
    assert (beyond.get_column("treat_day") <= GRACE).all()  # null never passes the filter
    assert beyond.get_column("treat_day").null_count() == 0
    late = no_treat.filter(pl.col("treat_day") < pl.col("duration_days"))
    assert (late.get_column("stop") <= late.get_column("treat_day")).all()


def weights_of(rows: list[tuple[int, int, int | None]], percentile: float = 99.0) -> Weights:
    frame = cohort(rows)
    scores = vas_scores(frame)
    clones = build_clones(frame, scores, grace_days=GRACE)
    assert isinstance(clones, pl.DataFrame)
    result = censoring_weights(clones, scores, percentile=percentile)
    assert isinstance(result, Weights), result
    return result


def test_weights_follow_each_strategy_adherence() -> None:
    result = weights_of(mixed(150))
    rows = result.rows
    assert (rows.get_column("w_raw") >= 1.0).all()
    in_grace = rows.filter((pl.col("strategy") == "treat") & pl.col("in_grace"))
    assert in_grace.get_column("w_raw").eq(1.0).all()  # no treat clone deviates before day 56
    first = rows.filter(pl.col("start") == 0)
    assert first.get_column("w_raw").eq(1.0).all() and first.get_column("sw_raw").eq(1.0).all()
    # a clone's weights never fall: its probability of remaining uncensored only shrinks
    falls = rows.group_by("clone_id").agg((pl.col("w_raw").diff() < -1e-12).any().alias("f"))
    assert not falls.get_column("f").any()
    assert set(result.summary.get_column("weight")) == {"w", "sw"}


def test_truncation_caps_at_the_percentile() -> None:
    result = weights_of(mixed(150), percentile=90.0)
    rows, summary = result.rows, result.summary
    cap = summary.filter(pl.col("weight") == "w").get_column("cap")[0]
    assert cap == pytest.approx(np.percentile(rows.get_column("w_raw").to_numpy(), 90.0))
    assert rows.get_column("w").max() == pytest.approx(cap)
    kept = rows.filter(pl.col("w_raw") <= cap)
    assert (kept.get_column("w") == kept.get_column("w_raw")).all()


def test_aalen_johansen_by_hand() -> None:
    # four clones: event at 2 (weight 1), death at 3 (weight 2), censored at 4, event at 5
    rows = pl.DataFrame(
        {
            "start": [0, 0, 0, 0],
            "stop": [2, 3, 4, 5],
            "event": [1, 2, 0, 1],
            "w": [1.0, 2.0, 1.0, 1.0],
        }
    )
    curve = aalen_johansen(rows, "w")
    # t=2: at risk 5, CIF 1/5; t=3: at risk 4, S=4/5*(1-2/4)=2/5; t=5: at risk 1, CIF += 2/5
    assert curve.get_column("cif").to_list() == pytest.approx([0.2, 0.2, 0.6])
    assert curve.get_column("cif_death").to_list() == pytest.approx([0.0, 0.4, 0.4])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 50), st.integers(1, 60), st.integers(0, 2), st.floats(0.1, 10.0)),
        min_size=1,
        max_size=40,
    ),
    st.floats(0.1, 10.0),
)
def test_aalen_johansen_states_sum_to_one_and_weights_scale_freely(
    rows: list[tuple[int, int, int, float]], scale: float
) -> None:
    frame = pl.DataFrame(
        [(a, a + b, c, w) for a, b, c, w in rows],
        schema=["start", "stop", "event", "w"],
        orient="row",
    )
    curve = aalen_johansen(frame, "w")
    total = curve.get_column("cif") + curve.get_column("cif_death") + curve.get_column("survival")
    assert np.allclose(total.to_numpy(), 1.0)
    scaled = aalen_johansen(frame.with_columns(pl.col("w") * scale), "w")
    assert np.allclose(scaled.get_column("cif").to_numpy(), curve.get_column("cif").to_numpy())


def test_risks_beyond_follow_up_are_none_and_no_events_give_a_reason() -> None:
    rows = pl.DataFrame(
        {
            "strategy": ["treat", "treat", "no_treat", "no_treat"],
            "start": [0, 0, 0, 0],
            "stop": [100, 500, 200, 800],
            "event": [1, 0, 1, 0],
            "sw": [1.0] * 4,
        }
    )
    result = target_trial_risks(rows)
    assert isinstance(result, tuple)
    table = result[1]
    one = table.filter(pl.col("year") == 1).row(0, named=True)
    assert one["treat"] == pytest.approx(0.5) and one["no_treat"] == pytest.approx(0.5)
    assert one["rd"] == pytest.approx(0.0) and one["rr"] == pytest.approx(1.0)
    two = table.filter(pl.col("year") == 2).row(0, named=True)
    assert two["treat"] is None and two["rd"] is None and two["no_treat"] == pytest.approx(0.5)
    silent = target_trial_risks(rows.with_columns(pl.lit(0).alias("event")))
    assert isinstance(silent, NotEstimable) and "treat" in silent.reason
