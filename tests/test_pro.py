"""Pain (VAS) and disability (ODI) before and after: visit windows and paired statistics."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from registry.analysis.pro import anchors, summarise_visits
from registry.cohort import Cohort
from registry.models.pro import (
    ARMS,
    INSTRUMENTS,
    VISITS,
    _wilcoxon_p,
    before_after,
    paired_changes,
    pick_visits,
    signed_rank_test,
    trajectories,
)

DAY0 = dt.date(2024, 1, 1)

# (patient_id, arm); every anchor is DAY0
ANCHORS = [
    ("P1", "treated"),
    ("P2", "treated"),
    ("P3", "treated"),
    ("P4", "treated"),
    ("U1", "untreated"),
]

# (patient_id, day after the anchor, instrument, score)
ASSESSMENTS = [
    ("P1", -30, "VAS", 8.0),  # older than the day-0 one: not the baseline
    ("P1", 0, "VAS", 9.0),  # baseline: on the anchor day counts
    ("P1", 20, "VAS", 0.0),  # too early for the 1-month window
    ("P1", 26, "VAS", 3.0),  # 4 days from day 30 ...
    ("P1", 34, "VAS", 5.0),  # ... as is this one: the earlier wins
    ("P1", 46, "VAS", 0.0),  # too late
    ("P1", -1, "ODI", 70.0),
    ("P1", 31, "ODI", 20.0),
    ("P2", -1, "VAS", 6.0),
    ("P2", 45, "VAS", 2.0),  # last day of the window
    ("P3", -3, "VAS", 5.0),
    ("P3", 1, "VAS", 9.9),  # after the anchor: not a treated baseline
    ("P3", 21, "VAS", 4.0),  # first day of the window
    ("P3", 160, "VAS", 3.0),  # 6 months: 20 days from 180 ...
    ("P3", 190, "VAS", 2.5),  # ... this one 10: closest wins
    ("P3", 329, "VAS", 9.0),  # just before the 12-month window
    ("P3", 400, "VAS", 1.0),  # last day of the 12-month window
    ("P4", -2, "VAS", 7.0),  # baseline only: in trajectories, not in the paired table
    ("U1", 7, "VAS", 7.5),  # untreated baseline may be up to 7 days after t0
    ("U1", 8, "VAS", 1.0),  # day 8: neither baseline nor 1 month
    ("U1", 30, "VAS", 6.0),
]


def _anchors(rows: list[tuple[str, str]] = ANCHORS) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "patient_id": [p for p, _ in rows],
            "arm": [a for _, a in rows],
            "anchor_on": [DAY0] * len(rows),
        },
        schema={"patient_id": pl.String, "arm": pl.String, "anchor_on": pl.Date},
    )


def _assessments(rows: list[tuple[str, int, str, float]] = ASSESSMENTS) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "patient_id": [r[0] for r in rows],
            "assessed_on": [DAY0 + dt.timedelta(days=r[1]) for r in rows],
            "instrument": [r[2] for r in rows],
            "score": [r[3] for r in rows],
        },
        schema={
            "patient_id": pl.String,
            "assessed_on": pl.Date,
            "instrument": pl.String,
            "score": pl.Float64,
        },
    )


def _visit(visits: pl.DataFrame, patient: str, instrument: str, visit: str) -> tuple[int, float]:
    row = visits.filter(
        (pl.col("patient_id") == patient)
        & (pl.col("instrument") == instrument)
        & (pl.col("visit") == visit)
    )
    assert row.height == 1, (patient, instrument, visit)
    return row["day"][0], row["score"][0]


def _row(table: pl.DataFrame, instrument: str, arm: str) -> dict[str, object]:
    return table.filter((pl.col("instrument") == instrument) & (pl.col("arm") == arm)).row(
        0, named=True
    )


def test_baseline_is_the_last_assessment_on_or_before_the_anchor() -> None:
    visits = pick_visits(_assessments(), _anchors())
    assert _visit(visits, "P1", "VAS", "baseline") == (0, 9.0)
    assert _visit(visits, "P3", "VAS", "baseline") == (-3, 5.0)
    assert _visit(visits, "P1", "ODI", "baseline") == (-1, 70.0)


def test_untreated_baseline_may_be_in_the_first_week() -> None:
    visits = pick_visits(_assessments(), _anchors())
    assert _visit(visits, "U1", "VAS", "baseline") == (7, 7.5)
    assert _visit(visits, "U1", "VAS", "1 month") == (30, 6.0)
    assert visits.filter(pl.col("day") == 8).height == 0


def test_one_month_is_closest_to_day_30_within_21_to_45_earlier_on_ties() -> None:
    visits = pick_visits(_assessments(), _anchors())
    assert _visit(visits, "P1", "VAS", "1 month") == (26, 3.0)
    assert _visit(visits, "P2", "VAS", "1 month") == (45, 2.0)
    assert _visit(visits, "P3", "VAS", "1 month") == (21, 4.0)
    assert visits.filter(pl.col("day").is_in([20, 46])).height == 0


def test_six_and_twelve_month_windows() -> None:
    visits = pick_visits(_assessments(), _anchors())
    assert _visit(visits, "P3", "VAS", "6 months") == (190, 2.5)
    assert _visit(visits, "P3", "VAS", "12 months") == (400, 1.0)
    assert visits.filter(pl.col("day") == 329).height == 0


def test_before_after_by_hand() -> None:
    table = before_after(pick_visits(_assessments(), _anchors()))
    assert table.select("instrument", "arm").rows() == [(i, a) for i in INSTRUMENTS for a in ARMS]
    vas = _row(table, "VAS", "treated")
    # Pairs P1 9 -> 3, P2 6 -> 2, P3 5 -> 4 (P4 has no 1-month score): changes -6, -4, -1
    assert vas["n"] == 3
    assert vas["baseline_mean"] == pytest.approx(20 / 3)
    assert vas["baseline_sd"] == pytest.approx(np.sqrt(13 / 3))  # squares 49/9 + 4/9 + 25/9, / 2
    assert (vas["follow_up_mean"], vas["follow_up_sd"]) == pytest.approx((3.0, 1.0))
    assert vas["change_mean"] == pytest.approx(-11 / 3)
    assert vas["change_sd"] == pytest.approx(np.sqrt(19 / 3))  # squares 49/9 + 1/9 + 64/9, / 2
    half = 4.302652729749464 * np.sqrt(19 / 3) / np.sqrt(3)  # t(0.975, 2) * SE
    assert (vas["change_lower"], vas["change_upper"]) == pytest.approx(
        (-11 / 3 - half, -11 / 3 + half)
    )


def test_paired_tests_agree_with_scipy() -> None:
    table = before_after(pick_visits(_assessments(), _anchors()))
    vas = _row(table, "VAS", "treated")
    baseline, follow_up = np.array([9.0, 6.0, 5.0]), np.array([3.0, 2.0, 4.0])
    assert vas["t_p"] == pytest.approx(stats.ttest_rel(follow_up, baseline).pvalue, rel=1e-12)
    ci = stats.ttest_rel(follow_up, baseline).confidence_interval()
    assert (vas["change_lower"], vas["change_upper"]) == pytest.approx((ci.low, ci.high), rel=1e-12)
    # wilcox.test(c(3, 2, 4), c(9, 6, 5), paired = TRUE): n = 3, no ties -> exact p = 2 / 2**3
    assert vas["wilcoxon_p"] == pytest.approx(0.25)


def test_single_pair_and_empty_groups_give_nulls_not_errors() -> None:
    table = before_after(pick_visits(_assessments(), _anchors()))
    untreated = _row(table, "VAS", "untreated")
    assert untreated["n"] == 1 and untreated["change_mean"] == pytest.approx(-1.5)
    assert (
        untreated["change_sd"] is None
        and untreated["change_lower"] is None
        and untreated["t_p"] is None
    )
    odi = _row(table, "ODI", "untreated")
    assert odi["n"] == 0 and odi["baseline_mean"] is None and odi["wilcoxon_p"] is None


def test_trajectories_count_every_visit() -> None:
    table = trajectories(pick_visits(_assessments(), _anchors()))
    assert table.height == len(INSTRUMENTS) * len(ARMS) * len(VISITS)
    baseline = _row(table.filter(pl.col("visit") == "baseline"), "VAS", "treated")
    assert (baseline["n"], baseline["mean"]) == (4, pytest.approx((9 + 6 + 5 + 7) / 4))
    six = _row(table.filter(pl.col("visit") == "6 months"), "VAS", "treated")
    assert (six["n"], six["mean"], six["sd"]) == (1, 2.5, None)


def test_zero_rows() -> None:
    # the product's path: analysis_pro.summarise_visits over pick_visits
    picked = pick_visits(_assessments([]), _anchors([]))
    assert picked.height == 0 and paired_changes(picked).height == 0
    table = before_after(picked)
    assert table.height == 4 and table["n"].to_list() == [0] * 4
    assert trajectories(picked)["n"].sum() == 0
    summary = summarise_visits(picked)
    assert {summary[i][arm]["n"] for i in INSTRUMENTS for arm in ARMS} == {0}
    assert summary["trajectories"] == [] and summary["quantiles"] == {}


def test_anchor_is_the_treatment_day_for_the_treated_and_t0_for_the_untreated() -> None:
    # analysis_pro.anchors reads the cohort's own treat_on (the study's treatment, already
    # settled by the cohort stage: first vertebroplasty of an index level on or after t0)
    patients = pl.DataFrame(
        {
            "patient_id": ["A", "B"],
            "treated": [True, False],
            "treat_on": [dt.date(2024, 2, 1), None],
            "t0": [dt.date(2024, 1, 1), dt.date(2024, 2, 1)],
        }
    )
    empty = pl.DataFrame()
    cohort = Cohort(patients=patients, attrition=empty, policy=empty, reference_levels=empty)
    assert anchors(cohort).rows() == [
        ("A", "treated", dt.date(2024, 2, 1)),
        ("B", "untreated", dt.date(2024, 2, 1)),
    ]


WILCOXON = pl.read_csv(Path(__file__).parent / "reference" / "pro" / "wilcoxon.csv")
PAIRS = pl.read_csv(Path(__file__).parent / "data" / "wilcoxon_pairs.csv")


@pytest.mark.parametrize("dataset", WILCOXON["dataset"].to_list())
def test_wilcoxon_matches_r_defaults(dataset: str) -> None:
    # wilcox.test(x, y, paired = TRUE) (tests/reference/pro_wilcoxon_reference.R): sleep
    # 0.0091 (ties and a zero: normal approximation, continuity correction; scipy's defaults
    # gave 0.0039), pressure and mtcars exact, attitude zeros, lifecycle n = 50 and iris
    # n = 150 normal approximation
    expected = WILCOXON.filter(pl.col("dataset") == dataset).row(0, named=True)
    pairs = PAIRS.filter(pl.col("dataset") == dataset)
    assert pairs.height == expected["n"]
    test = signed_rank_test((pairs["x"] - pairs["y"]).to_numpy())
    assert test is not None
    assert test[0] == expected["statistic"]
    assert test[1] == pytest.approx(expected["p"], rel=1e-12)


def test_wilcoxon_of_the_sleep_pairs_in_the_pro_table() -> None:
    # the before/after table gives R's p for datasets::sleep as follow-up/baseline pairs
    sleep = PAIRS.filter(pl.col("dataset") == "sleep")
    pairs = pl.DataFrame(
        {
            "instrument": "VAS",
            "arm": "treated",
            "change": (sleep["y"] - sleep["x"]).to_numpy(),
        }
    )
    table = _wilcoxon_p(pairs)
    assert table["wilcoxon_p"].item() == pytest.approx(0.0090906980159250559, rel=1e-12)


@given(st.lists(st.integers(-20, 20), min_size=1, max_size=60))
def test_wilcoxon_is_a_p_value_and_ignores_the_sign(values: list[int]) -> None:
    change = np.array(values, dtype=float)
    test = signed_rank_test(change)
    if not np.any(change != 0):
        assert test is None
        return
    assert test is not None and 0 < test[1] <= 1
    flipped = signed_rank_test(-change)
    assert flipped is not None and flipped[1] == pytest.approx(test[1], rel=1e-9)
    nonzero = change[change != 0]
    exact = nonzero.size == change.size < 50 and np.unique(np.abs(nonzero)).size == nonzero.size
    if exact:  # no ties, no zeros, n < 50: scipy's exact test is R's
        assert test[1] == pytest.approx(stats.wilcoxon(change, method="exact").pvalue, rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 5),  # patient
            st.sampled_from(["VAS", "ODI"]),
            st.integers(-40, 420),  # day after t0
            st.integers(0, 10),
        ),
        max_size=60,
        unique_by=lambda r: (r[0], r[1], r[2]),
    ),
    treated=st.lists(st.one_of(st.none(), st.integers(0, 60)), min_size=6, max_size=6),
)
def test_duckdb_picks_the_same_visits_as_polars(
    rows: list[tuple[int, str, int, int]], treated: list[int | None]
) -> None:
    """visits_in_db (sql/queries/analysis/pro_visits.sql) returns pick_visits' rows, in its
    order, for any assessments: every window edge, tie and the untreated's 7-day baseline."""
    from registry.analysis.pro import visits, visits_in_db
    from tests.tiny_registry import tiny_registry

    t0 = dt.date(2020, 1, 1)
    patients = pl.DataFrame(
        {
            "patient_id": [f"P{i}" for i in range(6)],
            "treated": [day is not None for day in treated],
            "treat_on": [None if d is None else t0 + dt.timedelta(days=d) for d in treated],
            "t0": [t0] * 6,
        }
    )
    empty = pl.DataFrame()
    cohort = Cohort(patients, empty, empty, empty)
    con = tiny_registry([(p, i, d, float(v)) for p, i, d, v in rows], 6, t0)
    assessments = con.sql(
        "SELECT patient_id, assessed_on, instrument, score FROM assessments "
        "ORDER BY patient_id, instrument, assessed_on"
    ).pl()
    assert anchors(cohort).height == 6
    assert visits_in_db(con, cohort).equals(visits(cohort, assessments))
