"""Invariants of the time-to-event frames on random small registries (hypothesis)."""

from __future__ import annotations

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.db import connect
from registry.levels import LEVELS
from registry.migrate import apply_migrations
from registry.study import Study
from tests.registry_rows import T0, add, build, day

days = st.integers(min_value=-30, max_value=2200)
levels = st.sampled_from(LEVELS)
one_patient = st.fixed_dictionaries(
    {
        "index": st.lists(st.tuples(levels, st.sampled_from(["osteoporotic"] * 8 + ["malignant"]),
                                    st.integers(0, 20)), min_size=0, max_size=3,
                          unique_by=lambda t: t[0]),
        "fractures": st.lists(st.tuples(levels, days), max_size=4, unique=True),
        "procedures": st.lists(st.tuples(levels, days, st.sampled_from(["vertebroplasty", "kyphoplasty"])),
                               max_size=3, unique_by=lambda t: (t[0], t[1])),
        "contacts": st.lists(st.tuples(days, st.sampled_from(["alive"] * 6 + ["dead", "lost", "withdrawn"])),
                             max_size=5, unique_by=lambda t: t[0]),
    }
)  # fmt: skip


def load(patients: list[dict]) -> object:  # type: ignore[type-arg]
    con = connect()
    apply_migrations(con)
    for i, p in enumerate(patients):
        pid = f"P{i}"
        add(con, "patients", (pid, "S1", "F", 1945, -2.5, False, 0))
        for level, etiology, offset in p["index"]:
            add(con, "index_fractures", (pid, level, day(offset), etiology, 1))
        for level, offset in p["fractures"]:
            add(con, "fractures", (pid, level, day(offset), "clinical"))
        for level, offset, kind in p["procedures"]:
            add(con, "procedures", (pid, level, day(offset), kind, 3.0, "none"))
        for offset, status in p["contacts"]:
            add(con, "follow_up", (pid, day(offset), status))
    return con


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patients=st.lists(one_patient, max_size=12), landmark=st.integers(0, 400))
def test_time_to_event_invariants(patients: list[dict], landmark: int) -> None:  # type: ignore[type-arg]
    con = load(patients)
    study = Study(landmark_days=landmark, treatment_procedures=("vertebroplasty", "kyphoplasty"))
    cohort, tte = build(con, study)  # type: ignore[arg-type]
    out, cp = tte.outcomes, tte.counting
    # durations are positive and within the horizon
    assert (out["duration_days"] > 0).all() and (out["duration_days"] <= 1826).all()
    # one row, hence at most one event, per patient and outcome
    assert out.select("patient_id", "outcome").is_duplicated().sum() == 0
    assert out.height == cohort.patients.height * len(study.outcomes)
    # intervals are contiguous, start at 0, end at duration_days; events only on the last
    g = cp.sort("outcome", "patient_id", "start").group_by(
        "outcome", "patient_id", maintain_order=True
    )
    shape = g.agg(
        pl.col("start").first().alias("first_start"),
        pl.col("stop").last().alias("last_stop"),
        (pl.col("start").slice(1) == pl.col("stop").slice(0, pl.len() - 1))
        .all()
        .alias("contiguous"),
        (pl.col("event").slice(0, pl.len() - 1) == 0).all().alias("no_early_event"),
        (pl.col("stop") > pl.col("start")).all().alias("positive"),
        pl.col("event").last().alias("event"),
        (pl.col("stop") - pl.col("start")).sum().alias("time"),
    )
    both = shape.join(out, on=["outcome", "patient_id"], how="full", coalesce=True)
    assert both.height == out.height
    assert (both["first_start"] == 0).all() and (both["last_stop"] == both["duration_days"]).all()
    assert both["contiguous"].all() and both["no_early_event"].all() and both["positive"].all()
    # ever-treated and counting-process frames agree on events and total follow-up
    assert (both["event"] == both["event_right"]).all()
    assert both["time"].sum() == out["duration_days"].sum()
    events = cp.filter(pl.col("event") > 0)["event"].value_counts().sort("event").rows()
    assert events == out.filter(pl.col("event") > 0)["event"].value_counts().sort("event").rows()
    # landmark rows: event-free and under follow-up at the landmark
    assert (tte.landmark["duration_days"] > 0).all()
    assert tte.landmark.height == out.filter(pl.col("duration_days") > landmark).height
    # every patient enters the attrition table exactly once
    assert cohort.attrition["excluded"][1:5].sum() + cohort.patients.height == len(patients)
    assert (out["t0"] >= T0).all()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patients=st.lists(one_patient, max_size=12), landmark=st.integers(0, 400))
def test_one_outcomes_frames_are_its_rows_of_every_outcomes_frames(
    patients: list[dict],  # type: ignore[type-arg]
    landmark: int,
) -> None:
    """tte.of(name) builds one outcome's frames on their own (the models let each go after
    its fits): they are exactly that outcome's rows of the frames of every outcome, in order."""
    con = load(patients)
    study = Study(landmark_days=landmark, treatment_procedures=("vertebroplasty", "kyphoplasty"))
    _, tte = build(con, study)  # type: ignore[arg-type]
    whole = {"outcomes": tte.outcomes, "counting": tte.counting, "landmark": tte.landmark}
    for name in study.outcomes:
        one = tte.of(name)
        assert one.names == (name,)
        for frame, rows in whole.items():
            expected = rows.filter(pl.col("outcome") == name)
            assert getattr(one, frame).equals(expected), (name, frame)
    assert pl.concat([tte.of(n).outcomes for n in study.outcomes]).equals(whole["outcomes"])
