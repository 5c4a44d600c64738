"""One hand-built patient per definition of docs/design.md's time-to-event section."""

from __future__ import annotations

import duckdb
import polars as pl

from registry.study import Study
from tests.registry_rows import build, contact, day, fracture, patient, procedure, row


def test_t12_l1_is_adjacent(con: duckdb.DuckDBPyConnection) -> None:
    patient(con, "P1", "T12")
    fracture(con, "P1", "L1", 100)
    contact(con, "P1", 400)
    _, tte = build(con)
    adjacent = row(tte, "P1", "adjacent")
    assert (adjacent["event"], adjacent["duration_days"], adjacent["event_distance"]) == (1, 100, 1)
    assert adjacent["event_level"] == "L1" and not adjacent["event_sandwich"]
    assert row(tte, "P1", "remote")["event"] == 0


def test_a_level_between_two_reference_levels_is_adjacent_and_sandwich(
    con: duckdb.DuckDBPyConnection,
) -> None:
    patient(con, "P1", "T11", "L1")
    fracture(con, "P1", "T12", 200)
    contact(con, "P1", 400)
    _, tte = build(con)
    adjacent = row(tte, "P1", "adjacent")
    assert (adjacent["event"], adjacent["event_level"], adjacent["event_sandwich"]) == (
        1,
        "T12",
        True,
    )


def test_fracture_at_an_index_level_is_same_level(con: duckdb.DuckDBPyConnection) -> None:
    patient(con, "P1", "L1")
    fracture(con, "P1", "L1", 50)
    contact(con, "P1", 400)
    _, tte = build(con)
    same = row(tte, "P1", "same_level")
    assert (same["event"], same["duration_days"], same["event_distance"]) == (1, 50, 0)
    assert row(tte, "P1", "adjacent")["event"] == 0
    assert row(tte, "P1", "any_new")["event_level"] == "L1"


def test_remote_fracture_does_not_end_follow_up_for_the_adjacent_outcome(
    con: duckdb.DuckDBPyConnection,
) -> None:
    patient(con, "P1", "L1")
    fracture(con, "P1", "T6", 100)  # 7 levels away
    fracture(con, "P1", "L2", 300)
    contact(con, "P1", 700)
    _, tte = build(con)
    assert (row(tte, "P1", "remote")["event"], row(tte, "P1", "remote")["duration_days"]) == (
        1,
        100,
    )
    assert row(tte, "P1", "remote")["event_distance"] == 7
    adjacent = row(tte, "P1", "adjacent")
    assert (adjacent["event"], adjacent["duration_days"]) == (1, 300)
    assert row(tte, "P1", "any_new")["duration_days"] == 100


def test_event_on_the_day_of_death_counts_as_the_event(con: duckdb.DuckDBPyConnection) -> None:
    patient(con, "P1", "L1")
    fracture(con, "P1", "L2", 250)
    contact(con, "P1", 250, "dead")
    _, tte = build(con)
    assert (row(tte, "P1", "adjacent")["event"], row(tte, "P1", "adjacent")["duration_days"]) == (
        1,
        250,
    )
    assert row(tte, "P1", "remote")["event"] == 2


def test_death_before_the_event_is_the_competing_event(con: duckdb.DuckDBPyConnection) -> None:
    patient(con, "P1", "L1")
    contact(con, "P1", 90)
    contact(con, "P1", 300, "dead")
    fracture(con, "P1", "L2", 400)  # after death: not an event
    cohort, tte = build(con)
    adjacent = row(tte, "P1", "adjacent")
    assert (adjacent["event"], adjacent["duration_days"], adjacent["end_reason"]) == (
        2,
        300,
        "death",
    )
    policy = dict(cohort.policy.select("rule", "rows").iter_rows())
    assert policy["fracture_after_end_of_follow_up"] == 1


def test_withdrawal_and_loss_end_follow_up_censored(con: duckdb.DuckDBPyConnection) -> None:
    patient(con, "P1", "L1")
    contact(con, "P1", 30)
    contact(con, "P1", 200, "withdrawn")
    patient(con, "P2", "L1")
    contact(con, "P2", 365, "lost")
    contact(con, "P2", 500)  # seen again after the loss: follow-up still ends at the loss
    fracture(con, "P2", "L2", 450)
    _, tte = build(con)
    p1, p2 = row(tte, "P1", "adjacent"), row(tte, "P2", "adjacent")
    assert (p1["event"], p1["duration_days"], p1["end_reason"]) == (0, 200, "withdrawn")
    assert (p2["event"], p2["duration_days"], p2["end_reason"]) == (0, 365, "lost")


def test_last_contact_of_any_kind_is_the_censoring_date(con: duckdb.DuckDBPyConnection) -> None:
    patient(con, "P1", "L1")
    contact(con, "P1", 30)
    con.execute("INSERT INTO assessments VALUES ('P1', ?, 'VAS', 3)", [day(400)])
    patient(con, "P2", "L1")
    contact(con, "P2", 30)
    fracture(con, "P2", "T5", 600)  # a remote fracture is a contact too
    _, tte = build(con)
    p1 = row(tte, "P1", "adjacent")
    assert (p1["event"], p1["duration_days"], p1["end_reason"]) == (0, 400, "last_contact")
    assert row(tte, "P2", "adjacent")["duration_days"] == 600


def test_follow_up_is_capped_at_five_years(con: duckdb.DuckDBPyConnection) -> None:
    patient(con, "P1", "L1")
    contact(con, "P1", 2000)
    fracture(con, "P1", "L2", 1900)  # after the horizon: not an event
    contact(con, "P1", 2100, "dead")
    _, tte = build(con)
    adjacent = row(tte, "P1", "adjacent")
    assert (adjacent["event"], adjacent["duration_days"]) == (0, 1826)
    assert adjacent["end_reason"] == "administrative"


def test_treatment_after_the_end_of_follow_up_is_untreated(con: duckdb.DuckDBPyConnection) -> None:
    patient(con, "P1", "L1")
    contact(con, "P1", 100, "lost")
    procedure(con, "P1", "L1", 150)
    cohort, tte = build(con)
    assert not row(tte, "P1", "adjacent")["treated"]
    assert cohort.policy.filter(pl.col("rule") == "procedure_not_treatment")["rows"].item() == 1


def test_procedure_at_a_non_index_level_is_not_treatment(con: duckdb.DuckDBPyConnection) -> None:
    patient(con, "P1", "L1")
    procedure(con, "P1", "L3", 20)
    contact(con, "P1", 400)
    _, tte = build(con)
    assert not row(tte, "P1", "adjacent")["treated"]


def test_treatment_is_time_varying_in_counting_process_rows(con: duckdb.DuckDBPyConnection) -> None:
    patient(con, "P1", "L1")
    procedure(con, "P1", "L1", 30)
    fracture(con, "P1", "L2", 200)
    contact(con, "P1", 400)
    _, tte = build(con)
    rows = tte.counting.filter((pl.col("patient_id") == "P1") & (pl.col("outcome") == "adjacent"))
    assert rows.select("start", "stop", "treated", "event").rows() == [
        (0, 30, 0, 0),
        (30, 200, 1, 1),
    ]
    assert row(tte, "P1", "adjacent")["treat_day"] == 30


def test_kyphoplasty_counts_only_when_the_study_says_so(con: duckdb.DuckDBPyConnection) -> None:
    patient(con, "P1", "L1")
    procedure(con, "P1", "L1", 30, kind="kyphoplasty")
    contact(con, "P1", 400)
    _, default = build(con)
    _, wider = build(con, Study(treatment_procedures=("vertebroplasty", "kyphoplasty")))
    assert not row(default, "P1", "adjacent")["treated"]
    assert row(wider, "P1", "adjacent")["treated"]


def test_landmark_keeps_event_free_patients_and_sets_arm_at_the_landmark(
    con: duckdb.DuckDBPyConnection,
) -> None:
    patient(con, "P1", "L1")
    procedure(con, "P1", "L1", 40)  # treated by day 90
    contact(con, "P1", 500)
    patient(con, "P2", "L1")
    procedure(con, "P2", "L1", 120)  # treated after the landmark: conservative arm
    contact(con, "P2", 500)
    patient(con, "P3", "L1")
    fracture(con, "P3", "L2", 60)  # event before the landmark: left out
    contact(con, "P3", 500)
    _, tte = build(con)
    lm = tte.landmark.filter(pl.col("outcome") == "adjacent").sort("patient_id")
    assert lm.select("patient_id", "duration_days", "treated").rows() == [
        ("P1", 410, True),
        ("P2", 410, False),
    ]


def test_procedure_before_t0_is_excluded(con: duckdb.DuckDBPyConnection) -> None:
    patient(con, "P1", "L1")
    procedure(con, "P1", "L1", -5)
    contact(con, "P1", 300)
    cohort, tte = build(con)
    assert tte.outcomes.is_empty()
    assert attrition(cohort)["procedure before t0"] == 1


def test_no_follow_up_after_t0_is_excluded(con: duckdb.DuckDBPyConnection) -> None:
    patient(con, "P1", "L1")
    patient(con, "P2", "L1")
    contact(con, "P2", 0)  # a contact on t0 itself is no follow-up after t0
    cohort, tte = build(con)
    assert tte.outcomes.is_empty()
    assert attrition(cohort)["no follow-up after t0"] == 2


def test_malignant_index_fracture_is_excluded(con: duckdb.DuckDBPyConnection) -> None:
    patient(con, "P1", "L1", etiology="malignant")
    contact(con, "P1", 300)
    patient(con, "P2", "L1")
    con.execute("INSERT INTO index_fractures VALUES ('P2', 'T8', ?, 'traumatic', 1)", [day(3)])
    contact(con, "P2", 300)
    cohort, tte = build(con)
    assert tte.outcomes.is_empty()
    assert attrition(cohort)["malignant or traumatic index fracture"] == 2


def test_fracture_on_or_before_t0_is_not_new_and_is_counted(con: duckdb.DuckDBPyConnection) -> None:
    patient(con, "P1", "L1")
    fracture(con, "P1", "L2", 0)
    contact(con, "P1", 300)
    cohort, tte = build(con)
    assert row(tte, "P1", "adjacent")["event"] == 0
    assert cohort.policy.filter(pl.col("rule") == "fracture_on_or_before_t0")["rows"].item() == 1


def test_missing_covariates_are_counted_for_adjusted_models_only(
    con: duckdb.DuckDBPyConnection,
) -> None:
    patient(con, "P1", "L1", bmd=None)
    contact(con, "P1", 300)
    cohort, tte = build(con)
    assert tte.outcomes.height == 4 and not row(tte, "P1", "adjacent")["has_covariates"]
    last = cohort.attrition.row(-1, named=True)
    # multiple imputation (the default) keeps them in the adjusted models: the step applies
    # to the complete-case twins only
    assert (last["excluded"], last["applies_to"]) == (1, "complete-case analyses")


def test_zero_patients_give_empty_frames_with_columns(con: duckdb.DuckDBPyConnection) -> None:
    cohort, tte = build(con)
    assert cohort.patients.is_empty() and tte.outcomes.is_empty()
    assert tte.counting.is_empty() and tte.landmark.is_empty()
    assert {"duration_days", "event", "treated"} <= set(tte.outcomes.columns)
    assert {"start", "stop", "treated", "event"} <= set(tte.counting.columns)
    assert cohort.attrition["remaining"].to_list() == [0] * cohort.attrition.height


def attrition(cohort) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return dict(cohort.attrition.select("rule", "excluded").iter_rows())


def test_contacts_and_assessments_after_death_are_ignored_and_counted(
    con: duckdb.DuckDBPyConnection,
) -> None:
    patient(con, "P1", "L1")
    contact(con, "P1", 200, "dead")
    contact(con, "P1", 300)
    con.execute("INSERT INTO assessments VALUES ('P1', ?, 'VAS', 3)", [day(250)])
    cohort, tte = build(con)
    assert row(tte, "P1", "adjacent")["duration_days"] == 200
    policy = {r["rule"]: (r["rows"], r["patients"]) for r in cohort.policy.to_dicts()}
    assert policy["contact_after_death"] == (1, 1) and policy["assessment_after_death"] == (1, 1)


def _index(con: duckdb.DuckDBPyConnection, pid: str, level: str, n: int) -> None:
    con.execute(
        "INSERT INTO index_fractures VALUES (?, ?, ?, 'osteoporotic', 2)", [pid, level, day(n)]
    )


def test_reference_levels_are_the_index_episode_within_30_days_of_t0(
    con: duckdb.DuckDBPyConnection,
) -> None:
    patient(con, "P1", "L1")
    _index(con, "P1", "T10", 30)  # day 30: still the index episode
    fracture(con, "P1", "T9", 100)  # next to T10
    contact(con, "P1", 400)
    patient(con, "P2", "L1")
    _index(con, "P2", "T10", 31)  # day 31: not a reference level
    fracture(con, "P2", "T9", 100)
    contact(con, "P2", 400)
    cohort, tte = build(con)
    assert row(tte, "P1", "adjacent")["event"] == 1
    assert row(tte, "P2", "adjacent")["event"] == 0
    p2 = row(tte, "P2", "remote")
    assert (p2["event"], p2["event_distance"]) == (1, 4)  # T9 to L1
    refs = cohort.reference_levels.filter(pl.col("patient_id") == "P2")
    assert refs["position"].to_list() == [19]  # L1 only
    assert row(tte, "P2", "adjacent")["n_index_levels"] == 2  # the covariate counts both


def test_a_fracture_is_classified_only_by_reference_levels_diagnosed_by_then(
    con: duckdb.DuckDBPyConnection,
) -> None:
    patient(con, "P1", "L1")
    fracture(con, "P1", "L3", 5)  # found before the L3 index fracture was diagnosed
    _index(con, "P1", "L3", 10)
    fracture(con, "P1", "L4", 20)  # after: adjacent to L3
    contact(con, "P1", 400)
    _, tte = build(con)
    remote = row(tte, "P1", "remote")
    assert (remote["event"], remote["duration_days"], remote["event_distance"]) == (1, 5, 2)
    assert row(tte, "P1", "same_level")["event"] == 0
    adjacent = row(tte, "P1", "adjacent")
    assert (adjacent["event"], adjacent["duration_days"], adjacent["event_level"]) == (1, 20, "L4")


def test_a_fracture_on_the_day_a_reference_level_is_diagnosed_is_classified_by_it(
    con: duckdb.DuckDBPyConnection,
) -> None:
    patient(con, "P1", "L1")
    _index(con, "P1", "L3", 10)
    fracture(con, "P1", "L4", 10)
    contact(con, "P1", 400)
    _, tte = build(con)
    assert row(tte, "P1", "adjacent")["event"] == 1


def test_sandwich_tags_adjacent_events_only(con: duckdb.DuckDBPyConnection) -> None:
    patient(con, "P1", "T11", "T12", "L1")
    fracture(con, "P1", "T12", 50)  # same level, between two reference levels
    fracture(con, "P1", "T10", 80)  # adjacent, not between two
    contact(con, "P1", 400)
    _, tte = build(con)
    same = row(tte, "P1", "same_level")
    assert (same["event"], same["event_distance"], same["event_sandwich"]) == (1, 0, False)
    assert row(tte, "P1", "any_new")["event_sandwich"] is False
    adjacent = row(tte, "P1", "adjacent")
    assert (adjacent["event_level"], adjacent["event_sandwich"]) == ("T10", False)


def test_follow_up_ends_at_withdrawal_even_when_a_death_is_recorded_later(
    con: duckdb.DuckDBPyConnection,
) -> None:
    patient(con, "P1", "L1")
    contact(con, "P1", 100, "withdrawn")
    fracture(con, "P1", "L2", 150)  # after the withdrawal: not ascertained
    contact(con, "P1", 300, "dead")  # later death: not a competing event
    patient(con, "P2", "L1")
    contact(con, "P2", 120, "lost")
    contact(con, "P2", 60, "dead")
    cohort, tte = build(con)
    p1 = row(tte, "P1", "adjacent")
    assert (p1["event"], p1["duration_days"], p1["end_reason"]) == (0, 100, "withdrawn")
    policy = dict(cohort.policy.select("rule", "rows").iter_rows())
    assert policy["fracture_after_end_of_follow_up"] == 1
    p2 = row(tte, "P2", "adjacent")  # death before the loss: the death is the end
    assert (p2["event"], p2["duration_days"], p2["end_reason"]) == (2, 60, "death")


def test_death_on_the_day_of_withdrawal_is_the_competing_event(
    con: duckdb.DuckDBPyConnection,
) -> None:
    patient(con, "P1", "L1")
    contact(con, "P1", 200, "withdrawn")
    contact(con, "P1", 200, "dead")
    _, tte = build(con)
    p1 = row(tte, "P1", "adjacent")
    assert (p1["event"], p1["duration_days"], p1["end_reason"]) == (2, 200, "death")


def test_an_event_on_the_procedure_day_counts_as_untreated(
    con: duckdb.DuckDBPyConnection,
) -> None:
    patient(con, "P1", "L1")
    procedure(con, "P1", "L1", 40)
    fracture(con, "P1", "L2", 40)
    contact(con, "P1", 400)
    _, tte = build(con)
    rows = tte.counting.filter((pl.col("patient_id") == "P1") & (pl.col("outcome") == "adjacent"))
    assert rows.select("start", "stop", "treated", "event").rows() == [(0, 40, 0, 1)]
    assert row(tte, "P1", "adjacent")["treated"]  # ever-treated, as the (a) analysis says
