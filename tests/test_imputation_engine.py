"""The chained-equations engine: invariants (hypothesis), reproducibility, statistical sanity,
the auxiliary predictors against lifelines, and an end-to-end run on a registry's cohort."""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lifelines import NelsonAalenFitter

from registry.analysis.imputation import auxiliary_frame, impute, with_covariates
from registry.analysis.imputation.auxiliary import nelson_aalen_at
from registry.analysis.imputation.chained import match_donors
from registry.cohort import read_registry
from registry.compute import ProcessRunner
from registry.db import connect
from registry.migrate import apply_migrations
from registry.missing_data import MissingData
from registry.pipeline import build_frames
from registry.study import COVARIATES, Study
from registry.synth import generate_cohort
from tests.registry_rows import T0, add, build, contact, fracture, patient, procedure

SPEC = MissingData(imputations=3, iterations=3, seed=7)


def cohort_frame(n: int, seed: int, shares: dict[str, float]) -> pl.DataFrame:
    """A cohort-like patients frame with the study covariates' dtypes, `shares` missing."""
    rng = np.random.default_rng(seed)
    age = rng.integers(55, 95, n)
    bmd = rng.normal(-2.5, 1.0, n) - 0.03 * (age - 75)
    frame = pl.DataFrame({
        "patient_id": [f"P{i:04d}" for i in range(n)],
        "age": pl.Series(age, dtype=pl.Int32),
        "sex": np.where(rng.random(n) < 0.25, "M", "F"),
        "bmd_t_score": np.round(bmd, 1),
        "glucocorticoids": rng.random(n) < 0.2 + 0.1 * (bmd < -3),
        "prior_vertebral_fractures": rng.poisson(0.7, n),
        "n_index_levels": pl.Series(rng.integers(1, 4, n), dtype=pl.Int32),
    })  # fmt: skip
    holes = {c: rng.random(n) < share for c, share in shares.items()}
    return frame.with_columns(
        pl.when(pl.Series(mask)).then(None).otherwise(pl.col(c)).alias(c)
        for c, mask in holes.items()
    )


def aux_frame(patients: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Random fully observed auxiliary predictors."""
    rng = np.random.default_rng(seed)
    n = patients.height
    return pl.DataFrame({
        "patient_id": patients["patient_id"],
        "treated": pl.Series(rng.integers(0, 2, n), dtype=pl.Int8),
        "died": pl.Series(rng.integers(0, 2, n), dtype=pl.Int8),
        "hazard_adjacent": rng.exponential(0.2, n),
    })  # fmt: skip


MISSING = st.fixed_dictionaries(
    {},
    optional={
        c: st.floats(0.05, 0.5)
        for c in ("bmd_t_score", "glucocorticoids", "prior_vertebral_fractures", "sex")
    },
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(20, 70), seed=st.integers(0, 10_000), shares=MISSING)
def test_imputation_invariants(n: int, seed: int, shares: dict[str, float]) -> None:
    patients = cohort_frame(n, seed, shares)
    result = impute(patients, aux_frame(patients, seed), COVARIATES, SPEC)
    missing = result.missing
    assert missing.columns == ["patient_id", *COVARIATES]
    if not any(patients[c].null_count() for c in COVARIATES):
        assert result.completed == () and result.variables == () and result.notes == ()
        return
    if not result.variables:  # too few observed rows for every incomplete covariate
        assert result.completed == () and result.notes
        return
    assert len(result.completed) == SPEC.imputations
    for done in result.completed:
        assert done.columns == ["patient_id", *COVARIATES]
        assert done.schema == patients.schema  # dtypes kept (booleans stay booleans)
        assert done["patient_id"].to_list() == patients["patient_id"].to_list()
        for c in COVARIATES:
            observed = ~missing[c]
            # observed values never change
            assert done[c].filter(observed).to_list() == patients[c].filter(observed).to_list()
            if c in result.variables:
                assert done[c].null_count() == 0
                if result.methods[c] == "pmm":  # a donor's observed value
                    seen = set(patients[c].drop_nulls().to_list())
                    assert set(done[c].filter(missing[c]).to_list()) <= seen
            else:
                assert done[c].null_count() == patients[c].null_count()
    assert result.chains.height == SPEC.imputations * SPEC.iterations * len(result.variables)


def test_methods_predictors_and_chains() -> None:
    patients = cohort_frame(300, 1, {"bmd_t_score": 0.3, "glucocorticoids": 0.15})
    result = impute(patients, aux_frame(patients, 1), COVARIATES, SPEC)
    assert result.variables == ("bmd_t_score", "glucocorticoids")
    assert result.methods == {"bmd_t_score": "pmm", "glucocorticoids": "logreg"}
    assert result.predictors["bmd_t_score"] == (
        "age", "male", "glucocorticoids", "prior_vertebral_fractures", "n_index_levels",
        "treated", "died", "hazard_adjacent",
    )  # fmt: skip
    assert "bmd_t_score" in result.predictors["glucocorticoids"]
    chains = result.chains
    assert chains.columns == ["imputation", "iteration", "variable", "mean", "sd"]
    first = chains.filter((pl.col("imputation") == 0) & (pl.col("iteration") == SPEC.iterations))
    done = result.completed[0]
    imputed = done["bmd_t_score"].filter(result.missing["bmd_t_score"])
    row = first.filter(pl.col("variable") == "bmd_t_score").row(0, named=True)
    assert row["mean"] == pytest.approx(imputed.mean())
    assert row["sd"] == pytest.approx(imputed.std())


def test_same_seed_same_draws_other_seed_other_draws() -> None:
    patients = cohort_frame(200, 2, {"bmd_t_score": 0.3, "glucocorticoids": 0.2})
    aux = aux_frame(patients, 2)
    one = impute(patients, aux, COVARIATES, SPEC)
    again = impute(patients, aux, COVARIATES, SPEC)
    other = impute(patients, aux, COVARIATES, MissingData(imputations=3, iterations=3, seed=8))
    for a, b in zip(one.completed, again.completed, strict=True):
        assert a.equals(b)
    assert one.chains.equals(again.chains)
    for a, b in zip(one.completed, other.completed, strict=True):
        assert not a.equals(b)
    # and the imputations of one run differ from each other
    assert not one.completed[0].equals(one.completed[1])


def test_serial_equals_processes() -> None:
    patients = cohort_frame(150, 3, {"bmd_t_score": 0.3, "sex": 0.1, "age": 0.05})
    aux = aux_frame(patients, 3)
    serial = impute(patients, aux, COVARIATES, SPEC)
    threaded = impute(patients, aux, COVARIATES, SPEC, runner=ProcessRunner(2))
    assert len(serial.completed) == len(threaded.completed) == SPEC.imputations
    for a, b in zip(serial.completed, threaded.completed, strict=True):
        assert a.equals(b)
    assert serial.chains.equals(threaded.chains)


def test_nothing_missing_imputes_nothing() -> None:
    patients = cohort_frame(40, 4, {})
    result = impute(patients, aux_frame(patients, 4), COVARIATES, SPEC)
    assert result.completed == () and result.variables == () and result.chains.is_empty()
    assert result.missing.select(pl.exclude("patient_id").any()).row(0) == (False,) * 6


def test_variables_not_allowed_or_not_estimable_stay_null_with_a_note() -> None:
    patients = cohort_frame(100, 5, {"bmd_t_score": 0.3, "glucocorticoids": 0.2})
    patients = patients.with_columns(
        pl.lit(None, dtype=pl.Int64).alias("prior_vertebral_fractures")
    )
    spec = MissingData(imputations=2, iterations=2, variables=("bmd_t_score",
                       "prior_vertebral_fractures"))  # fmt: skip
    result = impute(patients, aux_frame(patients, 5), COVARIATES, spec)
    assert result.variables == ("bmd_t_score",)
    assert "glucocorticoids" not in result.predictors["bmd_t_score"]
    done = result.completed[0]
    assert done["glucocorticoids"].null_count() == patients["glucocorticoids"].null_count()
    assert done["prior_vertebral_fractures"].null_count() == 100
    assert any(n.startswith("glucocorticoids: not in missing_data.variables") for n in result.notes)
    assert any(n.startswith("prior_vertebral_fractures: not imputed (no observed value)")
               for n in result.notes)  # fmt: skip


def test_too_few_observed_rows_are_not_imputed() -> None:
    patients = cohort_frame(30, 6, {"glucocorticoids": 0.9})
    result = impute(patients, aux_frame(patients, 6), COVARIATES, SPEC)
    assert result.variables == () and result.completed == ()
    assert "fewer than its" in result.notes[0]


def test_constant_and_collinear_predictors_do_not_crash() -> None:
    patients = cohort_frame(80, 7, {"bmd_t_score": 0.3, "glucocorticoids": 0.2})
    patients = patients.with_columns(pl.lit(2, dtype=pl.Int32).alias("n_index_levels"))
    aux = aux_frame(patients, 7).with_columns(
        (pl.col("treated") * 2).alias("treated_twice"), pl.lit(1).alias("everyone")
    )
    result = impute(patients, aux, COVARIATES, SPEC)
    assert all(d["bmd_t_score"].null_count() == 0 for d in result.completed)


def test_separated_binary_variable_does_not_crash() -> None:
    patients = cohort_frame(120, 8, {"glucocorticoids": 0.2})
    patients = patients.with_columns(
        pl.when(pl.col("glucocorticoids").is_not_null())
        .then(pl.col("age") > 75)
        .alias("glucocorticoids")
    )
    result = impute(patients, aux_frame(patients, 8), COVARIATES, SPEC)
    assert all(d["glucocorticoids"].null_count() == 0 for d in result.completed)


def test_match_donors_picks_among_the_nearest() -> None:
    rng = np.random.default_rng(0)
    observed = rng.normal(size=500)
    query = rng.normal(size=300)
    found = match_donors(observed, query, 5, np.random.default_rng(1))
    distance = np.abs(observed[found] - query)
    fifth = np.sort(np.abs(observed[None, :] - query[:, None]), axis=1)[:, 4]
    assert np.all(distance <= fifth + 1e-12)
    few = match_donors(observed[:3], query, 5, np.random.default_rng(1))
    assert set(few.tolist()) <= {0, 1, 2}


def test_slope_is_recovered_and_complete_case_mean_is_biased() -> None:
    """x2 = 1 + 0.8 x1 + N(0, 1), 40 % of x2 missing at random given x1 (more often when x1
    is high). With n = 2000 the full-data slope has SE 1/sqrt(2000) = 0.022 and the imputed
    one about 1/sqrt(0.6 * 2000) = 0.029 (the missing rows add little information about the
    slope): the tolerance 0.1 is 3.4 SE. The complete-case mean of x2 is biased by about
    0.8 x (mean x1 of the observed) = -0.3; the imputed mean must be within 0.08 of the
    full data's (about 3 SE of the mean's imputation error)."""
    rng = np.random.default_rng(2026)
    n = 2000
    x1 = rng.normal(size=n)
    x2 = 1 + 0.8 * x1 + rng.normal(size=n)
    gone = rng.random(n) < 1 / (1 + np.exp(-(np.log(0.4 / 0.6) + 1.2 * x1)))
    patients = pl.DataFrame({
        "patient_id": [str(i) for i in range(n)],
        "x1": x1,
        "x2": pl.Series(np.where(gone, np.nan, x2)).fill_nan(None),
    })  # fmt: skip
    assert 0.35 < gone.mean() < 0.45
    result = impute(patients, patients.select("patient_id"), ("x1", "x2"),
                    MissingData(imputations=10, iterations=5, seed=3))  # fmt: skip
    slopes, means = [], []
    for done in result.completed:
        y = done["x2"].to_numpy()
        slopes.append(np.polyfit(x1, y, 1)[0])
        means.append(y.mean())
    assert abs(np.mean(slopes) - 0.8) < 0.1
    assert abs(x2[~gone].mean() - x2.mean()) > 0.2  # complete case: biased
    assert abs(np.mean(means) - x2.mean()) < 0.08  # imputed: not


def test_nelson_aalen_equals_lifelines_at_each_time() -> None:
    rng = np.random.default_rng(4)
    durations = rng.integers(1, 60, 400)  # many ties
    events = rng.random(400) < 0.4
    fitter = NelsonAalenFitter(nelson_aalen_smoothing=False).fit(durations, events)
    expected = fitter.cumulative_hazard_at_times(durations).to_numpy()
    np.testing.assert_allclose(nelson_aalen_at(durations, events), expected, rtol=1e-12)
    assert nelson_aalen_at(np.array([], dtype=int), np.array([], dtype=bool)).size == 0


def test_auxiliary_frame_on_a_tiny_registry(con: duckdb.DuckDBPyConnection) -> None:
    patient(con, "A", "T12")
    add(con, "patients", ("B", "S2", "M", 1950, None, True, 0))
    add(con, "index_fractures", ("B", "L2", T0, "osteoporotic", 2))
    patient(con, "C", "L1")
    procedure(con, "A", "T12", 10)
    fracture(con, "A", "L1", 100)  # adjacent
    contact(con, "A", 400)
    contact(con, "B", 200, "dead")
    contact(con, "C", 300)
    study = Study(outcomes=("adjacent", "remote"), primary_outcome="adjacent")
    cohort, tte = build(con, study)
    aux = auxiliary_frame(cohort, tte, study)
    assert aux["patient_id"].to_list() == ["A", "B", "C"]
    assert aux.columns == ["patient_id", "treated", "treat_years", "site_S2", "died",
                           "event_adjacent", "hazard_adjacent", "event_remote",
                           "hazard_remote"]  # fmt: skip
    assert aux["treated"].to_list() == [1, 0, 0]
    assert aux["treat_years"].to_list() == pytest.approx([10 / 365.25, 0.0, 0.0])
    assert aux["site_S2"].to_list() == [0, 1, 0]
    assert aux["died"].to_list() == [0, 1, 0]
    assert aux["event_adjacent"].to_list() == [1, 0, 0]
    assert aux["event_remote"].to_list() == [0, 0, 0]
    # adjacent: the one event at day 100 with 3 at risk; everyone's time is >= 100
    assert aux["hazard_adjacent"].to_list() == pytest.approx([1 / 3, 1 / 3, 1 / 3])
    assert aux["hazard_remote"].to_list() == [0.0, 0.0, 0.0]


def test_with_covariates_keeps_row_order_and_recomputes_the_flag() -> None:
    frame = pl.DataFrame({
        "patient_id": ["B", "A", "B", "C"],
        "start": [0, 0, 5, 0],
        "age": [70, 80, 70, 60],
        "bmd_t_score": [None, -2.0, None, -1.0],
        "has_covariates": [False, True, False, True],
    })  # fmt: skip
    completed = pl.DataFrame({
        "patient_id": ["A", "B", "C"], "age": [80, 70, 60], "bmd_t_score": [-2.0, -3.5, -1.0],
    })  # fmt: skip
    done = with_covariates(frame, completed)
    assert done.columns == frame.columns
    assert done["patient_id"].to_list() == ["B", "A", "B", "C"]
    assert done["start"].to_list() == [0, 0, 5, 0]
    assert done["bmd_t_score"].to_list() == [-3.5, -2.0, -3.5, -1.0]
    assert done["has_covariates"].to_list() == [True] * 4
    partly = with_covariates(frame, completed.with_columns(pl.lit(None).cast(pl.Float64)
                                                           .alias("bmd_t_score")))  # fmt: skip
    assert partly["has_covariates"].to_list() == [False] * 4


@pytest.mark.slow
def test_end_to_end_on_a_synthetic_registry() -> None:
    con = connect()
    apply_migrations(con)
    for name, table in generate_cohort(patients=600, seed=11).tables.items():
        con.register("frame", table)
        con.execute(f"INSERT INTO {name} SELECT * FROM frame")
        con.unregister("frame")
    study = Study()
    cohort, tte = build_frames(read_registry(con), study)
    patients = cohort.patients.with_columns(  # make 30 % of BMD missing on top of the demo's
        pl.when(pl.Series(np.random.default_rng(1).random(cohort.patients.height) < 0.3))
        .then(None)
        .otherwise(pl.col("bmd_t_score"))
        .alias("bmd_t_score")
    )
    aux = auxiliary_frame(cohort, tte, study)
    assert aux.height == cohort.patients.height and aux.null_count().sum_horizontal()[0] == 0
    result = impute(patients.select("patient_id", *study.covariates), aux, study.covariates, SPEC)
    assert "bmd_t_score" in result.variables
    assert {f"hazard_{o}" for o in study.outcomes} <= set(result.predictors["bmd_t_score"])
    done = with_covariates(tte.counting, result.completed[0])
    assert done.height == tte.counting.height and done["has_covariates"].all()
    assert done["patient_id"].to_list() == tte.counting["patient_id"].to_list()


def test_binary_share_is_recovered_under_mar() -> None:
    """b ~ Bernoulli(expit(-0.5 + x1)), 40 % of b missing more often when x1 is high: the
    complete-case share of b is biased low (about 0.07), the imputed share is within 0.04 of the full
    data's (its sampling SE about 0.009, the imputation error about 0.01 at n = 3000)."""
    rng = np.random.default_rng(14)
    n = 3000
    x1 = rng.normal(size=n)
    b = rng.random(n) < 1 / (1 + np.exp(-(-0.5 + x1)))
    gone = rng.random(n) < 1 / (1 + np.exp(-(np.log(0.4 / 0.6) + 1.2 * x1)))
    patients = pl.DataFrame({
        "patient_id": [str(i) for i in range(n)],
        "x1": x1,
        "b": pl.Series(b).scatter(np.flatnonzero(gone), None),
    })  # fmt: skip
    result = impute(patients, patients.select("patient_id"), ("x1", "b"),
                    MissingData(imputations=10, iterations=5, seed=5))  # fmt: skip
    assert result.methods == {"b": "logreg"}
    shares = [done["b"].mean() for done in result.completed]
    assert b.mean() - b[~gone].mean() > 0.05  # complete case: biased (by about 0.07)
    assert abs(np.mean(shares) - b.mean()) < 0.04  # type: ignore[arg-type]


def test_zero_patients(con: duckdb.DuckDBPyConnection) -> None:
    study = Study()
    cohort, tte = build(con, study)
    aux = auxiliary_frame(cohort, tte, study)
    assert aux.height == 0 and "hazard_adjacent" in aux.columns
    patients = cohort.patients.select("patient_id", *study.covariates)
    result = impute(patients, aux, study.covariates, SPEC)
    assert result.completed == () and result.missing.height == 0
