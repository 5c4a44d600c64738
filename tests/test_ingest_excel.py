"""Ingest of Excel workbooks: one sheet per contract table, dates in every form Excel holds
them, row rules and quarantine with sheet rows, unknown sheets reported, the inbox."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.db import connect
from registry.errors import IngestError
from registry.ingest import discover, ingest_paths
from registry.ingest.contract import LOAD_ORDER, SPECS
from registry.migrate import apply_migrations
from registry.refresh.inbox import ingest_inbox
from registry.synth import generate_cohort, write_cohort
from tests.conftest import AS_OF

PATIENT_HEADER = ["patient_id", "site_id", "sex", "birth_year", "glucocorticoids"]
FRACTURE_HEADER = ["patient_id", "level", "diagnosed_on", "etiology"]


def workbook(path: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    """Write a workbook with one sheet per entry (first row the header)."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def run(con: duckdb.DuckDBPyConnection, *paths: Path, key: str | None = None) -> list[Any]:
    return ingest_paths(con, list(paths), as_of=AS_OF, pseudonym_key=key)


def quarantine(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return con.sql("SELECT file_name, line, column_name, rule, value FROM quarantine").pl()


def patients_sheet(*rows: list[Any]) -> list[list[Any]]:
    return [PATIENT_HEADER, *[list(r) for r in rows]]


def test_demo_workbook_ingests_to_the_same_rows_as_the_csvs(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "csv"
    write_cohort(generate_cohort(patients=300, seed=11, dirty=0.02), folder)
    workbook(tmp_path / "export.xlsx", {n: typed_rows(folder / f"{n}.csv", n) for n in LOAD_ORDER})
    other = connect()
    apply_migrations(other)
    assert not [o for o in run(con, folder) if isinstance(o, IngestError)]
    assert not [o for o in run(other, tmp_path / "export.xlsx") if isinstance(o, IngestError)]
    for name in LOAD_ORDER:
        order = ", ".join(SPECS[name].column_names)
        from_csv = con.sql(f"SELECT * FROM {name} ORDER BY {order}").pl()
        from_excel = other.sql(f"SELECT * FROM {name} ORDER BY {order}").pl()
        assert from_csv.height > 0
        assert from_excel.equals(from_csv), name
    # the dirty rows are quarantined on the same lines: CSV line n is sheet row n
    text = "SELECT line, column_name, rule FROM quarantine ORDER BY table_name, line"
    assert con.sql(text.replace("table_name", "file_name")).fetchall()
    csv_q = con.sql("SELECT split_part(file_name, '.', 1), line, rule FROM quarantine").fetchall()
    xl_q = other.sql(
        "SELECT regexp_extract(file_name, '\\[(.*)\\]', 1), line, rule FROM quarantine"
    ).fetchall()
    assert sorted(csv_q) == sorted(xl_q)
    other.close()


def typed_rows(path: Path, table: str) -> list[list[Any]]:
    """A CSV file's rows with the cell types a person's workbook would hold: dates as date
    cells, numbers as numbers, the rest text."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    kinds = [SPECS[table].column(h).kind if h in SPECS[table].column_names else "" for h in rows[0]]
    return [rows[0], *[[typed(v, k) for v, k in zip(r, kinds, strict=True)] for r in rows[1:]]]


def typed(value: str, kind: str) -> Any:
    if value == "":
        return None
    try:
        if kind == "date":
            return dt.date.fromisoformat(value)
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
    except ValueError:
        return value  # a dirty value stays text, as it would in a workbook
    return value


@pytest.mark.parametrize(
    "cell",
    [dt.date(2020, 3, 15), dt.datetime(2020, 3, 15), 43905, 43905.0, "2020-03-15"],
    ids=["date", "datetime", "serial", "float-serial", "text"],
)
def test_every_date_form_gives_the_same_date(con, tmp_path: Path, cell: Any) -> None:  # type: ignore[no-untyped-def]
    path = workbook(
        tmp_path / "w.xlsx",
        {
            "patients": patients_sheet(["P1", "S1", "F", 1950, "yes"]),
            "index_fractures": [FRACTURE_HEADER, ["P1", "L1", cell, "osteoporotic"]],
        },
    )
    run(con, path)
    assert con.sql("SELECT diagnosed_on FROM index_fractures").fetchall() == [
        (dt.date(2020, 3, 15),)
    ]


def test_serials_before_march_1900_and_times_are_quarantined(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = [["P1", "L1", 60, "osteoporotic"], ["P1", "L2", 43905.5, "osteoporotic"]]
    rows.append(["P1", "L3", dt.datetime(2020, 3, 15, 10, 30), "osteoporotic"])
    path = workbook(
        tmp_path / "w.xlsx",
        {
            "patients": patients_sheet(["P1", "S1", "F", 1950, "yes"]),
            "index_fractures": [FRACTURE_HEADER, *rows],
        },
    )
    run(con, path)
    found = quarantine(con).filter(pl.col("file_name") == "w.xlsx[index_fractures]")
    assert found.select("line", "rule").rows() == [
        (2, "bad_date"),
        (3, "bad_date"),
        (4, "bad_date"),
    ]
    assert found.get_column("value").to_list() == ["60", "43905.5", "2020-03-15 10:30:00"]


def test_the_1904_date_system_uses_its_own_epoch(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    book = openpyxl.Workbook()
    book.epoch = openpyxl.utils.datetime.CALENDAR_MAC_1904
    sheet = book.active
    sheet.title = "patients"
    for row in patients_sheet(["P1", "S1", "F", 1950, "yes"]):
        sheet.append(row)
    fractures = book.create_sheet("index_fractures")
    for row in [FRACTURE_HEADER, ["P1", "L1", 42443, "osteoporotic"]]:  # 1904-01-01 + 42443
        fractures.append(row)
    book.save(tmp_path / "mac.xlsx")
    run(con, tmp_path / "mac.xlsx")
    assert con.sql("SELECT diagnosed_on FROM index_fractures").fetchall() == [
        (dt.date(2020, 3, 15),)
    ]


def test_bad_cells_are_quarantined_with_their_sheet_row(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = patients_sheet(
        [101, "S1", "F", 1950.0, True],  # a numeric id, a float year, a boolean cell
        ["P2", "S1", "X", 1950, "yes"],  # row 3: bad sex
        [],  # row 4: empty, no record
        [None, "S1", "F", 1950, "no"],  # row 5: no id
        ["P6", "S1", "F", "#N/A", "no"],  # row 6: an error typed as text
        ["P7", "S1", "F", 1950, "maybe"],  # row 7: bad boolean
    )
    path = workbook(tmp_path / "w.xlsx", {"patients": rows})
    book = openpyxl.load_workbook(path)
    book["patients"]["A8"] = "P8"
    book["patients"]["B8"] = "=1/0"  # a formula without a cached value: an empty cell
    book["patients"]["C8"] = "F"
    book["patients"]["D8"] = 1950
    cell = book["patients"]["A9"]
    cell.value, cell.data_type = "#REF!", "e"  # a real error cell
    book["patients"]["C9"], book["patients"]["D9"] = "F", 1950
    book.save(path)
    (result,) = run(con, path)
    assert (result.rows_read, result.inserted, result.quarantined) == (7, 2, 5)
    assert quarantine(con).select("file_name", "line", "rule").rows() == [
        ("w.xlsx[patients]", 3, "bad_enum"),
        ("w.xlsx[patients]", 5, "missing_value"),
        ("w.xlsx[patients]", 6, "excel_error"),
        ("w.xlsx[patients]", 7, "bad_type"),
        ("w.xlsx[patients]", 9, "excel_error"),
    ]
    stored = con.sql("SELECT patient_id, birth_year, glucocorticoids FROM patients ORDER BY 1")
    assert stored.fetchall() == [("101", 1950, True), ("P8", 1950, None)]


def test_an_error_cell_is_quarantined_not_pseudonymised(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = workbook(tmp_path / "w.xlsx", {"patients": patients_sheet(["#N/A", "S1", "F", 1950])})
    (result,) = run(con, path, key="k" * 32)
    assert result.quarantined == 1
    assert quarantine(con).select("rule", "value").rows() == [("excel_error", "#N/A")]


def test_unknown_sheet_is_reported_and_the_others_read(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = workbook(
        tmp_path / "w.xlsx",
        {"Patients": patients_sheet(["P1", "S1", "F", 1950]), "patient": [["x"]], "notes": []},
    )
    found = discover([path])
    assert [(p.name, s.name) for p, s in found.files] == [("w.xlsx", "patients")]
    reasons = {s.path.name: s.reason for s in found.unrecognised}
    assert "did you mean patients?" in reasons["w.xlsx[patient]"]
    assert "not a contract table" in reasons["w.xlsx[notes]"]


def test_workbook_without_contract_sheet_or_unreadable_is_named(tmp_path: Path) -> None:
    path = workbook(tmp_path / "w.xlsx", {"Sheet1": [["a"]]})
    (tmp_path / "broken.xlsx").write_bytes(b"not a zip")
    found = discover([path, tmp_path / "broken.xlsx"])
    assert not found.files
    reasons = {s.path.name: s.reason for s in found.unrecognised}
    assert "no sheet of this workbook is named after a contract table" in reasons["w.xlsx"]
    assert "cannot be read" in reasons["broken.xlsx"]


def test_identifier_column_refuses_the_sheet(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = [[*PATIENT_HEADER, "name"], ["P1", "S1", "F", 1950, "yes", "Jane Doe"]]
    (outcome,) = run(con, workbook(tmp_path / "w.xlsx", {"patients": rows}))
    assert isinstance(outcome, IngestError)
    assert "w.xlsx[patients]: column 'name'" in str(outcome)
    assert con.execute("SELECT count(*) FROM patients").fetchone() == (0,)


def test_empty_header_and_empty_sheet_are_refused(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = workbook(tmp_path / "w.xlsx", {"patients": [], "index_fractures": [FRACTURE_HEADER]})
    outcomes = run(con, path)
    assert [type(o) for o in outcomes] == [IngestError, IngestError]
    assert "row 1 is empty" in str(outcomes[0])
    assert "header but no rows" in str(outcomes[1])


def test_value_right_of_the_header_is_an_unnamed_extra(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = patients_sheet(["P1", "S1", "F", 1950, "yes", None, "a note"])
    (result,) = run(con, workbook(tmp_path / "w.xlsx", {"patients": rows}))
    assert result.inserted == 1
    assert result.ignored_columns == ("(unnamed column 6)", "(unnamed column 7)")


def test_same_workbook_twice_changes_nothing(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = workbook(tmp_path / "w.xlsx", {"patients": patients_sheet(["P1", "S1", "F", 1950])})
    run(con, path)
    (again,) = run(con, path)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 1)


def test_inbox_workbook_is_picked_up_and_moved(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    workbook(
        inbox / "w.xlsx",
        {
            "patients": patients_sheet(["P1", "S1", "F", 1950]),
            "index_fractures": [FRACTURE_HEADER, ["P1", "L1", dt.date(2020, 1, 1), "osteoporotic"]],
            "notes": [["free text"]],
        },
    )
    summary = ingest_inbox(con, inbox, stamp="b1", as_of=AS_OF, pseudonym_key=None)
    assert summary.loaded == ["w.xlsx[patients]", "w.xlsx[index_fractures]"]
    assert [f for f, _ in summary.unrecognised] == ["w.xlsx[notes]"]
    assert (inbox / "processed" / "b1" / "w.xlsx").exists()
    assert con.execute("SELECT count(*) FROM index_fractures").fetchone() == (1,)


CELLS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 31)),
    st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2100, 1, 1)),
    st.sampled_from(["F", "M", "yes", "no", "#N/A", "", " ", "1950", "=1+1", "x,y", '"q"']),
    # any text a worksheet can hold (no control characters); "=..." would be a formula
    st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=12).filter(
        lambda t: not t.startswith("=")
    ),
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(st.lists(CELLS, min_size=5, max_size=5), min_size=1, max_size=12))
def test_random_cells_never_crash_and_every_row_is_counted(
    tmp_path: Path, rows: list[list[Any]]
) -> None:
    con = connect()
    apply_migrations(con)
    try:
        path = tmp_path / "random.xlsx"
        workbook(path, {"patients": patients_sheet(*rows)})
        (outcome,) = run(con, path)
        book = openpyxl.load_workbook(path, read_only=True)
        records = sum(
            any(c not in (None, "") for c in r)
            for r in book["patients"].iter_rows(min_row=2, values_only=True)
        )
        if isinstance(outcome, IngestError):
            assert records == 0 and "no rows" in str(outcome)
            return
        assert outcome.rows_read == records
        stored = con.execute("SELECT count(*) FROM patients").fetchone()[0]
        quarantined = con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
        assert outcome.inserted == stored
        assert stored + quarantined + outcome.repeats == records
    finally:
        con.close()
