"""Property: under a pseudonym key, no raw id ever reaches any table of the database file."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.db import connect
from registry.ingest import ingest_paths
from registry.migrate import apply_migrations
from registry.pseudonyms import pseudonym
from tests.conftest import AS_OF

# raw ids carry an upper-case prefix no pseudonym (lower-case hex) or message can contain
raw_ids = st.text("abcdefghjkmnpqrstuvwxyz23456789", min_size=4, max_size=8).map(lambda s: "ID" + s)
padded = st.tuples(st.sampled_from(["", " ", "  "]), raw_ids, st.sampled_from(["", " "]))
shapes = st.sampled_from(["ok", "ok", "ok", "extra", "short", "open_quote", "quoted", "blank"])
TABLES = {
    "patients": ("patient_id,site_id,sex,birth_year", ["S1", "F", "1950"], ["S2", "Z", "1890"]),
    "follow_up": ("patient_id,contact_on,status", ["2020-01-01", "alive"], ["2020-13-01", "gone"]),
    "assessments": (
        "patient_id,assessed_on,instrument,score",
        ["2020-01-02", "VAS", "7"],
        ["2030-01-02", "ODI", "101"],
    ),
}


def line(pad: tuple[str, str, str], shape: str, cells: list[str]) -> str:
    """One data line: an id (maybe padded) and the other cells, broken in one way or none."""
    first = "".join(pad)
    if shape == "blank":
        first = pad[0]
    elif shape == "open_quote":
        first = '"' + first
    elif shape == "quoted":
        first = f'"{first}"'
    fields = [first, *cells]
    if shape == "extra":
        fields.append("x")
    elif shape == "short":
        fields.pop()
    return ",".join(fields)


rows = st.lists(
    st.tuples(padded, shapes, st.booleans(), st.sampled_from(list(TABLES))), max_size=30
)


def all_text(db: Path) -> str:
    """Every text cell of every table of the database file (reopened: only what persists)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        columns = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE data_type IN ('VARCHAR', 'JSON') ORDER BY ALL"
        ).fetchall()
        return "\n".join(
            str(con.execute(f'SELECT "{c}"::VARCHAR FROM "{t}"').fetchall()) for t, c in columns
        )
    finally:
        con.close()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows)
def test_no_raw_id_is_stored_anywhere_under_a_key(
    rows: list[tuple[tuple[str, str, str], str, bool, str]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder, db = Path(tmp) / "in", Path(tmp) / "r.duckdb"
        folder.mkdir()
        lines: dict[str, list[str]] = {name: [spec[0]] for name, spec in TABLES.items()}
        for pad, shape, valid, table in rows:
            _, good, bad = TABLES[table]
            lines[table].append(line(pad, shape, good if valid else bad))
            if table != "patients" and valid:  # most child rows have their patient
                lines["patients"].append(line(pad, "ok", TABLES["patients"][1]))
        for name, text in lines.items():
            (folder / f"{name}.csv").write_text("\n".join(text) + "\n", encoding="utf-8")
        con = connect(db)
        apply_migrations(con)
        ingest_paths(con, [folder], as_of=AS_OF, pseudonym_key="a key")
        ingest_paths(con, [folder], as_of=AS_OF, pseudonym_key="a key")  # and again
        con.close()
        stored = all_text(db)
        leaked = sorted({pad[1] for pad, *_ in rows if pad[1] in stored})
        assert not leaked, leaked
        swallowed = {t for _, shape, _, t in rows if shape == "open_quote"}  # to the file's end
        kept = [p[1] for p, shape, ok, t in rows if shape == "ok" and ok and t not in swallowed]
        assert all(pseudonym("a key", raw) in stored for raw in kept)  # stored, as pseudonyms
