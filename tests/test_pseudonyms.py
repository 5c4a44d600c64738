"""The pseudonym key: its check value, the ingest guard (CLI and refresh), blank ids, rekey."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from registry.cli import main
from registry.config import load_settings
from registry.errors import PseudonymKeyError
from registry.ingest import IngestResult, ingest_paths
from registry.ingest.contract import SPECS
from registry.pseudonyms import key_check, pseudonym
from registry.rekey import read_raw_ids, rekey_registry
from tests.conftest import AS_OF, PATIENTS, write_csv

FOLLOW_UP = "patient_id,contact_on,status\nP1,2020-01-01,alive\nP2,2020-02-01,dead"
CORE = ("patients", "index_fractures", "procedures", "assessments", "fractures", "follow_up")


def ingest(con: duckdb.DuckDBPyConnection, *paths: Path, key: str | None) -> list[IngestResult]:
    outcomes = ingest_paths(con, list(paths), as_of=AS_OF, pseudonym_key=key)
    assert all(isinstance(o, IngestResult) for o in outcomes), outcomes
    return outcomes  # type: ignore[return-value]


def export(folder: Path, patients: str = PATIENTS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(folder, "patients", patients)
    write_csv(folder, "follow_up", FOLLOW_UP)
    return folder


def counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    tables = (*CORE, "quarantine", "ingest_batches", "audit")
    return {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in tables}


def test_the_first_keyed_ingest_records_a_check_value_never_the_key(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ingest(con, export(tmp_path / "in"), key="correct horse battery")
    rows = con.execute("SELECT name, value, recorded_at FROM registry_settings").fetchall()
    assert [(n, v) for n, v, _ in rows] == [
        ("pseudonym_key_check", key_check("correct horse battery"))
    ]
    assert rows[0][2] is not None  # the date it was recorded
    dumped = str(con.execute("SELECT * FROM registry_settings").fetchall())
    assert "correct horse battery" not in dumped
    assert key_check("a") != key_check("b") and len(key_check("a")) == 64


def test_another_key_is_refused_and_nothing_is_stored(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = export(tmp_path / "in")
    ingest(con, folder, key="night-1-key")
    before = counts(con)
    with pytest.raises(PseudonymKeyError, match="not the key this registry was built with") as exc:
        ingest_paths(con, [folder], as_of=AS_OF, pseudonym_key="another-key")
    assert exc.value.exit_code == 2
    assert "registry rekey" in str(exc.value) and 'README "Pseudonym key"' in str(exc.value)
    assert counts(con) == before  # not even a batch row


def test_a_forgotten_key_is_refused_instead_of_quarantining_every_child_row(
    con, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = export(tmp_path / "in")
    ingest(con, folder, key="k")
    before = counts(con)
    with pytest.raises(PseudonymKeyError, match="REGISTRY_PSEUDONYM_KEY is not set"):
        ingest_paths(con, [folder / "follow_up.csv"], as_of=AS_OF)
    assert counts(con) == before


def test_a_key_over_unkeyed_patients_is_refused_but_an_empty_registry_takes_it(
    con, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = export(tmp_path / "in")
    ingest(con, folder, key=None)
    before = counts(con)
    with pytest.raises(PseudonymKeyError, match="holds 2 patients stored without a key"):
        ingest_paths(con, [folder], as_of=AS_OF, pseudonym_key="k")
    assert counts(con) == before
    assert con.execute("SELECT count(*) FROM registry_settings").fetchall() == [(0,)]
    ingest(con, folder, key=None)  # unkeyed stays unkeyed


def test_the_guard_runs_before_any_file_is_touched(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ingest(con, export(tmp_path / "in"), key="k")
    with pytest.raises(PseudonymKeyError):  # not "no such file": the guard comes first
        ingest_paths(con, [tmp_path / "missing"], as_of=AS_OF, pseudonym_key="wrong")


def test_the_same_key_every_night_is_accepted_and_changes_nothing(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = export(tmp_path / "in")
    ingest(con, folder, key="k")
    again = ingest(con, folder, key="k")
    assert [(r.inserted, r.updated) for r in again] == [(0, 0), (0, 0)]


@pytest.mark.parametrize("key", [None, "k"])
@pytest.mark.parametrize("table", sorted(SPECS))
def test_a_blank_patient_id_is_missing_value_in_every_file(con, tmp_path: Path, key, table) -> None:  # type: ignore[no-untyped-def]
    ingest(con, write_csv(tmp_path, "patients", PATIENTS), key=key)
    spec = SPECS[table]
    sample = {"patient_id": "   ", "site_id": "S1", "sex": "F", "birth_year": "1950",
              "level": "L1", "diagnosed_on": "2020-01-01", "etiology": "osteoporotic",
              "performed_on": "2020-01-05", "procedure": "vertebroplasty",
              "assessed_on": "2020-01-02", "instrument": "VAS", "score": "7",
              "detected_on": "2021-01-01", "contact_on": "2020-03-01", "status": "alive"}  # fmt: skip
    names = [c for c in spec.column_names if c in spec.required]
    path = tmp_path / f"{table}.csv"
    path.write_text(",".join(names) + "\n" + ",".join(sample[c] for c in names) + "\n")
    (result,) = ingest(con, path, key=key)
    assert (result.inserted, result.quarantined) == (0, 1)
    row = con.execute(
        "SELECT column_name, rule, value FROM quarantine WHERE file_name = ?", [path.name]
    ).fetchall()
    assert row == [("patient_id", "missing_value", None)]
    phantom = pseudonym("k", "")
    assert con.execute(
        f"SELECT count(*) FROM {table} WHERE patient_id = ?", [phantom]
    ).fetchall() == [(0,)]


def test_pseudonym_key_is_accepted_in_registry_toml(tmp_path: Path) -> None:
    toml = tmp_path / "registry.toml"
    toml.write_text('pseudonym_key = "from-the-file"\n')
    assert load_settings(toml_path=toml, env={}).pseudonym_key == "from-the-file"
    env = {"REGISTRY_PSEUDONYM_KEY": "from-env"}
    assert load_settings(toml_path=toml, env=env).pseudonym_key == "from-env"  # env wins


def cli(args: list[str], **env: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, args, env=env)
    return result.exit_code, result.output


def test_the_cli_refuses_a_wrong_key_with_exit_2_and_one_error_line(tmp_path: Path) -> None:
    db = str(tmp_path / "r.duckdb")
    folder = str(export(tmp_path / "in"))
    cli(["init", "--db", db])
    assert cli(["ingest", folder, "--db", db], REGISTRY_PSEUDONYM_KEY="k1")[0] == 0
    code, output = cli(["ingest", folder, "--db", db], REGISTRY_PSEUDONYM_KEY="k2")
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in output
    assert "k1" not in output and "k2" not in output  # keys are never printed


def test_the_refresh_ingest_step_goes_through_the_guard(tmp_path: Path) -> None:
    db, inbox = str(tmp_path / "r.duckdb"), tmp_path / "inbox"
    args = ["refresh", "--db", db, "--inbox", str(inbox), "--publish", str(tmp_path / "out")]
    cli(["init", "--db", db])
    assert (
        cli(["ingest", str(export(tmp_path / "in")), "--db", db], REGISTRY_PSEUDONYM_KEY="k1")[0]
        == 0
    )
    export(inbox / "night2", PATIENTS + "P9,S2,F,1940,,,")
    code, output = cli(args, REGISTRY_PSEUDONYM_KEY="k2")
    assert code == 2 and "failed at step ingest" in output and "not the key" in output
    assert (inbox / "night2" / "patients.csv").exists()  # not moved, not rejected
    con = duckdb.connect(db, read_only=True)
    assert con.execute("SELECT count(*) FROM patients").fetchall() == [(2,)]
    con.close()


def test_rekey_maps_old_to_new_pseudonyms_from_raw_ids(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = export(tmp_path / "in", PATIENTS + "P3,S1,X,1950,,,")
    write_csv(
        folder,
        "assessments",
        "patient_id,assessed_on,instrument,score\nP1,2020-01-01,VAS,7\nP8,2020-01-01,VAS,7",
    )
    ingest(con, folder, key="old")
    write_csv(folder, "patients", PATIENTS.replace("1945", "1946") + "P3,S1,X,1950,,,")
    ingest(con, folder / "patients.csv", key="old")  # one audit row
    done = rekey_registry(
        con, old_key="old", new_key="new", raw_ids=read_raw_ids([folder / "patients.csv"])
    )
    assert (done.patients, done.rows, done.audit) == (2, 5, 1)
    assert done.blanked == 1  # P8's assessment: unknown patient, not in the ids file
    ids = {r[0] for r in con.execute("SELECT patient_id FROM patients").fetchall()}
    assert ids == {pseudonym("new", "P1"), pseudonym("new", "P2")}
    q = con.execute(
        "SELECT value, raw_row->>'patient_id' FROM quarantine WHERE rule = 'bad_enum'"
    ).fetchall()
    assert set(q) == {("X", pseudonym("new", "P3"))}
    audit = con.execute("SELECT row_key FROM audit").fetchall()
    assert audit == [(f"patient_id={pseudonym('new', 'P2')}",)]
    again = ingest(con, folder, key="new")  # the same raw files under the new key
    assert sum(r.inserted + r.updated for r in again) == 0
    with pytest.raises(PseudonymKeyError):
        ingest_paths(con, [folder], as_of=AS_OF, pseudonym_key="old")


def test_rekey_of_an_unkeyed_registry_needs_no_ids_file(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = export(tmp_path / "in")
    ingest(con, folder, key=None)
    done = rekey_registry(con, old_key=None, new_key="new", raw_ids=None)
    assert (done.patients, done.rows) == (2, 4)
    stored = {r[0] for r in con.execute("SELECT patient_id FROM follow_up").fetchall()}
    assert stored == {pseudonym("new", "P1"), pseudonym("new", "P2")}
    assert sum(r.inserted + r.updated for r in ingest(con, folder, key="new")) == 0


def test_rekey_refuses_and_changes_nothing_without_every_raw_id(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = export(tmp_path / "in")
    ingest(con, folder, key="old")
    before = con.execute("SELECT * FROM patients ORDER BY ALL").fetchall()
    only_p1 = write_csv(tmp_path, "ids", "Patient ID\nP1\n  \n")
    with pytest.raises(PseudonymKeyError, match="1 of the 2 stored patients have no raw id"):
        rekey_registry(con, old_key="old", new_key="new", raw_ids=read_raw_ids([only_p1]))
    with pytest.raises(PseudonymKeyError, match="not the key this registry was built with"):
        rekey_registry(con, old_key="wrong", new_key="new", raw_ids=["P1", "P2"])
    with pytest.raises(PseudonymKeyError, match="--old-key-env"):
        rekey_registry(con, old_key=None, new_key="new", raw_ids=["P1", "P2"])
    with pytest.raises(PseudonymKeyError, match="--ids"):
        rekey_registry(con, old_key="old", new_key="new", raw_ids=None)
    assert con.execute("SELECT * FROM patients ORDER BY ALL").fetchall() == before
    assert con.execute("SELECT value FROM registry_settings").fetchall() == [(key_check("old"),)]


def test_rekey_is_one_transaction(con, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from registry import rekey

    ingest(con, export(tmp_path / "in"), key="old")
    before = con.execute("SELECT * FROM patients ORDER BY ALL").fetchall()

    def broken(*args: object, **kwargs: object) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(rekey, "_rekey_audit", broken)
    with pytest.raises(RuntimeError):
        rekey_registry(con, old_key="old", new_key="new", raw_ids=["P1", "P2"])
    assert con.execute("SELECT * FROM patients ORDER BY ALL").fetchall() == before
    assert con.execute("SELECT value FROM registry_settings").fetchall() == [(key_check("old"),)]


def test_the_rekey_command_reads_keys_from_named_environment_variables(tmp_path: Path) -> None:
    db = str(tmp_path / "r.duckdb")
    folder = export(tmp_path / "in")
    cli(["init", "--db", db])
    cli(["ingest", str(folder), "--db", db], REGISTRY_PSEUDONYM_KEY="old-secret")
    args = ["rekey", "--db", db, "--old-key-env", "OLD", "--new-key-env", "NEW",
            "--ids", str(folder / "patients.csv")]  # fmt: skip
    code, output = cli(args, OLD="old-secret")
    assert code == 1 and "environment variable NEW is not set" in output
    code, output = cli(args, OLD="wrong", NEW="new-secret")
    assert code == 2 and "not the key" in output
    code, output = cli(args, OLD="old-secret", NEW="new-secret")
    assert code == 0 and "Re-keyed 2 patients" in output, output
    assert "secret" not in output
    code, output = cli(["ingest", str(folder), "--db", db], REGISTRY_PSEUDONYM_KEY="new-secret")
    assert code == 0 and "inserted 0" in output and "inserted 2" not in output


def test_read_raw_ids_refuses_a_file_without_patient_id(tmp_path: Path) -> None:
    from registry.errors import RegistryError

    path = write_csv(tmp_path, "ids", "id\nP1")
    with pytest.raises(RegistryError, match="no patient_id column"):
        read_raw_ids([path])


def test_a_registry_keyed_before_0005_gets_its_key_recorded_against_raw_ids(tmp_path: Path) -> None:
    db = str(tmp_path / "r.duckdb")
    folder = export(tmp_path / "in")
    cli(["init", "--db", db])
    cli(["ingest", str(folder), "--db", db], REGISTRY_PSEUDONYM_KEY="old-secret")
    con = duckdb.connect(db)
    con.execute("DELETE FROM registry_settings")  # as a registry keyed before migration 0005
    con.execute(
        "INSERT INTO quarantine VALUES (1, 'patients.csv', 9, NULL, 'bad_row_shape', "
        "'P7,F,1950,x', 'the line is malformed.', '{\"csv_line\": \"P7,F,1950,x\"}')"
    )  # as stored, raw id and all, before malformed lines were scrubbed
    con.close()
    code, output = cli(["ingest", str(folder), "--db", db], REGISTRY_PSEUDONYM_KEY="old-secret")
    assert code == 2 and "registry record-key" in output
    args = ["record-key", "--db", db, "--key-env", "KEY", "--ids", str(folder / "patients.csv")]
    code, output = cli(args, KEY="a-guess")
    assert code == 2 and "2 of the 2 stored patients are not the pseudonym" in output
    code, output = cli(args, KEY="old-secret")
    assert code == 0 and "all 2 stored patients" in output and "secret" not in output
    con = duckdb.connect(db, read_only=True)
    assert "P7" not in str(con.execute("SELECT * FROM quarantine").fetchall())
    con.close()
    code, output = cli(["ingest", str(folder), "--db", db], REGISTRY_PSEUDONYM_KEY="old-secret")
    assert code == 0 and "inserted 0" in output and "inserted 2" not in output
    assert cli(args, KEY="old-secret")[0] == 2  # recorded once; changing it is rekey's job
