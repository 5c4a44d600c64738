"""The PRO summaries aggregated in DuckDB (analysis.pro.summarise_in_db) equal the Polars
reference (summarise_visits over pick_visits, tested against hand cases in test_pro.py).

Counts, keys, key order, visit labels, suppression and nulls are compared exactly; the
means, SDs, quantiles and CIs within 1e-12 relative (1e-12 absolute near zero): DuckDB and
Polars add the same numbers in a different order (DuckDB's parallel avg and Welford's SD
against Polars' sums; DuckDB's order even changes from run to run), so the last bits
differ (observed up to ~1e-15 relative). The paired t-test p is compared within 1e-9
relative: p ~ exp(-t^2 / 2) turns a relative error e of t into ~t^2 e of p, and the
3,000-patient registry's p = 1.7e-171 (t ~ 28) differed by 5e-13. The Wilcoxon p is
exact: both paths rank the same change values (half-integer rank sums add exactly).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.analysis.pro import baseline_of, summarise_in_db, summarise_visits, visits
from registry.cohort import Cohort, build_cohort, read_registry
from registry.constants import DEMO_PATIENTS, DEMO_SEED
from registry.models.pro import ARMS, INSTRUMENTS
from registry.pipeline import open_registry
from registry.study import load_study
from tests.test_analysis import registry_with
from tests.tiny_registry import tiny_registry

REL = ABS = 1e-12
REL_BY_KEY = {"p_ttest": 1e-9, "p_wilcoxon": 0.0}  # see the module's docstring


def assert_same(db: Any, ref: Any, where: str = "pro") -> None:
    """Same structure (keys in the same order), exact ints and nulls, floats within REL."""
    if isinstance(ref, dict):
        assert isinstance(db, dict) and list(db) == list(ref), where
        for key in ref:
            assert_same(db[key], ref[key], f"{where}.{key}")
    elif isinstance(ref, list):
        assert isinstance(db, list) and len(db) == len(ref), where
        for i, (a, b) in enumerate(zip(db, ref, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(ref, float):
        rel = REL_BY_KEY.get(where.rsplit(".", 1)[-1], REL)
        close = db == ref if rel == 0 else db == pytest.approx(ref, rel=rel, abs=ABS)
        assert isinstance(db, float) and close, (where, db, ref)
    else:  # counts, labels and nulls
        assert type(db) is type(ref) and db == ref, where


def assessments_of(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every assessment, for the Polars reference pick."""
    return con.sql("SELECT patient_id, assessed_on, instrument, score FROM assessments").pl()


def both_paths(con: duckdb.DuckDBPyConnection, cohort: Cohort, threshold: int) -> tuple[Any, Any]:
    """(DuckDB's summaries and baselines, the Polars reference's), same threshold."""
    picked = visits(cohort, assessments_of(con))
    reference = summarise_visits(picked, threshold), baseline_of(picked, cohort)
    return summarise_in_db(con, cohort, threshold), reference


@pytest.fixture(scope="module", params=["mar-3000", "demo-1700"])
def registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[duckdb.DuckDBPyConnection, Cohort]:
    """A synthetic registry (read-only, as the pipeline opens it) and its default cohort:
    `registry synth` 3,000 patients with covariates missing at random, and the demo's."""
    tmp = tmp_path_factory.mktemp(request.param)
    if request.param == "mar-3000":
        db = registry_with(tmp, 3000, seed=11, missing="mar")
    else:
        db = registry_with(tmp, DEMO_PATIENTS, seed=DEMO_SEED)
    con = open_registry(db, read_only=True)
    request.addfinalizer(con.close)
    return con, build_cohort(read_registry(con), load_study())


def test_two_runs_give_the_same_summaries_to_the_last_bit(
    registry: tuple[duckdb.DuckDBPyConnection, Cohort],
) -> None:
    # DuckDB's parallel sums add in a different order from run to run (a cluster test saw
    # baseline means differ in the 15th digit): each group's scores are fetched in patient
    # order and summed in Polars, so the report is the same on the same data
    con, cohort = registry
    first = [summarise_in_db(con, cohort, 5) for _ in range(3)]
    for pro, baseline in first[1:]:
        assert pro == first[0][0]
        assert baseline.equals(first[0][1])


def test_the_synthetic_registries_summaries_equal_the_polars_reference(
    registry: tuple[duckdb.DuckDBPyConnection, Cohort],
) -> None:
    con, cohort = registry
    (pro, baseline), (ref_pro, ref_baseline) = both_paths(con, cohort, 5)
    assert_same(pro, ref_pro)
    assert baseline.equals(ref_baseline)  # the scores themselves: no arithmetic, exact
    assert baseline.schema == {
        "patient": pl.UInt32, "baseline_vas": pl.Float64, "baseline_odi": pl.Float64,
    }  # fmt: skip
    assert baseline.height > 0.9 * cohort.patients.height
    assert {t["visit"] for t in pro["trajectories"]} == {"baseline", "1 month", "6 months",
                                                          "12 months"}  # fmt: skip
    # the temp table and the registered anchors are gone: the next call starts clean
    assert con.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'pro_picked'")\
        .fetchall() == [(0,)]  # fmt: skip


def test_groups_below_the_threshold_are_withheld_alike(
    registry: tuple[duckdb.DuckDBPyConnection, Cohort],
) -> None:
    con, cohort = registry
    pairs = sorted(summarise_in_db(con, cohort, 1)[0][i][a]["n"] for i in INSTRUMENTS for a in ARMS)
    threshold = pairs[0] + 1  # the smallest before/after group falls below it, the largest not
    assert threshold <= pairs[-1]
    (pro, _), (ref_pro, _) = both_paths(con, cohort, threshold)
    assert_same(pro, ref_pro)
    shown = {(i, a): pro[i][a]["change_mean"] is not None for i in INSTRUMENTS for a in ARMS}
    assert not all(shown.values()) and any(shown.values())
    assert all(t["n"] >= threshold for t in pro["trajectories"])
    boxes = [b for arms in pro["quantiles"].values() for v in arms.values() for b in v.values()]
    assert boxes and all(b["n"] >= threshold for b in boxes)


def tiny_cohort(treated: list[int | None], t0: dt.date) -> Cohort:
    """Patients P0.. with t0 and (None: untreated) the treatment day after t0."""
    patients = pl.DataFrame(
        {
            "patient_id": [f"P{i}" for i in range(len(treated))],
            "treated": [day is not None for day in treated],
            "treat_on": [None if d is None else t0 + dt.timedelta(days=d) for d in treated],
            "t0": [t0] * len(treated),
        },
        schema={"patient_id": pl.String, "treated": pl.Boolean, "treat_on": pl.Date, "t0": pl.Date},
    )
    empty = pl.DataFrame()
    return Cohort(patients, empty, empty, empty)


def test_no_assessments_at_all() -> None:
    t0 = dt.date(2020, 1, 1)
    cohort = tiny_cohort([None, 3, None], t0)
    con = tiny_registry([], 3, t0)
    (pro, baseline), (ref_pro, ref_baseline) = both_paths(con, cohort, 5)
    assert_same(pro, ref_pro)
    assert {pro[i][a]["n"] for i in INSTRUMENTS for a in ARMS} == {0}
    assert pro["trajectories"] == [] and pro["quantiles"] == {}
    assert baseline.height == 0 and baseline.schema == ref_baseline.schema


def test_no_patients_at_all() -> None:
    t0 = dt.date(2020, 1, 1)
    con = tiny_registry([], 0, t0)
    (pro, baseline), (ref_pro, _) = both_paths(con, tiny_cohort([], t0), 5)
    assert_same(pro, ref_pro)
    assert baseline.height == 0


SCORE = {
    "VAS": st.integers(0, 100).map(lambda tenths: tenths / 10),  # 0-10, one decimal
    "ODI": st.integers(0, 100).map(float),
}


@st.composite
def assessments(draw: st.DrawFn) -> list[tuple[int, str, int, float]]:
    """Up to 80 assessments of 8 patients: any day from before the anchor to past a year."""
    keys = draw(
        st.lists(
            st.tuples(st.integers(0, 7), st.sampled_from(INSTRUMENTS), st.integers(-40, 420)),
            max_size=80,
            unique=True,
        )
    )
    return [(p, instrument, day, draw(SCORE[instrument])) for p, instrument, day in keys]


@settings(max_examples=40, deadline=None)
@given(
    rows=assessments(),
    treated=st.lists(st.one_of(st.none(), st.integers(0, 60)), min_size=8, max_size=8),
    threshold=st.integers(1, 4),
)
def test_duckdb_summaries_equal_the_polars_reference(
    rows: list[tuple[int, str, int, float]], treated: list[int | None], threshold: int
) -> None:
    """For any small assessment set, both arms, any threshold: the same ProResults and the
    same baseline frame."""
    t0 = dt.date(2020, 1, 1)
    con = tiny_registry(rows, 8, t0)
    try:
        (pro, baseline), (ref_pro, ref_baseline) = both_paths(
            con, tiny_cohort(treated, t0), threshold
        )
    finally:
        con.close()
    assert_same(pro, ref_pro)
    assert baseline.equals(ref_baseline)


def test_the_temp_table_is_dropped_when_the_aggregation_fails() -> None:
    t0 = dt.date(2020, 1, 1)
    con = tiny_registry([(0, "VAS", 0, 5.0)], 1, t0)
    cohort = tiny_cohort([None], t0)
    con.execute("DROP TABLE assessments")  # the pick itself fails
    with pytest.raises(duckdb.Error):
        summarise_in_db(con, cohort)
    tables = con.sql("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
    assert tables == []
    views = con.sql("SELECT count(*) FROM duckdb_views() WHERE view_name = 'pro_anchors'")
    assert views.fetchall() == [(0,)]
