"""Each cross-table check in sql/checks finds its violation and nothing else."""

from __future__ import annotations

import duckdb
import pytest

from registry.quality import check_names, run_check, run_checks, summarise_checks

BASE = """
INSERT INTO patients VALUES ('P1', 'S1', 'F', 1950, -2.5, false, 0), ('P2', 'S1', 'M', 1945, NULL, NULL, NULL);
INSERT INTO index_fractures VALUES ('P1', 'L1', DATE '2020-01-10', 'osteoporotic', 2),
                                   ('P2', 'T12', DATE '2020-03-01', 'osteoporotic', 1);
INSERT INTO procedures VALUES ('P1', 'L1', DATE '2020-02-01', 'vertebroplasty', 4, 'none');
INSERT INTO assessments VALUES ('P1', DATE '2020-01-20', 'VAS', 8), ('P1', DATE '2020-03-01', 'VAS', 2);
INSERT INTO fractures VALUES ('P1', 'L2', DATE '2021-01-01', 'clinical');
INSERT INTO follow_up VALUES ('P1', DATE '2021-01-01', 'alive'), ('P1', DATE '2022-06-01', 'dead'),
                             ('P2', DATE '2020-06-01', 'alive');
"""

CASES = {
    "fracture_on_or_before_index": "INSERT INTO fractures VALUES ('P1', 'T12', DATE '2020-01-10', 'clinical')",
    "contact_after_death": "INSERT INTO follow_up VALUES ('P1', DATE '2022-07-01', 'alive')",
    "assessment_after_death": "INSERT INTO assessments VALUES ('P1', DATE '2022-07-01', 'ODI', 20)",
    "event_after_death": "INSERT INTO fractures VALUES ('P1', 'T10', DATE '2022-08-01', 'clinical')",
    "procedure_before_index": "INSERT INTO procedures VALUES ('P2', 'T12', DATE '2020-02-01', 'kyphoplasty', NULL, NULL)",
    "procedure_at_non_index_level": "INSERT INTO procedures VALUES ('P1', 'L3', DATE '2020-02-01', 'vertebroplasty', 3, 'none')",
    "conflicting_death_dates": "INSERT INTO follow_up VALUES ('P1', DATE '2022-09-01', 'dead')",
    "patient_without_index_fracture": "INSERT INTO patients VALUES ('P3', 'S1', 'F', 1940, NULL, NULL, NULL)",
    "duplicate_natural_key": "INSERT INTO assessments VALUES ('P1', DATE '2020-01-20', 'VAS', 7)",
    "contact_after_loss": "INSERT INTO follow_up VALUES ('P2', DATE '2020-09-01', 'lost'), ('P2', DATE '2021-01-01', 'alive')",
}
# A second death date after the first is also a contact after (the first) death.
ALSO_FIRES = {"conflicting_death_dates": {"contact_after_death"}}


def test_every_check_file_has_a_case() -> None:
    assert sorted(CASES) == check_names()


def test_a_clean_registry_breaks_no_rule(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(BASE)
    assert run_checks(con).is_empty()


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_check_finds_its_violation_and_no_other(
    con: duckdb.DuckDBPyConnection, name: str
) -> None:
    con.execute(BASE)
    con.execute(CASES[name])
    found = run_check(con, name)
    assert found.height >= 1
    assert set(found.get_column("rule")) == {name}
    assert all(found.get_column("detail").str.len_chars() > 10)
    fired = set(run_checks(con).get_column("check"))
    assert fired == {name} | ALSO_FIRES.get(name, set())


def test_summary_lists_every_check_with_counts(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(BASE)
    con.execute(CASES["contact_after_death"])
    summary = summarise_checks(run_checks(con))
    assert summary.height == len(check_names())
    row = summary.filter(summary["check"] == "contact_after_death").row(0, named=True)
    assert (row["violations"], row["patients"]) == (1, 1)
