"""Quarantine: no raw id kept under a key, the send-back CSV, --site, and the 80-column table."""

from __future__ import annotations

import io
import json
from pathlib import Path

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner
from rich.console import Console

from registry import console
from registry.cli import main
from registry.ingest import ingest_paths
from registry.ingest.storing import top_reasons
from registry.pseudonyms import pseudonym, scrub_rejects
from registry.quarantine import sendback_frame
from tests.conftest import AS_OF, write_csv

PATIENTS = """
patient_id,site_id,sex,birth_year
RAW1,S1,F,1950
RAW2,S2,M,1945
RAW3,S1,X,1950
RAW4,S2,Q,1950
RAW5,S2,F,1950,extra
"""
FOLLOW_UP = """
patient_id,contact_on,status
RAW1,2020-01-01,alive
RAW1,2020-02-01,maybe
RAW2,2020-02-01,gone
RAW9,2020-02-01,alive
"""


def stored_text(con: duckdb.DuckDBPyConnection, table: str) -> str:
    return str(con.execute(f"SELECT * FROM {table}").fetchall())


@pytest.fixture
def loaded(tmp_path: Path) -> Path:
    """A registry with quarantined rows of two sites, ingested under a key."""
    db = tmp_path / "r.duckdb"
    (tmp_path / "in").mkdir()
    write_csv(tmp_path / "in", "patients", PATIENTS)
    write_csv(tmp_path / "in", "follow_up", FOLLOW_UP)
    runner = CliRunner()
    runner.invoke(main, ["init", "--db", str(db)])
    result = runner.invoke(
        main, ["ingest", str(tmp_path / "in"), "--db", str(db)], env={"REGISTRY_PSEUDONYM_KEY": "k"}
    )
    assert result.exit_code == 0, result.output
    assert "None" not in result.output and "bad_row_shape (1)" in result.output
    return db


def test_under_a_key_quarantine_holds_no_raw_id(loaded: Path) -> None:
    con = duckdb.connect(str(loaded), read_only=True)
    text = stored_text(con, "quarantine")
    con.close()
    assert "RAW" not in text
    assert pseudonym("k", "RAW3") in text and pseudonym("k", "RAW9") in text


def test_a_malformed_line_keeps_its_text_only_where_the_id_can_be_located(tmp_path: Path) -> None:
    shaped = pl.DataFrame(
        {
            "line": [3, 4, 5],
            "column_name": [None, None, None],
            "rule": ["bad_row_shape"] * 3,
            "value": ['RAW1,"F"x,1950', "RAW2,F,1950,extra", '"RAW3,F,1950\nRAW4,M,1940'],
            "detail": ["the line is malformed: unterminated quote."] * 3,
            "raw_row": ["{}"] * 3,
        }
    )
    names = ["patient_id", "sex", "birth_year"]
    scrubbed = scrub_rejects(shaped, names=names, key="k")
    assert scrubbed.get_column("value").to_list() == [
        f'{pseudonym("k", "RAW1")},"F"x,1950',
        None,
        None,
    ]
    assert [json.loads(r)["csv_line"] for r in scrubbed.get_column("raw_row")][1:] == [None, None]
    assert "cannot be located" in scrubbed.get_column("detail")[1]
    assert scrubbed.get_column("line").to_list() == [3, 4, 5]  # line and rule kept
    assert "RAW" not in str(scrubbed.rows())
    assert scrub_rejects(shaped, names=names, key=None).equals(shaped)  # no key: site pseudonyms


def test_a_line_with_no_column_is_never_called_none() -> None:
    counts = pl.DataFrame(
        {"column_name": [None, "sex"], "rule": ["bad_row_shape", "bad_enum"], "len": [3, 1]}
    )
    assert top_reasons(counts) == (("bad_row_shape", 3), ("bad_enum in sex", 1))


def test_the_terminal_table_fits_80_columns_and_keeps_every_word(loaded: Path) -> None:
    from registry.pipeline import quarantined_rows

    rows = quarantined_rows(loaded, batch=None)
    buffer = io.StringIO()
    console.print_quarantine(Console(file=buffer, width=80, highlight=False), rows, limit=50)
    lines = buffer.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    cells: list[list[str]] = [[]]  # the folded text of each row's last column
    for line in lines:
        if line.startswith(("├", "└")):
            cells.append([])
        elif line.startswith("│"):
            cells[-1].append(line.split("│")[4].strip())
    shown = ["".join(c).replace(" ", "") for c in cells if c]
    assert len(shown) == rows.height
    for r, text in zip(rows.iter_rows(named=True), shown, strict=True):
        assert r["detail"].replace(" ", "") in text  # folded, never cut
    flat = buffer.getvalue()
    assert all(r in flat for r in rows.get_column("rule"))
    assert "None" not in buffer.getvalue()


def test_quarantine_csv_sends_back_every_field_with_pseudonymised_ids(
    loaded: Path, tmp_path: Path
) -> None:
    out = tmp_path / "back" / "all.csv"
    result = CliRunner().invoke(main, ["quarantine", "--db", str(loaded), "--csv", str(out)])
    assert result.exit_code == 0 and "Wrote 6 quarantined rows" in result.output, result.output
    sent = pl.read_csv(out, infer_schema=False)
    assert sent.columns[:6] == ["file", "line", "column", "rule", "value", "message"]
    assert {"patient_id", "site_id", "sex", "contact_on", "status", "csv_line"} <= set(sent.columns)
    assert sent.height == 6 and "RAW" not in out.read_text()
    enum = sent.filter(pl.col("rule") == "bad_enum", pl.col("file") == "patients.csv")
    assert set(enum.get_column("patient_id")) == {pseudonym("k", "RAW3"), pseudonym("k", "RAW4")}


def test_quarantine_csv_for_one_site(loaded: Path, tmp_path: Path) -> None:
    out = tmp_path / "s2.csv"
    args = ["quarantine", "--db", str(loaded), "--csv", str(out), "--site", "S2"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0 and "of site S2" in result.output
    sent = pl.read_csv(out, infer_schema=False)
    # RAW4 by its own patients row; RAW2's follow-up through patients.site_id; not RAW9
    # (unknown patient) nor the malformed line (no site can be read from it)
    assert sorted(sent.select("file", "line").rows()) == [
        ("follow_up.csv", "4"),
        ("patients.csv", "5"),
    ]
    empty = tmp_path / "none.csv"
    CliRunner().invoke(
        main, ["quarantine", "--db", str(loaded), "--csv", str(empty), "--site", "S7"]
    )
    assert pl.read_csv(empty).height == 0


def test_quarantine_batch_and_site_in_the_terminal(loaded: Path) -> None:
    runner = CliRunner()
    shown = runner.invoke(main, ["quarantine", "--db", str(loaded), "--batch", "2", "--site", "S1"])
    assert shown.exit_code == 0 and "maybe" in shown.output and "gone" not in shown.output
    limited = runner.invoke(main, ["quarantine", "--db", str(loaded), "--limit", "1"])
    assert "5 more; use --limit" in limited.output


def test_the_send_back_csv_defuses_spreadsheet_formulas_but_keeps_numbers() -> None:
    rows = pl.DataFrame(
        {
            "file_name": ["assessments.csv"],
            "line": [2],
            "column_name": ["score"],
            "rule": ["bad_type"],
            "value": ['=HYPERLINK("http://x")'],
            "detail": ["score is not a number"],
            "raw_row": [
                json.dumps({"patient_id": "abc", "score": '=HYPERLINK("http://x")', "line": "-2.5"})
            ],
        }
    )
    frame = sendback_frame(rows)
    assert frame.get_column("value")[0].startswith("'=")
    assert frame.get_column("score")[0].startswith("'=")
    assert frame.get_column("field_line")[0] == "-2.5"  # a number stays; a clashing name is renamed
    assert sendback_frame(rows.clear()).columns[:6] == [
        "file",
        "line",
        "column",
        "rule",
        "value",
        "message",
    ]


def test_quarantined_rows_of_an_unkeyed_registry_keep_the_site_ids(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "in").mkdir()
    write_csv(tmp_path / "in", "patients", PATIENTS)
    ingest_paths(con, [tmp_path / "in"], as_of=AS_OF)
    text = stored_text(con, "quarantine")
    assert "RAW3" in text and "RAW5,S2,F,1950,extra" in text  # the sites' own ids, as sent


def test_a_malformed_line_of_a_file_with_an_extra_column_holds_no_raw_id(tmp_path: Path) -> None:
    """The id is located by its position in the whole header, unknown columns included: a
    short line of a file whose first column is an extra once kept its raw id beside the
    pseudonym of the extra column's value."""
    db = tmp_path / "r.duckdb"
    (tmp_path / "in").mkdir()
    write_csv(tmp_path / "in", "patients", PATIENTS)
    follow_up = """
    record_no,patient_id,contact_on,status
    1,RAW1,2020-01-01,alive
    2,RAW2,2020-01-02
    3,RAW2,"2020-01-03"x,alive
    """
    write_csv(tmp_path / "in", "follow_up", follow_up)
    runner = CliRunner()
    runner.invoke(main, ["init", "--db", str(db)])
    env = {"REGISTRY_PSEUDONYM_KEY": "k"}
    result = runner.invoke(main, ["ingest", str(tmp_path / "in"), "--db", str(db)], env=env)
    assert result.exit_code == 0, result.output
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("SELECT line, rule, value FROM quarantine WHERE file_name = 'follow_up.csv'")
    found = rows.fetchall()
    text = stored_text(con, "quarantine")
    con.close()
    assert found == [
        (3, "bad_row_shape", None),
        (4, "bad_row_shape", f'3,{pseudonym("k", "RAW2")},"2020-01-03"x,alive'),
    ]
    assert "RAW" not in text
