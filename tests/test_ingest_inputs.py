"""Operators' input mistakes: separators, empty files, colliding columns, quotes, Parquet types."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
import pytest
from rich.console import Console

from registry import console as terminal
from registry.errors import IngestError
from registry.ingest import IngestResult, ingest_paths
from tests.conftest import AS_OF, PATIENTS


def ingest_one(con: duckdb.DuckDBPyConnection, path: Path) -> IngestResult:
    (outcome,) = ingest_paths(con, [path], as_of=AS_OF)
    if isinstance(outcome, IngestError):
        raise outcome
    return outcome


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def quarantined(con: duckdb.DuckDBPyConnection) -> list[tuple[int, str]]:
    return con.execute("SELECT line, rule FROM quarantine ORDER BY line").fetchall()


@pytest.mark.parametrize(("separator", "named"), [(";", "';'"), ("\t", "tabs"), ("|", "'|'")])
def test_other_separators_are_named_and_the_file_refused(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, separator: str, named: str
) -> None:
    text = PATIENTS.strip().replace(",", separator).replace("-2.5", "-2,5")
    path = write(tmp_path, "patients.csv", "\n".join(s.strip() for s in text.splitlines()))
    with pytest.raises(IngestError, match=f"separated by {named}, not commas; export it as"):
        ingest_one(con, path)
    assert con.execute("SELECT count(*) FROM patients").fetchall() == [(0,)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"the file is empty \(no header, no rows\)"),
        ("\n\n  \n", r"the file is empty \(no header, no rows\)"),
        ("\npatient_id,sex,birth_year\nP1,F,1950\n", "the first line is blank"),
        ("patient_id,sex,birth_year\n", "the file has a header but no rows"),
        ("patient_id,sex,birth_year\n\n\n", "the file has a header but no rows"),
    ],
)
def test_empty_and_header_only_files_say_so(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(IngestError, match=message) as caught:
        ingest_one(con, write(tmp_path, "patients.csv", text))
    assert "required column" not in str(caught.value)
    assert con.execute("SELECT status FROM ingest_batches").fetchall() == [("refused",)]


def test_header_only_parquet_is_refused(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    frame = pl.DataFrame(schema={"patient_id": pl.String, "sex": pl.String, "birth_year": pl.Int64})
    frame.write_parquet(tmp_path / "patients.parquet")
    with pytest.raises(IngestError, match="header but no rows"):
        ingest_one(con, tmp_path / "patients.parquet")


@pytest.mark.parametrize("extra", ["__ordinal", "line", "rowid", "sex__t", "__birth_year"])
def test_columns_named_like_internal_ones_are_ignored_extras(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, extra: str
) -> None:
    text = f"patient_id,{extra},sex,birth_year\nP1,99,F,1950\nP2,x,M,1941\n"
    result = ingest_one(con, write(tmp_path, "patients.csv", text))
    assert (result.inserted, result.quarantined, result.ignored_columns) == (2, 0, (extra,))
    rows = con.execute("SELECT patient_id, sex, birth_year FROM patients ORDER BY 1").fetchall()
    assert rows == [("P1", "F", 1950), ("P2", "M", 1941)]


def test_internal_names_do_not_collide_in_parquet(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    frame = pl.DataFrame({"__ordinal": [7], "patient_id": ["P1"], "sex": ["F"], "line": [3]})
    frame.with_columns(birth_year=pl.lit(1950)).write_parquet(tmp_path / "patients.parquet")
    result = ingest_one(con, tmp_path / "patients.parquet")
    assert (result.inserted, result.ignored_columns) == (1, ("__ordinal", "line"))


def test_unnamed_columns_are_reported_by_position_never_as_an_empty_name(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    text = "patient_id,sex,birth_year,,\nP1,F,1950,,\n"
    result = ingest_one(con, write(tmp_path, "patients.csv", text))
    assert result.ignored_columns == ("(unnamed column 4)", "(unnamed column 5)")
    console = Console(record=True, width=200)
    terminal.print_ingest(console, console, result)
    lines = console.export_text().splitlines()
    assert "  ignored unknown column(s): (unnamed column 4), (unnamed column 5)" in lines


def test_no_ignored_columns_line_without_ignored_columns(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    result = ingest_one(
        con, write(tmp_path, "patients.csv", "patient_id,sex,birth_year\nP1,F,1950")
    )
    console = Console(record=True, width=200)
    terminal.print_ingest(console, console, result)
    assert "ignored" not in console.export_text()


def test_quoted_newlines_keep_the_physical_start_line(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    text = (
        "patient_id,site_id,sex,birth_year\n"
        'P1,"North\nWing",F,1950\n'  # lines 2-3
        "P2,S1,X,1950\n"  # line 4: bad_enum
        'P3,"a\n\nb",F,1950\n'  # lines 5-7
        "P4,S1,F,19x0\n"  # line 8: bad_type
    )
    result = ingest_one(con, write(tmp_path, "patients.csv", text))
    assert (result.rows_read, result.inserted, result.quarantined) == (4, 2, 2)
    assert quarantined(con) == [(4, "bad_enum"), (8, "bad_type")]
    assert con.execute("SELECT site_id FROM patients WHERE patient_id = 'P1'").fetchall() == [
        ("North\nWing",)
    ]


def test_unterminated_quote_is_quarantined_on_its_own_line(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    text = (
        "patient_id,site_id,sex,birth_year\n"
        "P1,S1,F,1950\n"
        'P2,"S1,F,1950\n'  # line 3: the quote never closes
        "P3,S1,F,1950\n"
        'P4,"S 2",M,1941\n'
        "P5,S1,X,1950\n"  # line 6: bad_enum
    )
    result = ingest_one(con, write(tmp_path, "patients.csv", text))
    assert (result.rows_read, result.inserted, result.quarantined) == (5, 3, 2)
    assert quarantined(con) == [(3, "bad_row_shape"), (6, "bad_enum")]
    value = con.execute("SELECT value FROM quarantine WHERE line = 3").fetchall()
    assert value == [('P2,"S1,F,1950',)]
    stored = con.execute("SELECT patient_id FROM patients ORDER BY 1").fetchall()
    assert stored == [("P1",), ("P3",), ("P4",)]


def test_blank_lines_are_skipped_and_do_not_shift_line_numbers(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    text = "patient_id,sex,birth_year\nP1,F,1950\n\nP2,X,1950\n\n"
    result = ingest_one(con, write(tmp_path, "patients.csv", text))
    assert (result.rows_read, result.inserted) == (2, 1)
    assert quarantined(con) == [(4, "bad_enum")]


def test_parquet_timestamps_at_midnight_are_dates_and_whole_floats_are_ints(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    pl.DataFrame(
        {
            "patient_id": ["P1", "P2", "P3"],
            "sex": ["F", "M", "F"],
            "birth_year": [1950.0, 1941.5, None],
            "prior_vertebral_fractures": [2.0, None, 1.0],
        }
    ).write_parquet(tmp_path / "patients.parquet")
    patients = ingest_one(con, tmp_path / "patients.parquet")
    assert (patients.inserted, patients.quarantined) == (1, 2)
    assert quarantined(con) == [(2, "bad_type"), (3, "missing_value")]  # Parquet: row numbers
    row = con.execute("SELECT birth_year, prior_vertebral_fractures FROM patients").fetchall()
    assert row == [(1950, 2)]
    pl.DataFrame(
        {
            "patient_id": ["P1", "P1"],
            "contact_on": [dt.datetime(2020, 1, 2), dt.datetime(2020, 3, 4, 13, 30)],
            "status": ["alive", "alive"],
        }
    ).write_parquet(tmp_path / "follow_up.parquet")
    follow_up = ingest_one(con, tmp_path / "follow_up.parquet")
    assert (follow_up.inserted, follow_up.quarantined) == (1, 1)
    stored = con.execute("SELECT contact_on FROM follow_up").fetchall()
    assert stored == [(dt.date(2020, 1, 2),)]
    detail = con.execute("SELECT rule, value FROM quarantine WHERE file_name LIKE 'follow%'")
    assert detail.fetchall() == [("bad_date", "2020-03-04 13:30:00")]


def test_csv_whole_floats_and_midnight_timestamps_are_accepted_too(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    ingest_one(con, write(tmp_path, "patients.csv", "patient_id,sex,birth_year\nP1,F,1950.0\n"))
    text = "patient_id,contact_on,status\nP1,2020-01-02T00:00:00,alive\nP1,2020-01-03 00:00,alive\n"
    result = ingest_one(con, write(tmp_path, "follow_up.csv", text))
    assert (result.inserted, result.quarantined) == (2, 0)


def test_balanced_quotes_take_the_fast_reader_with_exact_line_numbers(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    text = (
        "patient_id,site_id,sex,birth_year\n"
        'P1,"S1"x,F,1950\n'  # line 2: text after a closing quote
        'P2,a"b"c,F,1950\n'
        'P3,"S ""3""",F,1950\n'
        "P4,S4,X,1950\n"  # line 5: bad_enum
    )
    result = ingest_one(con, write(tmp_path, "patients.csv", text))
    assert quarantined(con) == [(2, "bad_row_shape"), (5, "bad_enum")]
    assert result.top_reasons == (("bad_row_shape", 1), ("bad_enum in sex", 1))
    rows = con.execute("SELECT patient_id, site_id FROM patients ORDER BY 1").fetchall()
    assert rows == [("P2", 'a"b"c'), ("P3", 'S "3"')]
