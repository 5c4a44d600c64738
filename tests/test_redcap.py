"""REDCap: the shipped dictionary and mapping, and `registry convert redcap` round trips.

Exports are built here the way REDCap writes them (flat CSV, raw codes or labels, repeating
instruments, longitudinal events, checkbox columns field___code, yes/no fields), from the
same contract rows that are ingested directly; both registries must hold the same rows.
"""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.cli import main
from registry.convert.redcap import Field, checkbox_value, parse_choices, translate
from registry.convert.redcap_design import DICTIONARY_COLUMNS, dictionary_csv, mapping_toml
from registry.convert.redcap_files import (
    SHIPPED,
    convert_frames,
    convert_redcap,
    read_dictionary,
    read_mapping,
)
from registry.ingest import ingest_paths
from registry.ingest.contract import LOAD_ORDER, SPECS
from registry.resources import redcap_file
from tests.conftest import AS_OF

ROOT = Path(__file__).resolve().parent.parent
CONTRACT: dict[str, list[dict[str, str]]] = {
    "patients": [
        dict(patient_id="P1", site_id="S1", sex="F", birth_year="1950", bmd_t_score="-2.5",
             glucocorticoids="true", prior_vertebral_fractures="0"),
        dict(patient_id="P2", site_id="S2", sex="M", birth_year="1944", bmd_t_score="",
             glucocorticoids="false", prior_vertebral_fractures="2"),
    ],
    "index_fractures": [
        dict(patient_id="P1", level="T12", diagnosed_on="2020-01-01", etiology="osteoporotic",
             genant_grade="2"),
        dict(patient_id="P1", level="L1", diagnosed_on="2020-01-05", etiology="osteoporotic",
             genant_grade=""),
        dict(patient_id="P2", level="L2", diagnosed_on="2020-03-01", etiology="osteoporotic",
             genant_grade="3"),
    ],
    "procedures": [
        dict(patient_id="P1", level="T12", performed_on="2020-01-10", procedure="vertebroplasty",
             cement_volume_ml="3.5", cement_leakage="disc"),
        dict(patient_id="P1", level="L1", performed_on="2020-01-10", procedure="kyphoplasty",
             cement_volume_ml="4", cement_leakage=""),
    ],
    "assessments": [
        dict(patient_id="P1", assessed_on="2020-01-02", instrument="VAS", score="8"),
        dict(patient_id="P1", assessed_on="2020-02-10", instrument="ODI", score="22"),
        dict(patient_id="P2", assessed_on="2020-03-02", instrument="VAS", score="7.5"),
    ],
    "fractures": [
        dict(patient_id="P2", level="L3", detected_on="2021-05-01", detection="radiographic"),
    ],
    "follow_up": [
        dict(patient_id="P1", contact_on="2021-01-01", status="alive"),
        dict(patient_id="P1", contact_on="2022-01-01", status="alive"),
        dict(patient_id="P2", contact_on="2022-06-01", status="dead"),
    ],
}  # fmt: skip


def shipped_fields() -> dict[str, Field]:
    return read_dictionary(redcap_file(SHIPPED[0]))


def export_columns(fields: dict[str, Field], longitudinal: bool) -> list[str]:
    """REDCap's header: record_id, event, repeat columns, then each form's fields and
    its <form>_complete status."""
    head = ["record_id", *(["redcap_event_name"] * longitudinal)]
    head += ["redcap_repeat_instrument", "redcap_repeat_instance"]
    for form in LOAD_ORDER:
        head += [c for f in fields.values() if f.form == form for c in f.export_columns()
                 if c != "record_id"]  # fmt: skip
        head.append(f"{form}_complete")
    return head


def field_cells(f: Field, value: str, *, labels: bool) -> dict[str, str]:
    """The export cells of one field holding a contract value."""
    code = {lb: c for c, lb in f.choices}
    if f.kind == "checkbox":
        on, off = ("Checked", "Unchecked") if labels else ("1", "0")
        return {col: on if lb == value else off
                for (_, lb), col in zip(f.choices, f.export_columns(), strict=True)}  # fmt: skip
    if f.kind == "yesno":
        yes, no = ("Yes", "No") if labels else ("1", "0")
        return {f.name: {"true": yes, "false": no}.get(value, value)}
    if f.choices and not labels:
        return {f.name: code.get(value, value)}
    return {f.name: value}


def build_export(
    contract: dict[str, list[dict[str, str]]], *, labels: bool, longitudinal: bool
) -> pl.DataFrame:
    """A records export as REDCap writes it (every cell text, blanks empty)."""
    fields = shipped_fields()
    mapping = {t.table: t for t in read_mapping(redcap_file(SHIPPED[1]), fields)}
    columns = export_columns(fields, longitudinal)
    rows: list[dict[str, str]] = []
    counters: dict[tuple[str, str], int] = {}
    for table in LOAD_ORDER:
        for rec in contract[table]:
            row = dict.fromkeys(columns, "")
            row["record_id"] = rec["patient_id"]
            for column, name in mapping[table].fields.items():
                if column != "patient_id":
                    row |= field_cells(fields[name], rec[column], labels=labels)
            row[f"{table}_complete"] = "Complete" if labels else "2"
            key = (table, rec["patient_id"])
            counters[key] = counters.get(key, 0) + 1
            repeating = table != "patients" and not (longitudinal and table == "follow_up")
            if repeating:
                row |= {"redcap_repeat_instrument": table,
                        "redcap_repeat_instance": str(counters[key])}  # fmt: skip
            if longitudinal:
                event = (
                    "baseline_arm_1"
                    if table in ("patients", "index_fractures")
                    else (f"year_{counters[key]}_arm_1" if table == "follow_up" else "visits_arm_1")
                )
                row["redcap_event_name"] = event  # follow_up: one plain row per event
            rows.append(row)
    order = {r: i for i, r in enumerate(dict.fromkeys(r["record_id"] for r in rows))}
    rows.sort(key=lambda r: order[r["record_id"]])  # REDCap lists a record's rows together
    return pl.DataFrame(rows, schema=dict.fromkeys(columns, pl.String))


def write_contract(folder: Path, contract: dict[str, list[dict[str, str]]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for table, rows in contract.items():
        if rows:
            pl.DataFrame(
                rows, schema=dict.fromkeys(SPECS[table].column_names, pl.String)
            ).write_csv(folder / f"{table}.csv")
    return folder


def registry_rows(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[object, ...]]]:
    """Every core table's contract columns, sorted."""
    return {
        t: sorted(
            con.execute(f"SELECT {', '.join(SPECS[t].column_names)} FROM {t}").fetchall(), key=repr
        )
        for t in LOAD_ORDER
    }


def ingested(con: duckdb.DuckDBPyConnection, folder: Path) -> dict[str, list[tuple[object, ...]]]:
    outcomes = ingest_paths(con, [folder], as_of=AS_OF)
    assert all(not isinstance(o, Exception) and o.quarantined == 0 for o in outcomes), outcomes
    return registry_rows(con)


@pytest.mark.parametrize("labels", [False, True], ids=["raw", "labels"])
@pytest.mark.parametrize("longitudinal", [False, True], ids=["classic", "longitudinal"])
def test_convert_then_ingest_gives_the_rows_of_the_contract_files(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, labels: bool, longitudinal: bool
) -> None:
    export = build_export(CONTRACT, labels=labels, longitudinal=longitudinal)
    export.write_csv(tmp_path / "export.csv")
    done = convert_redcap(tmp_path / "export.csv", None, None, tmp_path / "out")
    assert done.labels is labels
    assert done.rows == {t: len(CONTRACT[t]) for t in LOAD_ORDER}
    expected = ingested(con, write_contract(tmp_path / "contract", CONTRACT))
    other = duckdb.connect()
    from registry.migrate import apply_migrations

    apply_migrations(other)
    assert ingested(other, tmp_path / "out") == expected
    assert sum(len(v) for v in expected.values()) == sum(len(v) for v in CONTRACT.values())


def test_an_untranslatable_value_is_quarantined_with_record_and_instance_findable(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    export = build_export(CONTRACT, labels=False, longitudinal=True)
    second = (pl.col("redcap_repeat_instrument") == "procedures") & (
        pl.col("redcap_repeat_instance") == "2"
    )
    export = export.with_columns(  # code 9 is no choice; two leakage sites ticked
        pl.when(second).then(pl.lit("9")).otherwise(pl.col("proc_type")).alias("proc_type"),
    )
    export.write_csv(tmp_path / "export.csv")
    convert_redcap(tmp_path / "export.csv", None, None, tmp_path / "out")
    ingest_paths(con, [tmp_path / "out"], as_of=AS_OF)
    file_name, line, value = con.execute(
        "SELECT file_name, line, value FROM quarantine WHERE rule = 'bad_enum'"
    ).fetchone()  # type: ignore[misc]
    assert (file_name, value) == ("procedures.csv", "9")
    with (tmp_path / "out" / file_name).open(newline="") as handle:
        row = list(csv.DictReader(handle))[line - 2]
    assert row["redcap_source"] == "record P1, event visits_arm_1, procedures instance 2"
    assert con.execute("SELECT count(*) FROM procedures").fetchone() == (1,)  # nothing dropped
    stored = con.execute("SELECT string_agg(raw_row::VARCHAR, ' ') FROM quarantine").fetchone()
    assert stored is not None and "redcap_source" not in stored[0]  # kept in the file only


def test_several_ticked_choices_pass_through_and_are_quarantined() -> None:
    f = Field("leak", "procedures", "checkbox", parse_choices("1, none | 2, disc | 3, venous"))
    cells = pl.DataFrame(
        {
            "leak___1": ["0", "0", "0", "0", None],
            "leak___2": ["1", "1", "0", "Checked", None],
            "leak___3": ["0", "1", "0", "7", None],
        }
    )
    got = cells.select(checkbox_value(f).alias("v")).get_column("v").to_list()
    assert got == ["disc", "disc|venous", None, "disc|7", None]


@pytest.mark.parametrize(
    ("kind", "validation", "cell", "expected"),
    [
        ("yesno", "", "Yes", "true"),
        ("yesno", "", "0", "false"),
        ("yesno", "", "maybe", "maybe"),
        ("truefalse", "", "True", "true"),
        ("text", "date_dmy", "31-12-2020", "2020-12-31"),
        ("text", "date_mdy", "12-31-2020", "2020-12-31"),
        ("text", "datetime_ymd", "2020-12-31 10:15", "2020-12-31"),
        ("text", "date_ymd", "2020-12-31", "2020-12-31"),
        ("radio", "", "3", "3"),
    ],
)
def test_translate_one_cell(kind: str, validation: str, cell: str, expected: str) -> None:
    f = Field("x", "f", kind, parse_choices("1, F | 2, M"), validation)
    frame = pl.DataFrame({"x": [cell]})
    assert frame.select(translate(f, labels=False)).item() == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(["1", "2", "F", "M", "9", "", " f"]), max_size=8))
def test_choice_values_are_translated_or_passed_through_never_lost(cells: list[str]) -> None:
    f = Field("sex", "patients", "radio", parse_choices("1, F | 2, M"))
    frame = pl.DataFrame({"sex": cells}, schema={"sex": pl.String})
    got = frame.select(translate(f, labels=False)).get_column("sex").to_list()
    assert len(got) == len(cells)
    assert got == [{"1": "F", "2": "M"}.get(c, c) for c in cells]


def test_shipped_dictionary_has_redcaps_columns_unique_names_and_every_column_mapped() -> None:
    with redcap_file(SHIPPED[0]).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == DICTIONARY_COLUMNS and len(rows[0]) == 18
    names = [r[0] for r in rows[1:]]
    assert len(names) == len(set(names)) and names[0] == "record_id"
    fields = shipped_fields()
    tables = {t.table: t for t in read_mapping(redcap_file(SHIPPED[1]), fields)}
    for table, spec in SPECS.items():
        assert tables[table].form == table and tables[table].fields["patient_id"] == "record_id"
        assert set(tables[table].fields) == set(spec.column_names)
        for column in spec.columns:
            f = fields[tables[table].fields[column.name]]
            assert f.form in (table, "patients")
            if column.kind == "enum":
                assert tuple(lb for _, lb in f.choices) == column.values


def test_shipped_files_are_the_ones_the_contract_generates() -> None:
    folder = ROOT / "reports" / "redcap"
    assert (folder / "vertebral_registry_dictionary.csv").read_text() == dictionary_csv()
    assert (folder / "vertebral_registry_mapping.toml").read_text() == mapping_toml()


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["convert", "redcap", *args])
    return result.exit_code, result.output


def test_cli_converts_and_says_what_next(tmp_path: Path) -> None:
    build_export(CONTRACT, labels=True, longitudinal=False).write_csv(tmp_path / "e.csv")
    code, text = run_cli("--records", str(tmp_path / "e.csv"), "--out", str(tmp_path / "o"))
    assert code == 0, text
    assert "Values were read as labels." in text and "registry ingest" in text
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == sorted(
        f"{t}.csv" for t in LOAD_ORDER
    )


def test_cli_missing_export_is_one_error_line_exit_2(tmp_path: Path) -> None:
    code, text = run_cli("--records", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o"))
    assert code == 2 and text.startswith("Error:") and "nope.csv" in text
    assert "Traceback" not in text and not (tmp_path / "o").exists()


def test_cli_refuses_a_dictionary_without_the_18_columns(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("Variable / Field Name,Form Name\nrecord_id,patients\n")
    build_export(CONTRACT, labels=False, longitudinal=False).write_csv(tmp_path / "e.csv")
    code, text = run_cli("--records", str(tmp_path / "e.csv"), "--dictionary",
                         str(tmp_path / "d.csv"), "--out", str(tmp_path / "o"))  # fmt: skip
    assert code == 2 and "d.csv" in text and "'Section Header' is missing" in text


def test_cli_mapping_naming_an_unknown_field_is_an_error(tmp_path: Path) -> None:
    text = redcap_file(SHIPPED[1]).read_text().replace('"fx_level"', '"fx_levl"')
    (tmp_path / "m.toml").write_text(text)
    build_export(CONTRACT, labels=False, longitudinal=False).write_csv(tmp_path / "e.csv")
    code, out = run_cli("--records", str(tmp_path / "e.csv"), "--mapping", str(tmp_path / "m.toml"),
                        "--out", str(tmp_path / "o"))  # fmt: skip
    assert code == 1 and "m.toml" in out and "'fx_levl'" in out and out.startswith("Error:")


def test_cli_refuses_an_export_without_a_mapped_column(tmp_path: Path) -> None:
    export = build_export(CONTRACT, labels=False, longitudinal=False).drop("fu_status")
    export.write_csv(tmp_path / "e.csv")
    code, text = run_cli("--records", str(tmp_path / "e.csv"), "--out", str(tmp_path / "o"))
    assert code == 2 and "'fu_status'" in text and "raw variable names" in text


def test_a_table_without_rows_writes_no_file_and_refuses_a_stale_one(tmp_path: Path) -> None:
    contract = CONTRACT | {"fractures": []}
    build_export(contract, labels=False, longitudinal=False).write_csv(tmp_path / "e.csv")
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "fractures.csv").write_text("old")
    code, text = run_cli("--records", str(tmp_path / "e.csv"), "--out", str(tmp_path / "o"))
    assert code == 2 and "fractures.csv" in text and "older file" in text
    (tmp_path / "o" / "fractures.csv").unlink()
    code, text = run_cli("--records", str(tmp_path / "e.csv"), "--out", str(tmp_path / "o"))
    assert code == 0 and "No rows (no file written): fractures." in text


def test_cli_refuses_an_export_without_records(tmp_path: Path) -> None:
    build_export(CONTRACT, labels=False, longitudinal=False).clear().write_csv(tmp_path / "e.csv")
    code, text = run_cli("--records", str(tmp_path / "e.csv"), "--out", str(tmp_path / "o"))
    assert code == 2 and "no records" in text


def contract_rows() -> st.SearchStrategy[dict[str, list[dict[str, str]]]]:
    """Random rows of every table, values drawn from each column's contract values."""

    def value(table: str, name: str) -> st.SearchStrategy[str]:
        col = SPECS[table].column(name)
        if col.kind == "enum":
            return (
                st.sampled_from(col.values) if col.required else st.sampled_from(("", *col.values))
            )
        if col.kind == "bool":
            return st.sampled_from(["true", "false", ""])
        return st.sampled_from(["1", "2020-01-02", "x y", ""])

    def rows(table: str) -> st.SearchStrategy[list[dict[str, str]]]:
        names = [c for c in SPECS[table].column_names if c != "patient_id"]
        row = st.fixed_dictionaries(
            {"patient_id": st.sampled_from(["A", "B", "C"]), **{n: value(table, n) for n in names}}
        )
        return st.lists(row, min_size=1, max_size=4)

    return st.fixed_dictionaries({t: rows(t) for t in LOAD_ORDER})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(contract=contract_rows(), labels=st.booleans(), longitudinal=st.booleans())
def test_every_contract_row_comes_back_from_its_export(
    contract: dict[str, list[dict[str, str]]], labels: bool, longitudinal: bool
) -> None:
    fields = shipped_fields()
    tables = read_mapping(redcap_file(SHIPPED[1]), fields)
    export = build_export(contract, labels=labels, longitudinal=longitudinal)
    frames, _ = convert_frames(export, tables, fields, values="label" if labels else "raw")
    for table in LOAD_ORDER:
        names = SPECS[table].column_names
        got = frames[table].select(names).fill_null("").rows()
        assert sorted(got) == sorted(tuple(r[n] for n in names) for r in contract[table])
