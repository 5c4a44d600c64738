"""engine.run's shortcuts against their definitions on a prepared cohort: the at-risk sums
by bins, the censoring factors and stabilising numerator read from tables, the numerator
model on one row per interval, the point fit's subsample start, the 100th percentile
without the repeated copy, and the initiation rows of inactive intervals dropped."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.analysis.target_trial import engine
from registry.analysis.target_trial.clones import build_clones
from registry.analysis.target_trial.engine import (
    NO_TREAT,
    TREAT,
    Prepared,
    at_risk_sums,
    censoring_factors,
    fit_glm,
    interval_totals,
    prepare,
    run,
    weighted_percentile,
)
from registry.analysis.target_trial.protocol import Protocol
from registry.analysis.target_trial.weights import initiation_rows
from tests.test_target_trial import GRACE
from tests.test_target_trial_estimate import frames

YEARS = (1, 2)


@pytest.fixture(scope="module")
def prepared() -> tuple[pl.DataFrame, pl.DataFrame, Prepared]:
    frame, scores = frames()
    clones = build_clones(frame, scores, grace_days=GRACE)
    assert isinstance(clones, pl.DataFrame)
    return clones, scores, prepare(clones, scores, YEARS)


def row_starts(prep: Prepared) -> np.ndarray:
    return prep.interval_start[prep.row_interval].astype(float)


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=25, deadline=None)
def test_at_risk_sums_are_the_weights_of_the_rows_at_risk(prepared, seed: int) -> None:  # type: ignore[no-untyped-def]
    _, _, prep = prepared
    w = np.random.default_rng(seed).exponential(size=prep.row_stop.size)
    w[np.random.default_rng(seed + 1).random(w.size) < 0.3] = 0.0  # undrawn patients
    ours = at_risk_sums(prep, w)
    start = row_starts(prep)
    for code in (TREAT, NO_TREAT):
        mine = prep.row_strategy == code
        brute = np.array([w[mine & (start < t) & (prep.row_stop >= t)].sum() for t in prep.times])
        assert ours[code] == pytest.approx(brute, rel=1e-12, abs=1e-9)


def test_censoring_factors_follow_the_clone_rows(prepared) -> None:  # type: ignore[no-untyped-def]
    _, _, prep = prepared
    p = np.random.default_rng(1).random(prep.init_y.size)
    factor = censoring_factors(prep, p)
    key = dict(
        zip(zip(prep.init_patient.tolist(), prep.init_interval.tolist(), strict=True),
            p.tolist(), strict=True)
    )  # fmt: skip
    for r in range(prep.row_stop.size):
        own = key.get((int(prep.row_patient[r]), int(prep.row_interval[r])))
        if prep.row_strategy[r] == NO_TREAT:
            expected = 1.0 - own if own is not None else 1.0
        else:
            at_last = prep.row_interval[r] == prep.last_grace and own is not None
            expected = own if at_last else 1.0
        assert factor[r] == expected


def test_the_model_keeps_only_intervals_with_a_start(prepared) -> None:  # type: ignore[no-untyped-def]
    clones, scores, prep = prepared
    every = initiation_rows(clones, scores)
    started = every.filter(pl.col("initiated").max().over("interval") == 1)
    assert prep.init_y.size == started.height < every.height
    assert np.array_equal(prep.init_active, np.arange(prep.init_y.size))
    assert set(np.unique(prep.init_interval).tolist()) == set(prep.model_intervals.tolist())


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=20, deadline=None)
def test_the_numerator_on_interval_totals_is_the_fit_on_rows(prepared, seed: int) -> None:  # type: ignore[no-untyped-def]
    _, _, prep = prepared
    freq = (
        np.random.default_rng(seed)
        .multinomial(prep.n_patients, np.full(prep.n_patients, 1 / prep.n_patients))
        .astype(float)
    )
    f_init = freq[prep.init_patient]
    position = np.searchsorted(prep.model_intervals, prep.init_interval)
    rows_x = prep.interval_x_num[position]
    try:
        on_rows = fit_glm(prep.init_y, rows_x, f_init, None)
    except engine.ModelFitError:
        return  # a replicate whose draw cannot fit either way
    on_totals = fit_glm(*interval_totals(prep, f_init), None)
    assert on_totals == pytest.approx(on_rows, abs=1e-10)


def test_the_subsample_start_gives_the_cold_fit(prepared, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    _, _, prep = prepared
    protocol = Protocol(years=YEARS)
    cold = run(prep, protocol, np.ones(prep.n_patients), None)
    monkeypatch.setattr(engine, "GUESS_ROWS", 700)  # every 3rd row
    assert engine.first_guess(prep.init_y, prep.init_x, np.ones(prep.init_y.size)) is not None
    warm = run(prep, protocol, np.ones(prep.n_patients), None)
    assert warm.coef_den == pytest.approx(cold.coef_den, abs=1e-12)
    for strategy in ("treat", "no_treat"):
        for year in YEARS:
            assert warm.risks[strategy][year] == pytest.approx(
                cold.risks[strategy][year], abs=1e-12
            )


@given(st.lists(st.integers(0, 3), min_size=1, max_size=50), st.integers(0, 10_000))
@settings(max_examples=60, deadline=None)
def test_the_100th_percentile_is_the_largest_drawn_value(counts: list[int], seed: int) -> None:
    values = np.random.default_rng(seed).exponential(size=len(counts))
    freq = np.array(counts, dtype=float)
    if freq.sum() == 0:
        freq[0] = 1
    expected = np.percentile(np.repeat(values, freq.astype(np.int64)), 100.0)
    assert weighted_percentile(values, freq, 100.0) == expected


def test_prepared_arrays_are_narrow(prepared) -> None:  # type: ignore[no-untyped-def]
    _, _, prep = prepared
    for field in dataclasses.fields(Prepared):
        value = getattr(prep, field.name)
        narrow = field.name.startswith(("row_", "last_", "init_patient", "init_interval"))
        if narrow and isinstance(value, np.ndarray) and value.dtype.kind == "i":
            assert value.dtype.itemsize <= 4, field.name
