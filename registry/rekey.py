"""Key rotation: every stored pseudonym re-derived under a new key, in one transaction.

A pseudonym is HMAC(key, raw id), and the registry holds no raw id, so a rotation needs
the raw ids again: the operator gives a re-export of them (`--ids`, e.g. the sites'
patients.csv), rekey maps HMAC(old, raw) -> HMAC(new, raw), and the old key can then be
destroyed. A registry built without a key holds the sites' own ids, which are the raw ids:
its rekey needs no file. The ids file is read into memory only and never stored.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from registry.db import query
from registry.errors import PseudonymKeyError, RegistryError
from registry.ingest.contract import LOAD_ORDER, normalise_column
from registry.pseudonyms import NOT_KEPT, key_check, pseudonym, record_check, recorded_check

TOKEN = re.compile(r"[0-9a-f]{32}")
AUDIT_ID = re.compile(r"(?<=patient_id=)[^,]*")
Translate = Callable[[str], str | None]


@dataclass(frozen=True)
class Rekeyed:
    """What a rekey changed."""

    patients: int  # distinct patient ids translated
    rows: int  # rows of the six core tables
    quarantined: int  # quarantined rows rewritten
    blanked: int  # quarantined ids that could not be translated and were blanked
    audit: int  # audit rows rewritten


def read_raw_ids(paths: Iterable[Path]) -> list[str]:
    """The raw patient ids of CSV or Parquet files with a patient_id column (stripped)."""
    ids: set[str] = set()
    for path in paths:
        try:
            column = _id_column(path)
        except (OSError, UnicodeDecodeError, csv.Error, pl.exceptions.PolarsError) as exc:
            raise RegistryError(f"{path}: the ids file cannot be read ({exc})") from None
        ids.update(v.strip() for v in column if v is not None and v.strip())
    return sorted(ids)


def _id_column(path: Path) -> list[str | None]:
    if path.suffix.lower() == ".parquet":
        frame = pl.read_parquet(path)
        names = {normalise_column(c): c for c in frame.columns}
        if "patient_id" in names:
            return frame.get_column(names["patient_id"]).cast(pl.String).to_list()
    else:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = [normalise_column(c) for c in next(reader, [])]
            if "patient_id" in header:
                at = header.index("patient_id")
                return [row[at] if len(row) > at else None for row in reader]
    raise RegistryError(f"{path}: the ids file has no patient_id column")


def rekey_registry(
    con: duckdb.DuckDBPyConnection,
    *,
    old_key: str | None,
    new_key: str,
    raw_ids: list[str] | None,
) -> Rekeyed:
    """Re-pseudonymise every stored id under new_key and record its check value."""
    _check_keys(con, old_key, new_key)
    stored = query(con, "queries/pseudonyms/stored_ids").get_column("patient_id").to_list()
    mapping = _mapping(stored, old_key, new_key, raw_ids)
    missing = [s for s in stored if s not in mapping]
    if missing:
        raise PseudonymKeyError(
            f"{len(missing):,} of the {len(stored):,} stored patients have no raw id in the ids "
            "file; give a file of every patient's raw id (e.g. all sites' patients.csv) with "
            "--ids. Nothing was changed"
        )

    def translate(old: str) -> str | None:
        return pseudonym(new_key, old) if old_key is None else mapping.get(old)

    con.execute("BEGIN TRANSACTION")
    try:
        rows = _rekey_tables(con, mapping)
        quarantined, blanked = _rekey_quarantine(con, translate, keyed=old_key is not None)
        audit = _rekey_audit(con, translate)
        record_check(con, new_key)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return Rekeyed(len(stored), rows, quarantined, blanked, audit)


def record_key(con: duckdb.DuckDBPyConnection, *, key: str, raw_ids: list[str]) -> int:
    """Record the check value of the key a registry older than migration 0005 was built
    with, after checking that it turns the raw ids into every stored id; return the
    patients checked. The text of malformed lines stored before then is blanked."""
    if recorded_check(con) is not None:
        raise PseudonymKeyError(
            "this registry already has its key recorded; to change it use `registry rekey`"
        )
    stored = query(con, "queries/pseudonyms/stored_ids").get_column("patient_id").to_list()
    made = {pseudonym(key, r) for r in raw_ids}
    missing = sum(s not in made for s in stored)
    if not stored or missing:
        raise PseudonymKeyError(
            f"{missing:,} of the {len(stored):,} stored patients are not the pseudonym of any "
            "raw id in the ids file under this key: either the key is not the one the registry "
            "was built with, or the file misses patients. Nothing was recorded"
        )
    con.execute("BEGIN TRANSACTION")
    try:
        # malformed lines were stored as written before 0005: their text may hold raw ids
        con.execute(
            "UPDATE quarantine SET value = NULL, raw_row = '{\"csv_line\": null}', "
            "detail = rtrim(detail, '.') || ? WHERE rule = 'bad_row_shape' AND value IS NOT NULL",
            [NOT_KEPT],
        )
        record_check(con, key)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return len(stored)


def _check_keys(con: duckdb.DuckDBPyConnection, old_key: str | None, new_key: str) -> None:
    recorded = recorded_check(con)
    if not new_key:
        raise RegistryError("the new key is empty; nothing was changed")
    if recorded is None and old_key is not None:
        raise PseudonymKeyError(
            "this registry has no pseudonym key recorded (its ids were stored as the sites "
            "sent them); run rekey without --old-key-env. Nothing was changed"
        )
    if recorded is not None and old_key is None:
        raise PseudonymKeyError(
            "this registry's ids are pseudonymised with a key: give it with --old-key-env "
            "and the raw ids with --ids. Nothing was changed"
        )
    if recorded is not None and old_key is not None and key_check(old_key) != recorded[0]:
        raise PseudonymKeyError(
            "the old key is not the key this registry was built with; nothing was changed"
        )
    if old_key == new_key:
        raise RegistryError("the new key is the old key; nothing was changed")


def _mapping(
    stored: list[str], old_key: str | None, new_key: str, raw_ids: list[str] | None
) -> dict[str, str]:
    """Old pseudonym -> new pseudonym (unkeyed registry: stored id -> pseudonym)."""
    if old_key is None:
        return {s: pseudonym(new_key, s) for s in stored}
    if raw_ids is None and stored:
        raise PseudonymKeyError(
            "a keyed registry can only be re-keyed from the raw ids: give a file of them with "
            "--ids (e.g. all sites' patients.csv). Nothing was changed"
        )
    return {pseudonym(old_key, r): pseudonym(new_key, r) for r in raw_ids or []}


def _rekey_tables(con: duckdb.DuckDBPyConnection, mapping: dict[str, str]) -> int:
    """Translate patient_id in the six core tables; return the rows changed.

    The SQL names the contract tables, which come from registry.ingest.contract only."""
    frame = pl.DataFrame({"old_id": list(mapping), "new_id": list(mapping.values())})
    con.register("rekey_map", frame)
    try:
        changed = 0
        for table in LOAD_ORDER:
            result = con.execute(
                f"UPDATE {table} SET patient_id = m.new_id FROM rekey_map m "
                f"WHERE {table}.patient_id = m.old_id"
            ).fetchall()
            changed += int(result[0][0]) if result else 0
        return changed
    finally:
        con.unregister("rekey_map")


def _rekey_quarantine(
    con: duckdb.DuckDBPyConnection, translate: Translate, *, keyed: bool
) -> tuple[int, int]:
    """Translate the ids of quarantined rows (value and detail of patient_id rows, raw_row's
    patient_id, the text of malformed lines); one that cannot be translated is blanked.
    Return (rows rewritten, rows with an id blanked)."""
    rows = con.execute(
        "SELECT rowid, column_name, rule, value, detail, raw_row::VARCHAR FROM quarantine"
    ).fetchall()
    updates: list[tuple[Any, ...]] = []
    blanked = 0
    for rowid, column, rule, value, detail, raw_row in rows:
        fields = json.loads(raw_row)
        misses = 0
        if isinstance(fields.get("patient_id"), str):
            fields["patient_id"] = translate(fields["patient_id"])
            misses += fields["patient_id"] is None
        if rule == "bad_row_shape":
            text = _rekey_line(fields.get("csv_line"), translate, keyed=keyed)
            misses += text is None and fields.get("csv_line") is not None
            fields["csv_line"], value = text, text
        elif column == "patient_id" and value is not None:
            new = translate(value)
            detail = detail.replace(f"'{value}'", f"'{new}'" if new else "an id withdrawn at rekey")
            value = new
            misses += new is None
        blanked += misses > 0
        updates.append((rowid, value, detail, json.dumps(fields)))
    _write_rows(con, "quarantine", ["value", "detail", "raw_row"], updates)
    return len(updates), blanked


def _rekey_line(text: str | None, translate: Translate, *, keyed: bool) -> str | None:
    """A malformed line's pseudonyms translated; unkeyed lines hold raw ids: blanked."""
    if text is None or not keyed:
        return None
    found = TOKEN.findall(text)
    new = {t: translate(t) for t in found}
    if any(v is None for v in new.values()):
        return None
    return TOKEN.sub(lambda m: new[m.group(0)] or "", text)


def _rekey_audit(con: duckdb.DuckDBPyConnection, translate: Translate) -> int:
    """Translate the patient_id inside audit.row_key ("patient_id=..., level=...")."""
    rows = con.execute("SELECT rowid, row_key FROM audit WHERE row_key LIKE '%patient_id=%'")
    updates = [
        (rowid, AUDIT_ID.sub(lambda m: translate(m.group(0)) or "", key))
        for rowid, key in rows.fetchall()
    ]
    _write_rows(con, "audit", ["row_key"], updates)
    return len(updates)


def _write_rows(
    con: duckdb.DuckDBPyConnection, table: str, columns: list[str], rows: list[tuple[Any, ...]]
) -> None:
    """UPDATE table's text columns by rowid from (rowid, *values) tuples (table: ours)."""
    if not rows:
        return
    schema = {"row_number": pl.Int64, **dict.fromkeys(columns, pl.String)}
    con.register("rekey_rows", pl.DataFrame(rows, schema=schema, orient="row"))
    try:
        sets = ", ".join(f"{c} = r.{c}" for c in columns)
        con.execute(
            f"UPDATE {table} SET {sets} FROM rekey_rows r WHERE {table}.rowid = r.row_number"
        )
    finally:
        con.unregister("rekey_rows")
