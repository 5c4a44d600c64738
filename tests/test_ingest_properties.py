"""Property-based ingest tests: random corruption never crashes and never loses a row."""

from __future__ import annotations

import csv
import datetime as dt
import io
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.db import connect
from registry.errors import IngestError
from registry.ingest import IngestResult, discover_files, ingest_file, ingest_paths
from registry.ingest.contract import SPECS
from registry.migrate import apply_migrations
from tests.conftest import AS_OF

VALID = {
    "patient_id": ["P1", "P2", "P3"],
    "site_id": ["S1", "S2", ""],
    "sex": ["F", "M", "f"],
    "birth_year": ["1950", "1941", "1939"],
    "bmd_t_score": ["-2.5", "-3.0", ""],
    "glucocorticoids": ["yes", "0", "false"],
    "prior_vertebral_fractures": ["0", "2", ""],
    "level": ["L1", "T12", "T7"],
    "diagnosed_on": ["2020-01-01", "2021-06-30", "2019-02-28"],
    "etiology": ["osteoporotic", "malignant", "traumatic"],
    "genant_grade": ["1", "2", "3"],
    "assessed_on": ["2020-01-02", "2020-02-01", "2020-07-01"],
    "instrument": ["VAS", "ODI", "VAS"],
    "score": ["7.5", "60", "0"],
}
messy_text = st.one_of(
    st.sampled_from(
        ["", " ", "NA", "-1", "1e309", "nan", "2020-13-01", "T13", "0x10", "é", '"', ","]
    ),
    st.text(max_size=12),
)


def cell(column: str) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(VALID[column]), messy_text)


def rows_for(table: str) -> st.SearchStrategy[list[list[str]]]:
    columns = SPECS[table].column_names
    row = st.tuples(*(cell(c) for c in columns)).map(list)
    return st.lists(row, min_size=1, max_size=25)  # a file without rows is refused


def to_csv(header: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def run(folder: Path, files: dict[str, str]) -> list[IngestResult | IngestError]:
    for name, text in files.items():
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    con = connect()
    apply_migrations(con)
    first = ingest_paths(con, [folder], as_of=AS_OF)
    second = ingest_paths(con, [folder], as_of=AS_OF)
    for a, b in zip(first, second, strict=True):
        if isinstance(a, IngestResult):
            assert isinstance(b, IngestResult)
            stored = con.execute(f"SELECT count(*) FROM {a.table}").fetchall()[0][0]
            assert a.rows_read == a.inserted + a.updated + a.unchanged + a.quarantined
            assert stored >= a.inserted
            assert (b.inserted, b.updated) == (0, 0), "re-ingest changed something"
            assert b.quarantined == a.quarantined
    return first


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    patients=rows_for("patients"),
    fractures=rows_for("index_fractures"),
    assessments=rows_for("assessments"),
)
def test_rows_read_equal_inserted_updated_unchanged_quarantined(
    patients: list[list[str]], fractures: list[list[str]], assessments: list[list[str]]
) -> None:
    files = {
        "patients": to_csv(list(SPECS["patients"].column_names), patients),
        "index_fractures": to_csv(list(SPECS["index_fractures"].column_names), fractures),
        "assessments": to_csv(list(SPECS["assessments"].column_names), assessments),
    }
    with tempfile.TemporaryDirectory() as folder:
        outcomes = run(Path(folder), files)
    refused = [str(o) for o in outcomes if isinstance(o, IngestError)]
    assert not refused, refused


@settings(max_examples=60, deadline=None)
@given(
    header=st.lists(
        st.one_of(st.sampled_from(SPECS["patients"].column_names), st.text(max_size=8)), max_size=9
    ),
    rows=st.lists(st.lists(messy_text, min_size=0, max_size=10), max_size=6),
    raw=st.binary(max_size=40),
)
def test_any_header_or_bytes_are_stored_quarantined_or_refused_never_a_crash(
    header: list[str], rows: list[list[str]], raw: bytes
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        outcomes = run(Path(folder), {"patients": to_csv(header, rows)})
        (Path(folder) / "follow_up.csv").write_bytes(raw)
        con = connect()
        apply_migrations(con)
        more = ingest_paths(con, [Path(folder)], as_of=AS_OF)
    for outcome in [*outcomes, *more]:
        if isinstance(outcome, IngestError):
            assert ".csv" in str(outcome)


def ingest_in_chunks(folder: Path, chunk_rows: int) -> tuple[list[tuple], list[tuple]]:
    """Stored assessments and the quarantine after ingesting folder chunk_rows lines at a time."""
    con = connect()
    apply_migrations(con)
    for path, spec in discover_files([folder]):
        ingest_file(con, path, spec, as_of=AS_OF, chunk_rows=chunk_rows)
    stored = con.execute("SELECT * FROM assessments ORDER BY ALL").fetchall()
    quarantined = con.execute(
        "SELECT file_name, line, column_name, rule, value, detail, raw_row::VARCHAR "
        "FROM quarantine ORDER BY ALL"
    ).fetchall()
    return stored, quarantined


def expected_assessments(rows: list[list[str]]) -> tuple[list[tuple], list[int]]:
    """A deliberately plain oracle for the values the strategy draws: the stored rows and
    the quarantined lines (2 = the first data line) of an assessments file."""
    known, limits = {"P1", "P2"}, {"VAS": 10.0, "ODI": 100.0}
    typed: dict[int, tuple] = {}
    for line, (patient, day, instrument, score) in enumerate(rows, start=2):
        name = instrument.upper()
        valid = patient in known and day != "2020-13-01" and name in limits and score != "x"
        if valid and 0 <= float(score) <= limits[name]:
            typed[line] = (patient, dt.date.fromisoformat(day), name, float(score))
    by_key: dict[tuple, set[tuple]] = {}
    for row in typed.values():
        by_key.setdefault(row[:3], set()).add(row)
    # a key with two different values: every copy is quarantined; an exact repeat is stored once
    clashing = {key for key, values in by_key.items() if len(values) > 1}
    stored = sorted({row for row in typed.values() if row[:3] not in clashing})
    good = {line for line, row in typed.items() if row[:3] not in clashing}
    return stored, sorted(set(range(2, len(rows) + 2)) - good)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    assessments=st.lists(
        st.tuples(
            st.sampled_from(["P1", "P2", "P9", ""]),
            st.sampled_from(["2020-01-02", "2020-02-01", "2020-13-01"]),
            st.sampled_from(["VAS", "ODI", "vas", "XYZ"]),
            st.sampled_from(["7.5", "60", "0", "11", "x"]),
        ).map(list),
        min_size=1,
        max_size=30,
    ),
    chunk_rows=st.integers(min_value=1, max_value=7),
)
def test_chunked_ingest_equals_whole_file_validation(
    assessments: list[list[str]], chunk_rows: int
) -> None:
    """Streaming ingest (chunks of lines, duplicate keys settled over the whole file) stores
    and quarantines the same rows whatever the chunk size, and exactly what a plain oracle
    of the contract's rules expects."""
    header = list(SPECS["assessments"].column_names)
    patients = "patient_id,sex,birth_year\nP1,F,1950\nP2,M,1941\n"
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "patients.csv").write_text(patients, encoding="utf-8")
        (folder / "assessments.csv").write_text(to_csv(header, assessments), encoding="utf-8")
        chunked = ingest_in_chunks(folder, chunk_rows)
        whole = ingest_in_chunks(folder, 10**6)
    assert chunked == whole
    stored, quarantined = expected_assessments(assessments)
    assert chunked[0] == stored
    lines = sorted(q[1] for q in chunked[1] if q[0] == "assessments.csv")
    assert lines == quarantined
