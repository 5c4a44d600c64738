"""The prepared refits over completed datasets (registry/analysis/imputed_fits.py) against the
joined path they replace (with_covariates + outcome.adjusted_fits), model by model."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.analysis import imputed_fits
from registry.analysis.hazards import IPTWParts
from registry.analysis.imputation import Imputations
from registry.analysis.missing import impute_covariates, joined_fits, pool_models, pool_outcomes
from registry.analysis.outcome import ADJUSTED
from registry.cohort import read_registry
from registry.compute import ProcessRunner
from registry.migrate import apply_migrations
from registry.missing_data import MissingData
from registry.models.iptw import Propensity, design_matrix
from registry.pipeline import build_frames
from registry.study import Study
from registry.synth import generate_cohort
from registry.time_to_event import TimeToEvent

TOL = 1e-10  # relative: the prepared path repeats the joined path's arithmetic


@pytest.fixture(scope="module")
def case() -> tuple[TimeToEvent, Imputations, Study]:
    """A synthetic registry with BMD and glucocorticoids missing at random, imputed 3 times."""
    con = duckdb.connect(":memory:")
    apply_migrations(con)
    cohort_tables = generate_cohort(patients=1200, seed=5, missing="mar", missing_rate=0.3)
    for name, table in cohort_tables.tables.items():
        con.register("frame", table)
        con.execute(f"INSERT INTO {name} SELECT * FROM frame")
        con.unregister("frame")
    study = dataclasses.replace(Study(), missing_data=MissingData(imputations=3, iterations=3))
    cohort, tte = build_frames(read_registry(con), study)
    imputations = impute_covariates(cohort, tte, study)
    assert imputations is not None and len(imputations.completed) == 3
    return tte, imputations, study


def frames_of(tte: TimeToEvent, name: str) -> list[pl.DataFrame]:
    return [f.filter(pl.col("outcome") == name) for f in (tte.outcomes, tte.counting,
                                                          tte.landmark)]  # fmt: skip


def assert_same(ours: Any, theirs: Any, path: str = "") -> int:
    """Equal structures, numbers to TOL relative; returns how many numbers were compared."""
    if isinstance(theirs, dict):
        assert set(ours) == set(theirs), path
        return sum(assert_same(ours[k], theirs[k], f"{path}/{k}") for k in theirs)
    if isinstance(theirs, list | tuple):
        assert len(ours) == len(theirs), path
        return sum(assert_same(a, b, f"{path}[{i}]") for i, (a, b) in
                   enumerate(zip(ours, theirs, strict=True)))  # fmt: skip
    if isinstance(theirs, IPTWParts | Propensity):
        names = [f.name for f in dataclasses.fields(theirs)]
        return sum(assert_same(getattr(ours, n), getattr(theirs, n), f"{path}.{n}") for n in names)
    if isinstance(theirs, pl.DataFrame):  # IPTW rows: only what the weighted curves read
        assert set(ours.columns) <= set(theirs.columns) and ours.height == theirs.height, path
        if path.endswith(".rows"):
            assert {"duration_days", "event", "treated"} <= set(ours.columns)
        else:
            assert ours.columns == theirs.columns, path
        mine, want = ours.to_dict(as_series=False), theirs.select(ours.columns)
        return assert_same(mine, want.to_dict(as_series=False), path)
    if isinstance(theirs, np.ndarray):
        np.testing.assert_allclose(ours, theirs, rtol=TOL, atol=1e-300, err_msg=path)
        return int(theirs.size)
    if isinstance(theirs, float) and not isinstance(ours, bool):
        assert ours == pytest.approx(theirs, rel=TOL, abs=1e-300, nan_ok=True), path
        return 1
    assert ours == theirs, path
    return 1


def test_every_model_on_every_imputation_equals_the_joined_fit(
    case: tuple[TimeToEvent, Imputations, Study],
) -> None:
    """For every outcome, model and completed dataset: the same fit (HR, SE, CI, p, n,
    events, every term, the IPTW scores, weights, balance and rows) to 1e-10."""
    tte, imputations, study = case
    for name in study.outcomes:
        frames = frames_of(tte, name)
        prepared = imputed_fits.prepare((frames[0], frames[1], frames[2]), imputations.completed,
                                        study)  # fmt: skip
        assert prepared is not None
        for k, completed in enumerate(imputations.completed):
            ours = imputed_fits.with_iptw_rows(imputed_fits.fit_imputation(prepared, k), prepared)
            theirs = joined_fits(name, frames, completed, study)
            assert set(ours) == set(ADJUSTED)
            for model in ADJUSTED:
                assert "error" not in theirs[model], (name, model, theirs[model])
                compared = assert_same(ours[model], theirs[model], f"{name}/{k}/{model}")
                assert compared > 10, (name, model)


def test_pooled_over_processes_equals_the_joined_path(
    case: tuple[TimeToEvent, Imputations, Study],
) -> None:
    """pool_outcomes through two worker processes = pooling the joined fits (1e-10)."""
    tte, imputations, study = case
    ours = pool_outcomes(tte, imputations, study, runner=ProcessRunner(2))
    for name in study.outcomes:
        frames = frames_of(tte, name)
        fits = [joined_fits(name, frames, c, study) for c in imputations.completed]
        theirs = pool_models(fits, study)
        assert_same(ours[name], theirs, name)
        assert ours[name]["adjusted"]["mi"]["imputations"] == 3


def test_a_failing_model_fails_as_on_the_joined_frames(
    case: tuple[TimeToEvent, Imputations, Study],
) -> None:
    """No deaths: the death model's error is the joined path's, word for word; the others fit."""
    tte, imputations, study = case
    frames = frames_of(tte, study.outcomes[0])
    frames[1] = frames[1].with_columns(pl.col("event").replace(2, 0))
    prepared = imputed_fits.prepare((frames[0], frames[1], frames[2]), imputations.completed,
                                    study)  # fmt: skip
    assert prepared is not None
    ours = imputed_fits.fit_imputation(prepared, 0)
    theirs = joined_fits(study.outcomes[0], frames, imputations.completed[0], study)
    assert "no events" in theirs["death_cause_specific"]["error"]
    assert ours["death_cause_specific"] == theirs["death_cause_specific"]
    assert "error" not in ours["adjusted"]


def test_datasets_that_differ_in_missingness_take_the_joined_path(
    case: tuple[TimeToEvent, Imputations, Study],
) -> None:
    """A dataset that left a value missing, or lists the patients in another order, is not
    prepared; pool_outcomes then pools the joined fits (the same numbers, the order aside)."""
    tte, imputations, study = case
    first = imputations.completed[0]
    holey = first.with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(None).otherwise(pl.col("bmd_t_score"))
        .alias("bmd_t_score")
    )  # fmt: skip
    frames = frames_of(tte, study.outcomes[0])
    assert imputed_fits.prepare((frames[0], frames[1], frames[2]), [first, holey], study) is None
    reordered = first.reverse()
    assert imputed_fits.prepare((frames[0], frames[1], frames[2]), [first, reordered],
                                study) is None  # fmt: skip
    one = dataclasses.replace(study, outcomes=study.outcomes[:1])
    joined = pool_outcomes(tte, dataclasses.replace(imputations, completed=(first, reordered)), one)
    prepared = pool_outcomes(tte, dataclasses.replace(imputations, completed=(first, first)), one)
    assert_same(joined, prepared)


def test_prepared_rows_are_the_complete_rows_once_imputed(
    case: tuple[TimeToEvent, Imputations, Study],
) -> None:
    """Every patient with a missing value is kept once imputed: each model has the rows of
    its frame (the piecewise model its split rows), each mapped to its own patient."""
    tte, imputations, study = case
    frames = frames_of(tte, study.outcomes[0])
    prepared = imputed_fits.prepare((frames[0], frames[1], frames[2]), imputations.completed,
                                    study)  # fmt: skip
    assert prepared is not None
    ids = imputations.completed[0].get_column("patient_id")
    sizes = {"adjusted": frames[0].height, "time_varying_adjusted": frames[1].height,
             "iptw": frames[2].height, "death_cause_specific": frames[1].height}  # fmt: skip
    for model, rows in prepared.models.items():
        assert not isinstance(rows.layout, Exception)
        if model in sizes:
            assert rows.layout.n_rows == sizes[model] == rows.patients.size, model
    adjusted = prepared.models["adjusted"]
    assert ids.gather(adjusted.patients).to_list() == frames[0]["patient_id"].to_list()
    assert prepared.models["piecewise"].layout.n_rows > frames[1].height  # type: ignore[union-attr]


covariate_values = st.lists(
    st.tuples(st.one_of(st.none(), st.floats(-5, 5)), st.one_of(st.none(), st.booleans()),
              st.sampled_from(["F", "M", None])),
    min_size=1, max_size=30,
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(first=covariate_values, data=st.data())
def test_covariate_store_gives_back_every_dataset(first: list[Any], data: st.DataObject) -> None:
    """Whatever the datasets hold (nulls, NaN-free floats, booleans, sex), matrix(k) is
    exactly design_matrix of dataset k."""
    n = len(first)
    others = data.draw(st.lists(covariate_values.filter(lambda v: len(v) == n), min_size=0,
                                max_size=3))  # fmt: skip
    schema = {"bmd_t_score": pl.Float64, "glucocorticoids": pl.Boolean, "sex": pl.Utf8}
    covariates = ("bmd_t_score", "glucocorticoids", "sex")
    frames = [pl.DataFrame(rows, schema=schema, orient="row") for rows in (first, *others)]
    store = imputed_fits.covariate_store(frames, covariates)
    assert store.names == ("bmd_t_score", "glucocorticoids", "male")
    for k, frame in enumerate(frames):
        want = design_matrix(frame, covariates)[0]
        got = store.matrix(k)
        assert got.shape == want.shape
        assert np.array_equal(got, want, equal_nan=True)
    assert store.values.shape[0] == len(frames)
    assert all(math.isfinite(v) for v in store.values.ravel() if not np.isnan(v))


def test_a_stored_layout_error_does_not_keep_earlier_fits_alive() -> None:
    # raised for every completed dataset: each raise starts a fresh traceback, so the frames
    # (and covariate copies) of the earlier failed fits are not kept by the one exception
    rows = imputed_fits.Rows(ValueError("no events"), np.zeros(3, dtype=np.int64), np.zeros((3, 1)))
    depths = []
    for _ in range(3):
        try:
            imputed_fits._layout(rows)
        except ValueError as exc:
            tb, depth = exc.__traceback__, 0
            while tb is not None:
                tb, depth = tb.tb_next, depth + 1
            depths.append(depth)
    assert depths == [depths[0]] * 3 and depths[0] <= 2
