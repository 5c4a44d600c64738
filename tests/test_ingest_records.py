"""Record boundaries: quoted newlines and unterminated quotes keep physical start lines."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.db import connect
from registry.ingest import IngestResult, ingest_paths
from registry.ingest.contract import SPECS
from registry.ingest.reading import read_header
from registry.ingest.records import one_record_per_line, read_records
from registry.ingest.staging import drop_staged, raw_chunks, stage_rows
from registry.migrate import apply_migrations
from tests.conftest import AS_OF

HEADER = "patient_id,site_id,sex,birth_year"
# site text: letters plus the characters that need quoting; always begins with a letter
# inside quotes, so an unterminated quote is caught at the next quote of a later record
site_text = st.text(alphabet="ab ,\n\"'", max_size=8).map(lambda t: "s" + t)
record = st.one_of(
    st.tuples(st.just("ok"), site_text),
    st.tuples(st.just("broken"), st.text(alphabet="ab ,'", max_size=6)),
)


def quoted(value: str) -> str:
    if any(c in value for c in ',"\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def build(records: list[tuple[str, str]]) -> tuple[str, dict[str, tuple[int, str]], list[int]]:
    """The file text, the well-formed records (id -> (start line, site)) and broken lines."""
    out = io.StringIO()
    out.write(HEADER + "\n")
    line, good, broken = 2, {}, []
    for i, (kind, text) in enumerate(records):
        if kind == "ok":
            good[f"P{i}"] = (line, text)
            written = f"P{i},{quoted(text)},F,1950\n"
        else:
            broken.append(line)
            written = f'B{i},"s{text},F,1950\n'  # the quote never closes
        out.write(written)
        line += written.count("\n")
    return out.getvalue(), good, broken


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(record, min_size=1, max_size=12))
def test_every_record_is_staged_or_rejected_at_its_physical_start_line(
    records: list[tuple[str, str]],
) -> None:
    text, good, broken = build(records)
    with tempfile.TemporaryDirectory() as name:
        path = Path(name) / "patients.csv"
        path.write_text(text, encoding="utf-8")
        con = connect()
        staged = stage_rows(con, path, read_header(path), keep=SPECS["patients"].column_names)
        rows = [r for chunk in raw_chunks(con, staged, 5) for r in chunk.iter_rows(named=True)]
        drop_staged(con)
    assert {r["patient_id"]: (r["line"], r["site_id"]) for r in rows} == good
    assert staged.rejects.get_column("line").to_list() == broken
    assert set(staged.rejects.get_column("rule")) <= {"bad_row_shape"}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(record, min_size=1, max_size=12))
def test_ingest_stores_or_quarantines_every_record_once(records: list[tuple[str, str]]) -> None:
    text, good, broken = build(records)
    with tempfile.TemporaryDirectory() as name:
        path = Path(name) / "patients.csv"
        path.write_text(text, encoding="utf-8")
        con = connect()
        apply_migrations(con)
        (result,) = ingest_paths(con, [path], as_of=AS_OF)
    assert isinstance(result, IngestResult)
    assert (result.rows_read, result.inserted, result.quarantined) == (
        len(records),
        len(good),
        len(broken),
    )
    lines = con.execute("SELECT line FROM quarantine ORDER BY line").fetchall()
    assert [line for (line,) in lines] == broken


def test_reader_resumes_after_an_unterminated_quote_at_the_end_of_the_file() -> None:
    text = 'h1,h2\na,b\n"c,d\ne,f\n'
    records = list(read_records(io.StringIO(text), 2))
    assert [(r.line, r.fields) for r in records] == [(2, ["a", "b"]), (3, None), (4, ["e", "f"])]
    assert records[1].text == '"c,d' and "not closed" in records[1].error


def test_only_files_with_one_record_per_line_go_to_the_fast_reader(tmp_path: Path) -> None:
    cases = {
        "a,b\n1,2\n": True,
        "a,b\r\n1,2\r\n": True,
        'a,b\n"1",2\n': True,
        'a,b\n"1\n",2\n': False,
        'a,b\n"1 ""x""\n",2\n': False,
        'a,b\n"1 ""x""",2\n"\n': False,
        "a,b\n\n1,2\n": False,
        "a,b\r\n\r\n1,2\r\n": False,
        "a,b\r1,2\r": False,
    }
    for i, (text, fast) in enumerate(cases.items()):
        path = tmp_path / f"{i}.csv"
        path.write_bytes(text.encode())
        assert one_record_per_line(path) is fast, text
