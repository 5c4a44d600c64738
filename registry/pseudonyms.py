"""The pseudonym key: its check value, the guard every ingest passes, scrubbed raw lines.

Pseudonyms are HMAC-SHA256(key, raw id), first 32 hex digits (validate.pseudonymise). The
registry keeps a check value of the key (HMAC of a fixed label, never the key) so that an
ingest with another key, or none, is refused before a file is touched: a wrong key would
store every patient a second time, a forgotten one quarantine every child row.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json

import duckdb
import polars as pl

from registry.db import query, scalar
from registry.errors import PseudonymKeyError

CHECK_LABEL = b"vertebral-registry pseudonym key check v1"
CHECK_NAME = "pseudonym_key_check"
SEE = 'see README "Pseudonym key"'
NOT_KEPT = " (its text is not kept: the patient_id field cannot be located in it)"


def pseudonym(key: str, raw_id: str) -> str:
    """The pseudonym of one raw id: HMAC-SHA256 under the key, first 32 hex digits."""
    return hmac.new(key.encode("utf-8"), raw_id.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def key_check(key: str) -> str:
    """The check value of a key: HMAC-SHA256 of a fixed label, hex. It does not reveal the key."""
    return hmac.new(key.encode("utf-8"), CHECK_LABEL, hashlib.sha256).hexdigest()


def recorded_check(con: duckdb.DuckDBPyConnection) -> tuple[str, dt.datetime] | None:
    """The registry's key check value and when it was recorded, or None (never keyed)."""
    rows = query(con, "queries/pseudonyms/key_check").rows()
    return (rows[0][0], rows[0][1]) if rows else None


def record_check(con: duckdb.DuckDBPyConnection, key: str) -> None:
    """Record (or replace) the check value of the registry's key."""
    con.execute(
        "INSERT OR REPLACE INTO registry_settings (name, value, recorded_at) "
        "VALUES (?, ?, current_timestamp)",
        [CHECK_NAME, key_check(key)],
    )


def holds_patients(con: duckdb.DuckDBPyConnection) -> int:
    """How many patient rows the registry holds (0 for a new registry)."""
    return int(scalar(con, "SELECT count(*) FROM patients"))


def looks_keyed(con: duckdb.DuckDBPyConnection) -> bool:
    """True when every stored patient id is 32 lower-case hex digits, as our pseudonyms are."""
    sql = "SELECT count(*) FILTER (WHERE NOT regexp_full_match(patient_id, '[0-9a-f]{32}')) "
    return not scalar(con, sql + "FROM patients")


def guard_key(con: duckdb.DuckDBPyConnection, key: str | None) -> None:
    """Refuse an ingest whose key does not fit the registry; record the first key used."""
    recorded = recorded_check(con)
    if recorded is not None:
        check, since = recorded
        if key is None:
            raise PseudonymKeyError(
                f"this registry's patient ids are pseudonymised with a key (recorded "
                f"{since:%Y-%m-%d}) but REGISTRY_PSEUDONYM_KEY is not set: every row would be "
                f"quarantined as an unknown patient. Set the registry's key and ingest again "
                f"({SEE}); nothing was stored"
            )
        if not hmac.compare_digest(key_check(key), check):
            raise PseudonymKeyError(
                f"REGISTRY_PSEUDONYM_KEY is not the key this registry was built with (recorded "
                f"{since:%Y-%m-%d}): every patient would be stored a second time. Set the right "
                f"key, or change keys on purpose with `registry rekey` ({SEE}); nothing was stored"
            )
        return
    if key is None:
        return
    held = holds_patients(con)
    if held and looks_keyed(con):
        raise PseudonymKeyError(
            f"this registry's {held:,} patient ids look like pseudonyms stored before the key "
            "was recorded (a registry older than migration 0005). If REGISTRY_PSEUDONYM_KEY is "
            "the key they were made with, record it, checked against the raw ids, with "
            f"`registry record-key --key-env VAR --ids FILE` ({SEE}); nothing was stored"
        )
    if held:
        raise PseudonymKeyError(
            f"REGISTRY_PSEUDONYM_KEY is set but this registry holds {held:,} patients stored "
            f"without a key: they would be stored a second time. Unset the key, or pseudonymise "
            f"the stored ids with `registry rekey --new-key-env VAR` ({SEE}); nothing was stored"
        )
    record_check(con, key)


def scrub_rejects(rejects: pl.DataFrame, *, names: list[str], key: str | None) -> pl.DataFrame:
    """Malformed lines (bad_row_shape) without raw ids: with a key, a line that splits into
    the header's fields keeps its text with patient_id pseudonymised; any other line keeps
    only its file, line and rule (its text is blanked)."""
    if key is None or rejects.is_empty() or "patient_id" not in names:
        return rejects
    texts = [
        _scrubbed_line(text, names.index("patient_id"), len(names), key)
        for text in rejects.get_column("value").to_list()
    ]
    detail = [
        d if t is not None else d.rstrip(".") + NOT_KEPT
        for d, t in zip(rejects.get_column("detail").to_list(), texts, strict=True)
    ]
    return rejects.with_columns(
        pl.Series("value", texts, dtype=pl.String),
        pl.Series("detail", detail, dtype=pl.String),
        pl.Series("raw_row", [json.dumps({"csv_line": t}) for t in texts], dtype=pl.String),
    )


def _scrubbed_line(text: str | None, position: int, width: int, key: str) -> str | None:
    """The line with its id field pseudonymised, or None when its fields cannot be aligned."""
    if text is None:
        return None
    records = list(csv.reader(text.splitlines()))
    if len(records) != 1 or len(records[0]) != width:
        return None
    fields = records[0]
    raw = fields[position].strip()
    fields[position] = pseudonym(key, raw) if raw else ""
    # keep the line as written (its quoting may be what is wrong) where a plain split agrees
    naive = text.split(",")
    if len(naive) == width and naive[position].strip().strip('"').strip() == raw:
        naive[position] = fields[position]
        return ",".join(naive)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(fields)
    return buffer.getvalue()
