"""layout.prepare_outcome builds, from the outcome frame alone, exactly the arrays that
engine.prepare reads off the clone frame (every field, every order: the bootstrap's patients
included), on hand-made cohorts of every shape and on a synthetic tv-confounding cohort."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.analysis.target_trial import NotEstimable
from registry.analysis.target_trial.clones import build_clones
from registry.analysis.target_trial.engine import Prepared, prepare
from registry.analysis.target_trial.estimate import clones_at_risk
from registry.analysis.target_trial.layout import prepare_outcome
from registry.errors import ModelFitError
from tests.test_target_trial import GRACE, T0, cohort, mixed, vas_scores
from tests.test_target_trial_pinned import pinned_inputs

YEARS = (1, 2, 5)


def both(frame: pl.DataFrame, scores: pl.DataFrame) -> tuple[object, object]:
    """(frame path, array path): a Prepared, a NotEstimable reason or the error's message."""

    def attempt(build):  # type: ignore[no-untyped-def]
        try:
            return build()
        except ModelFitError as error:
            return f"ModelFitError: {error}"

    def frame_path():  # type: ignore[no-untyped-def]
        clones = build_clones(frame, scores, grace_days=GRACE)
        return clones if isinstance(clones, NotEstimable) else prepare(clones, scores, YEARS)

    ours = attempt(lambda: prepare_outcome(frame, scores, grace_days=GRACE, years=YEARS))
    return attempt(frame_path), ours


def assert_same(expected: object, ours: object) -> None:
    if not isinstance(expected, Prepared):
        assert ours == expected
        return
    assert isinstance(ours, Prepared)
    for field in dataclasses.fields(Prepared):
        a, b = getattr(expected, field.name), getattr(ours, field.name)
        if field.name == "axes":
            for axis_a, axis_b in zip(a, b, strict=True):
                for part in dataclasses.fields(axis_a):
                    assert np.array_equal(getattr(axis_a, part.name), getattr(axis_b, part.name))
        elif isinstance(a, np.ndarray):
            assert a.shape == b.shape, field.name
            assert np.array_equal(a, b, equal_nan=True), field.name
        else:
            assert a == b, field.name


def test_the_arrays_equal_the_frame_path_on_a_synthetic_cohort() -> None:
    frame, scores = pinned_inputs()
    assert_same(*both(frame, scores))


def test_clones_at_risk_counts_the_clone_frame_exits() -> None:
    frame = cohort(mixed(120))
    scores = vas_scores(frame)
    clones = build_clones(frame, scores, grace_days=GRACE)
    prep = prepare_outcome(frame, scores, grace_days=GRACE, years=YEARS)
    assert isinstance(clones, pl.DataFrame) and isinstance(prep, Prepared)
    days = [0, 30, 56, 57, 200, 365, 730]
    for strategy in ("treat", "no_treat"):
        exits = (
            clones.filter(pl.col("strategy") == strategy)
            .group_by("clone_id")
            .agg(pl.col("stop").max())
            .get_column("stop")
            .to_numpy()
        )
        expected = [exits.size if d == 0 else int(np.sum(exits >= d)) for d in days]
        assert clones_at_risk(prep, strategy, days) == {"day": days, "n": expected}


def test_scores_before_t0_missing_scores_and_ids_that_sort_apart_as_clone_ids() -> None:
    frame = cohort(mixed(90)).with_columns(  # "P1:..." sorts after "P10:...": a different order
        pl.Series("patient_id", [f"P{i}" for i in range(90)])
    )
    scores = vas_scores(frame, days=(-20, 3, 30, 200)).filter(pl.col("patient_id") != "P7")
    assert_same(*both(frame, scores))


def test_no_scores_at_all() -> None:
    frame = cohort(mixed(60))
    assert_same(*both(frame, vas_scores(frame).clear()))


rows_strategy = st.lists(
    st.tuples(
        st.integers(1, 900),
        st.integers(0, 2),
        st.one_of(st.none(), st.integers(0, 60), st.integers(0, 950)),
    ),
    min_size=1,  # the helper cannot type an empty frame; emulate's empty case: other tests
    max_size=70,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=rows_strategy, days=st.lists(st.integers(-30, 400), min_size=1, max_size=4, unique=True)
)
def test_any_cohort_gives_the_same_arrays_reason_or_error(
    rows: list[tuple[int, int, int | None]], days: list[int]
) -> None:
    frame = cohort(rows)
    scores = vas_scores(frame, days=tuple(days))
    assert_same(*both(frame, scores))


@pytest.mark.parametrize("t0_shift", [0, 400])
def test_patients_with_their_own_time_zero(t0_shift: int) -> None:
    frame = cohort(mixed(80)).with_columns(
        pl.Series("t0", [T0 + dt.timedelta(days=(i * 37) % 97 + t0_shift) for i in range(80)])
    )
    assert_same(*both(frame, vas_scores(frame, days=(3, 14, 100))))
