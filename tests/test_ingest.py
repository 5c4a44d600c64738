"""Ingest: refusals, every row rule, idempotence, upsert with audit, pseudonyms."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from registry.errors import IngestError, PseudonymKeyError
from registry.ingest import IngestResult, discover, discover_files, ingest_file, ingest_paths
from registry.ingest.contract import SPECS
from registry.ingest.staging import LineMap
from tests.conftest import AS_OF, PATIENTS, write_csv


def ingest(
    con: duckdb.DuckDBPyConnection, *paths: Path, key: str | None = None
) -> list[IngestResult]:
    outcomes = ingest_paths(con, list(paths), as_of=AS_OF, pseudonym_key=key)
    for outcome in outcomes:
        if isinstance(outcome, IngestError):
            raise outcome
    return outcomes  # type: ignore[return-value]


def quarantine(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return con.sql("SELECT * FROM quarantine ORDER BY batch_id, line").pl()


def test_clean_file_is_inserted_with_types(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (result,) = ingest(con, write_csv(tmp_path, "patients", PATIENTS))
    assert (result.rows_read, result.inserted, result.quarantined) == (2, 2, 0)
    row = con.execute(
        "SELECT glucocorticoids, bmd_t_score FROM patients WHERE patient_id='P1'"
    ).fetchall()[0]
    assert row == (True, -2.5)


def test_same_file_twice_changes_nothing_and_says_so(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_csv(tmp_path, "patients", PATIENTS)
    (first,) = ingest(con, path)
    (second,) = ingest(con, path)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 2)
    assert second.same_as_batch == first.batch_id and not second.changed
    assert con.execute("SELECT count(*) FROM audit").fetchall()[0] == (0,)


def test_changed_value_is_updated_and_old_value_audited(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ingest(con, write_csv(tmp_path, "patients", PATIENTS))
    (result,) = ingest(con, write_csv(tmp_path, "patients", PATIENTS.replace("-2.5", "-2.9")))
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 1)
    audit = con.sql("SELECT table_name, row_key, column_name, old_value, new_value FROM audit").pl()
    assert audit.rows() == [("patients", "patient_id=P1", "bmd_t_score", "-2.5", "-2.9")]
    assert con.execute("SELECT bmd_t_score FROM patients WHERE patient_id='P1'").fetchall()[0] == (
        -2.9,
    )


def test_cleared_value_is_audited_as_null(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ingest(con, write_csv(tmp_path, "patients", PATIENTS))
    ingest(con, write_csv(tmp_path, "patients", PATIENTS.replace("-2.5,yes", ",yes")))
    assert con.execute("SELECT old_value, new_value FROM audit").fetchall() == [("-2.5", None)]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("patient_id,site_id,birth_year", "required column 'sex' is missing"),
        ("patient_id,sex,birth_year,name", "'name' (name) looks like a direct identifier"),
        ("patient_id,sex,birth_year,Date of Birth", "(full birth date)"),
        ("patient_id,sex,birth_year,email", "Drop or pseudonymise"),
        ("patient_id,sex,birth_year,phone_number", "(phone)"),
        ("patient_id,sex,birth_year,MRN", "(MRN)"),
        ("patient_id,sex,birth_year,ssn", "(SSN)"),
        ("patient_id,sex,birth_year,home_address", "(address)"),
        ("patient_id,sex,sex,birth_year", "column 'sex' appears more than once"),
    ],
)
def test_file_with_wrong_columns_is_refused_whole(
    con, tmp_path: Path, header: str, message: str
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "patients.csv"
    path.write_text(header + "\n" + ",".join(["x"] * len(header.split(","))) + "\n")
    with pytest.raises(IngestError, match=r"patients\.csv") as caught:
        ingest(con, path)
    assert message in str(caught.value)
    assert caught.value.exit_code == 2
    assert con.execute("SELECT count(*) FROM patients").fetchall()[0] == (0,)
    assert con.execute("SELECT status FROM ingest_batches").fetchall() == [("refused",)]


def test_file_that_is_not_utf8_is_refused(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "patients.csv"
    path.write_bytes(b"patient_id,sex,birth_year\nP\xe9,F,1950\n")
    with pytest.raises(IngestError, match=r"patients\.csv: the file is not UTF-8"):
        ingest(con, path)


def test_unknown_file_name_and_missing_path_are_named_not_loaded(tmp_path: Path) -> None:
    (tmp_path / "visits.csv").write_text("a\n1\n")
    found = discover([tmp_path / "visits.csv", tmp_path / "nope.csv"])
    assert found.files == []
    reasons = [(s.path.name, s.reason) for s in found.skipped]
    assert reasons[0][0] == "visits.csv" and "not a contract table" in reasons[0][1]
    assert reasons[1] == ("nope.csv", "no such file or folder")


def test_folder_is_taken_in_dependency_order(tmp_path: Path) -> None:
    for name in ("follow_up", "assessments", "patients", "index_fractures"):
        (tmp_path / f"{name}.csv").write_text("x\n")
    (tmp_path / "notes.txt").write_text("ignored")
    order = [spec.name for _, spec in discover_files([tmp_path])]
    assert order == ["patients", "index_fractures", "assessments", "follow_up"]


def test_unknown_extra_columns_are_kept_nowhere_and_reported(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_csv(tmp_path, "patients", "patient_id,sex,birth_year,shoe_size\nP1,F,1950,38")
    (result,) = ingest(con, path)
    assert result.ignored_columns == ("shoe_size",)
    assert "shoe_size" not in [c[0] for c in con.execute("DESCRIBE patients").fetchall()]


def test_headers_are_matched_case_and_space_insensitively(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_csv(tmp_path, "patients", "Patient ID,SEX,Birth-Year\nP1,f,1950")
    (result,) = ingest(con, path)
    assert result.inserted == 1
    assert con.execute("SELECT sex FROM patients").fetchall()[0] == ("F",)


ROW_RULES = [
    # (file, body after the header, column, rule)
    ("patients", "P3,S1,,1950,,,", "sex", "missing_value"),
    ("patients", "P3,S1,F,19x7,,,", "birth_year", "bad_type"),
    ("patients", "P3,S1,F,1950,abc,,", "bmd_t_score", "bad_type"),
    ("patients", "P3,S1,F,1950,,maybe,", "glucocorticoids", "bad_type"),
    ("patients", "P3,S1,X,1950,,,", "sex", "bad_enum"),
    ("patients", "P3,S1,F,1950,,,-2", "prior_vertebral_fractures", "out_of_range"),
    ("patients", "P3,S1,F,1850,,,", "birth_year", "out_of_range"),
    ("patients", "P3,S1,F,2031,,,", "birth_year", "future_date"),
    ("patients", "P3,S1,F,1950,nan,,", "bmd_t_score", "bad_type"),
    ("index_fractures", "P1,T13,2020-01-01,osteoporotic,", "level", "bad_enum"),
    ("index_fractures", "P1,T12,2021-02-30,osteoporotic,", "diagnosed_on", "bad_date"),
    ("index_fractures", "P1,T12,12/03/2021,osteoporotic,", "diagnosed_on", "bad_date"),
    ("index_fractures", "P1,T12,2030-01-01,osteoporotic,", "diagnosed_on", "future_date"),
    ("index_fractures", "P1,T12,1949-05-01,osteoporotic,", "diagnosed_on", "date_before_birth"),
    ("index_fractures", "P1,T12,2020-01-01,infectious,", "etiology", "bad_enum"),
    ("index_fractures", "P1,T12,2020-01-01,osteoporotic,7", "genant_grade", "out_of_range"),
    ("index_fractures", "P9,T12,2020-01-01,osteoporotic,", "patient_id", "unknown_patient"),
    ("procedures", "P1,L1,2020-02-01,cementoplasty,,", "procedure", "bad_enum"),
    ("procedures", "P1,L1,2020-02-01,vertebroplasty,99,", "cement_volume_ml", "out_of_range"),
    ("procedures", "P1,L1,2020-02-01,vertebroplasty,4,lots", "cement_leakage", "bad_enum"),
    ("assessments", "P1,2020-02-01,VAS,14", "score", "out_of_range"),
    ("assessments", "P1,2020-02-01,ODI,101", "score", "out_of_range"),
    ("assessments", "P1,2020-02-01,VAS,", "score", "missing_value"),
    ("assessments", "P1,2020-02-01,NRS,4", "instrument", "bad_enum"),
    ("fractures", "P1,L2,2020-05-01,ultrasound", "detection", "bad_enum"),
    ("fractures", ",L2,2020-05-01,clinical", "patient_id", "missing_value"),
    ("follow_up", "P1,2020-05-01,gone", "status", "bad_enum"),
    ("follow_up", "P1,,alive", "contact_on", "missing_value"),
]


@pytest.mark.parametrize(("table", "row", "column", "rule"), ROW_RULES, ids=lambda v: str(v))
def test_each_row_rule_sends_the_row_to_quarantine(
    con, tmp_path: Path, table: str, row: str, column: str, rule: str
) -> None:  # type: ignore[no-untyped-def]
    ingest(con, write_csv(tmp_path, "patients", PATIENTS))
    header = ",".join(SPECS[table].column_names)
    good = {
        "patients": "P4,S1,F,1950,,,",
        "index_fractures": "P1,L1,2020-01-01,osteoporotic,2",
        "procedures": "P1,L1,2020-02-01,vertebroplasty,4,none",
        "assessments": "P1,2020-01-02,VAS,7",
        "fractures": "P1,L2,2020-05-01,clinical",
        "follow_up": "P1,2020-05-01,alive",
    }[table]
    folder = tmp_path / "in"
    folder.mkdir()
    path = write_csv(folder, table, f"{header}\n{good}\n{row}")
    (result,) = ingest(con, path)
    assert (result.rows_read, result.inserted, result.quarantined) == (2, 1, 1)
    q = quarantine(con).filter(pl.col("file_name") == f"{table}.csv").row(0, named=True)
    assert (q["line"], q["column_name"], q["rule"]) == (3, column, rule)
    assert column in q["detail"]


def test_conflicting_duplicate_key_quarantines_every_copy(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    body = PATIENTS + "P3,S1,F,1950,,,\nP3,S2,F,1950,,,\nP1,S1,F,1950,-2.5,yes,0"
    (result,) = ingest(con, write_csv(tmp_path, "patients", body))
    assert (result.rows_read, result.inserted, result.unchanged, result.quarantined) == (5, 2, 1, 2)
    assert result.repeats == 1
    rules = quarantine(con).select("line", "rule").rows()
    assert rules == [(4, "duplicate_key_conflict"), (5, "duplicate_key_conflict")]


def test_quarantine_keeps_the_raw_row(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ingest(con, write_csv(tmp_path, "patients", "patient_id,sex,birth_year\nP7,Q,1950"))
    raw = con.execute("SELECT raw_row->>'sex', raw_row->>'patient_id' FROM quarantine").fetchall()[
        0
    ]
    assert raw == ("Q", "P7")


def test_pseudonymisation_is_keyed_and_consistent_across_files(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ingest(con, write_csv(tmp_path, "patients", PATIENTS), key="secret")
    body = "patient_id,assessed_on,instrument,score\nP1,2020-01-01,VAS,7"
    (result,) = ingest(con, write_csv(tmp_path, "assessments", body), key="secret")
    assert result.inserted == 1
    ids = {r[0] for r in con.execute("SELECT patient_id FROM patients").fetchall()}
    assert "P1" not in ids and all(len(i) == 32 for i in ids)
    joined = con.execute(
        "SELECT count(*) FROM assessments JOIN patients USING (patient_id)"
    ).fetchall()[0]
    assert joined == (1,)
    (again,) = ingest(con, write_csv(tmp_path, "patients", PATIENTS), key="secret")
    assert again.unchanged == 2
    with pytest.raises(PseudonymKeyError, match="not the key"):  # no second copy of everyone
        ingest(con, write_csv(tmp_path, "patients", PATIENTS), key="other")


def test_parquet_files_are_ingested_like_csv(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    frame = pl.DataFrame(
        {
            "patient_id": ["P1", "P2"],
            "sex": ["F", "Z"],
            "birth_year": [1950, 1951],
            "glucocorticoids": [True, None],
        }
    )
    frame.write_parquet(tmp_path / "patients.parquet")
    (result,) = ingest(con, tmp_path / "patients.parquet")
    assert (result.inserted, result.quarantined) == (1, 1)
    assert quarantine(con).row(0, named=True)["line"] == 2


def test_file_with_header_only_is_refused_as_having_no_rows(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IngestError, match="has a header but no rows; nothing was stored"):
        ingest(con, write_csv(tmp_path, "patients", "patient_id,sex,birth_year"))
    assert con.execute("SELECT status FROM ingest_batches").fetchall() == [("refused",)]


def test_a_refused_file_does_not_stop_the_others(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_csv(tmp_path, "patients", PATIENTS)
    write_csv(tmp_path, "follow_up", "patient_id,contact_on\nP1,2020-01-01")
    outcomes = ingest_paths(con, [tmp_path], as_of=AS_OF)
    assert isinstance(outcomes[0], IngestResult) and isinstance(outcomes[1], IngestError)
    assert "required column 'status' is missing" in str(outcomes[1])


def test_malformed_lines_are_quarantined_with_their_line_numbers(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    body = "patient_id,sex,birth_year\nP1,F,1950\nP2,F,1950,extra\nP3,F\nP4,M,1944\nP5,X,1950"
    (result,) = ingest(con, write_csv(tmp_path, "patients", body))
    assert (result.rows_read, result.inserted, result.quarantined) == (5, 2, 3)
    rows = quarantine(con).select("line", "rule").rows()
    assert rows == [(3, "bad_row_shape"), (4, "bad_row_shape"), (6, "bad_enum")]
    stored = con.execute("SELECT patient_id FROM patients ORDER BY 1").fetchall()
    assert stored == [("P1",), ("P4",)]


def test_line_numbers_skip_malformed_lines_both_ways() -> None:
    line_map = LineMap(2, np.array([9, 3, 4]))
    lines = line_map.lines(np.arange(8))
    assert lines.tolist() == [2, 5, 6, 7, 8, 10, 11, 12]
    assert line_map.ordinals(lines).tolist() == list(range(8))


def test_chunks_of_one_line_keep_line_numbers_and_duplicate_rule(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    body = "patient_id,sex,birth_year\nP1,F,1950\nP2,F,1950,extra\nP1,M,1950\nP4,M,1944\nP4,M,1944"
    path = write_csv(tmp_path, "patients", body)
    result = ingest_file(con, path, SPECS["patients"], as_of=AS_OF, chunk_rows=1)
    assert (result.rows_read, result.inserted, result.quarantined, result.repeats) == (5, 1, 3, 1)
    rows = quarantine(con).select("line", "rule").rows()
    assert rows == [
        (2, "duplicate_key_conflict"),
        (3, "bad_row_shape"),
        (4, "duplicate_key_conflict"),
    ]


def test_parquet_columns_named_like_staging_columns_do_not_collide(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    frame = pl.DataFrame(
        {"c1": ["x"], "patient_id": ["P1"], "c0": [1.5], "sex": ["F"], "birth_year": [1950]}
    )
    frame.write_parquet(tmp_path / "patients.parquet")
    (result,) = ingest(con, tmp_path / "patients.parquet")
    assert (result.inserted, result.ignored_columns) == (1, ("c1", "c0"))
    assert con.execute("SELECT patient_id, sex, birth_year FROM patients").fetchall() == [
        ("P1", "F", 1950)
    ]
