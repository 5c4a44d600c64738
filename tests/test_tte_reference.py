"""The cohort and time-to-event frames against a plain reference implementation.

A synthetic cohort is perturbed (fractures moved to t0, procedures before t0 and at
non-index levels, kyphoplasty, deaths with a fracture that day, ties, malignant index
fractures, missing follow-up, contacts after a loss, ...), ingested into an in-memory
registry, and the frames of registry.cohort/registry.time_to_event are compared row for
row with tests/reference_tte.py computed from the same registry rows.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from registry.cohort import build_cohort, read_registry
from registry.db import connect
from registry.ingest import ingest_paths
from registry.ingest.contract import SPECS
from registry.levels import LEVELS, POSITION
from registry.migrate import apply_migrations
from registry.study import Study
from registry.synth import generate_cohort
from registry.time_to_event import build_time_to_event
from tests.reference_tte import reference_frames

AS_OF = dt.date(2026, 1, 1)
SEED = 20240607
PATIENTS = 3000
TABLES = ("patients", "index_fractures", "procedures", "assessments", "fractures", "follow_up")
OUTCOME_FIELDS = (
    "patient_id",
    "outcome",
    "t0",
    "end_on",
    "duration_days",
    "event",
    "treated",
    "treat_day",
    "age",
    "sex",
    "bmd_t_score",
    "glucocorticoids",
    "prior_vertebral_fractures",
    "n_index_levels",
    "site_id",
    "event_level",
    "event_distance",
    "event_sandwich",
)
COUNTING_FIELDS = ("patient_id", "outcome", "start", "stop", "treated", "event")
LANDMARK_FIELDS = ("patient_id", "outcome", "duration_days", "event", "treated")

Row = dict[str, Any]


def _days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


class Perturber:
    """Plain-Python edits of the synthetic contract tables, keyed by patient."""

    def __init__(self, tables: dict[str, pl.DataFrame], seed: int) -> None:
        self.by: dict[str, dict[str, list[Row]]] = {name: {} for name in TABLES}
        for name in TABLES:
            for row in tables[name].to_dicts():
                self.by[name].setdefault(row["patient_id"], []).append(row)
        self.schemas = {name: tables[name].schema for name in TABLES}
        self.rng = random.Random(seed)
        ids = sorted(self.by["patients"])
        self.rng.shuffle(ids)
        self.pool = ids
        self.used: set[str] = set()

    def of(self, table: str, pid: str) -> list[Row]:
        return self.by[table].get(pid, [])

    def patients_with(self, table: str, status: str | None = None) -> set[str]:
        """Patients with a row in `table` (with that follow-up status, if given)."""
        return {
            pid
            for pid, rows in self.by[table].items()
            if rows and (status is None or any(r["status"] == status for r in rows))
        }

    def t0(self, pid: str) -> dt.date:
        """Earliest index diagnosis of a patient (every patient taken has one)."""
        return min(r["diagnosed_on"] for r in self.of("index_fractures", pid))

    def index_levels(self, pid: str) -> list[str]:
        return [r["level"] for r in self.of("index_fractures", pid)]

    def take(self, n: int, where: Any = None) -> list[str]:
        """n patients not used by another perturbation, meeting `where`."""
        chosen: list[str] = []
        for pid in self.pool:
            if len(chosen) == n:
                break
            if pid in self.used or not self.of("index_fractures", pid):
                continue
            if where is None or where(pid):
                chosen.append(pid)
        self.used.update(chosen)
        return chosen

    def add(self, table: str, **row: Any) -> None:
        dates = [v for v in row.values() if isinstance(v, dt.date)]
        if all(d <= AS_OF for d in dates):
            self.by[table].setdefault(row["patient_id"], []).append(row)

    def drop(self, table: str, pids: list[str] | set[str]) -> None:
        for pid in pids:
            self.by[table].pop(pid, None)

    def status_on(self, pid: str, status: str) -> list[dt.date]:
        return sorted(r["contact_on"] for r in self.of("follow_up", pid) if r["status"] == status)

    def frames(self) -> dict[str, pl.DataFrame]:
        """The edited tables, one row per natural key (the first one kept)."""
        out = {}
        for name in TABLES:
            seen: set[tuple[Any, ...]] = set()
            kept = []
            for row in (r for rows in self.by[name].values() for r in rows):
                key = tuple(row[k] for k in SPECS[name].key)
                if key not in seen:
                    seen.add(key)
                    kept.append(row)
            out[name] = pl.DataFrame(kept, schema=self.schemas[name], orient="row")
        return out


def _shifted(level: str, by: int) -> str | None:
    pos = POSITION[level] + by
    return LEVELS[pos] if 0 <= pos < len(LEVELS) else None


def _free_level(p: Perturber, pid: str, near: str, offsets: tuple[int, ...]) -> str | None:
    taken = set(p.index_levels(pid))
    for by in offsets:
        level = _shifted(near, by)
        if level is not None and level not in taken:
            return level
    return None


def perturb(tables: dict[str, pl.DataFrame], seed: int) -> dict[str, pl.DataFrame]:
    """Edits that reach the branches a plain synthetic cohort rarely or never reaches."""
    p = Perturber(tables, seed)
    rng = p.rng
    has_fracture = p.patients_with("fractures")
    treated = p.patients_with("procedures")

    # fractures moved to t0 or before it (not new fractures)
    for i, pid in enumerate(p.take(16, lambda x: x in has_fracture)):
        row = p.of("fractures", pid)[0]
        row["detected_on"] = p.t0(pid) - _days(0 if i % 2 else 3)

    # procedures before t0, of any kind and level
    for i, pid in enumerate(p.take(10)):
        t0 = p.t0(pid)
        level = p.index_levels(pid)[0] if i % 2 else (_shifted(p.index_levels(pid)[0], 3) or "L5")
        kind = "kyphoplasty" if i % 3 == 0 else "vertebroplasty"
        p.add("procedures", **_procedure(pid, level, t0 - _days(1 + i), kind))

    # procedures at a non-index level (never treatment), some before the real treatment
    for i, pid in enumerate(p.take(24)):
        t0, level = p.t0(pid), p.index_levels(pid)[0]
        other = _free_level(p, pid, level, (1, -1, 2, -2, 5, -5))
        if other is not None:
            day = rng.choice((0, 1, 20, 60, 200))
            p.add(
                "procedures",
                **_procedure(pid, other, t0 + _days(day), ("vertebroplasty", "kyphoplasty")[i % 2]),
            )

    # kyphoplasty of an index level, for untreated and treated patients
    for pid in p.take(40):
        t0 = p.t0(pid)
        level = rng.choice(p.index_levels(pid))
        day = rng.choice((0, 1, 10, 29, 30, 31, 89, 90, 91, 300))
        p.add("procedures", **_procedure(pid, level, t0 + _days(day), "kyphoplasty"))

    # vertebroplasty of an index level on boundary days (t0, landmarks, end of follow-up)
    for pid in p.take(40, lambda x: x not in treated):
        t0 = p.t0(pid)
        level = rng.choice(p.index_levels(pid))
        ends = p.status_on(pid, "dead") + p.status_on(pid, "lost") + p.status_on(pid, "withdrawn")
        choice = rng.choice((0, 30, 31, 90, 91, 1826, -1, -2))
        when = t0 + _days(max(choice, 0))
        if choice < 0 and ends:  # on the end date (-2) or the day before it (-1)
            when = ends[0] - _days(choice + 2)
        p.add("procedures", **_procedure(pid, level, when, "vertebroplasty"))

    # a second vertebroplasty, later, at another index level (treatment is the first)
    for pid in p.take(10, lambda x: x in treated and len(p.index_levels(x)) > 1):
        first = min(r["performed_on"] for r in p.of("procedures", pid))
        level = p.index_levels(pid)[-1]
        p.add("procedures", **_procedure(pid, level, first + _days(40), "vertebroplasty"))

    # a new fracture on the day of death, and one the day after
    dead = p.patients_with("follow_up", "dead")
    for i, pid in enumerate(p.take(30, lambda x: x in dead)):
        death = p.status_on(pid, "dead")[0]
        near = rng.choice(p.index_levels(pid))
        level = _shifted(near, rng.choice((1, -1, 0, 3))) or near
        p.add("fractures", **_fracture(pid, level, death + _days(1 if i % 4 == 3 else 0)))

    # two new fractures on the same day at different levels (ties: distance, then position)
    for pid in p.take(40, lambda x: x in has_fracture):
        row = p.of("fractures", pid)[0]
        ref = p.index_levels(pid)[0]
        offset = POSITION[row["level"]] - POSITION[ref]
        mirror = _shifted(ref, -offset) if offset else None
        level = mirror if mirror and mirror != row["level"] else rng.choice(LEVELS)
        if level != row["level"]:
            p.add("fractures", **_fracture(pid, level, row["detected_on"]))

    # a malignant or traumatic index fracture beside an osteoporotic one
    for i, pid in enumerate(p.take(12)):
        free = _free_level(p, pid, p.index_levels(pid)[0], (4, -4, 6, -6))
        if free is not None:
            when = p.t0(pid) + _days(-3 if i % 3 == 0 else 2)
            etiology = ("malignant", "traumatic")[i % 2]
            p.add("index_fractures", **_index(pid, free, when, etiology))

    # no index fracture at all
    p.drop("index_fractures", p.take(6))

    # no follow-up rows: the end comes from assessments, procedures and fractures
    p.drop("follow_up", p.take(25))
    nothing = p.take(6)
    for table in ("follow_up", "assessments", "procedures", "fractures"):
        p.drop(table, nothing)
    only_t0 = p.take(6)
    for table in ("follow_up", "assessments", "procedures", "fractures"):
        p.drop(table, only_t0)
    for pid in only_t0:
        p.add("assessments", patient_id=pid, assessed_on=p.t0(pid), instrument="VAS", score=7.0)

    # follow-up ending on t0 itself (a terminal contact on day 0)
    for i, pid in enumerate(p.take(6)):
        p.drop("follow_up", [pid])
        status = ("dead", "lost", "withdrawn")[i % 3]
        p.add("follow_up", patient_id=pid, contact_on=p.t0(pid), status=status)

    # 'alive' contacts after a loss or withdrawal
    stopped = p.patients_with("follow_up", "lost") | p.patients_with("follow_up", "withdrawn")
    for pid in p.take(25, lambda x: x in stopped):
        stop = (p.status_on(pid, "lost") + p.status_on(pid, "withdrawn"))[0]
        for later in (30, 400):
            p.add("follow_up", patient_id=pid, contact_on=stop + _days(later), status="alive")

    # both a loss and (later) a death: the loss is the end, the death no competing event
    for pid in p.take(8, lambda x: x in dead):
        death = p.status_on(pid, "dead")[0]
        if (death - p.t0(pid)).days > 60:
            p.add("follow_up", patient_id=pid, contact_on=death - _days(50), status="lost")
            p.add("follow_up", patient_id=pid, contact_on=death + _days(20), status="dead")

    # death at, and after, the five-year horizon; contacts beyond it
    early = {
        pid for pid in p.pool if p.of("index_fractures", pid) and p.t0(pid) <= AS_OF - _days(2000)
    }
    for i, pid in enumerate(p.take(16, lambda x: x in early)):
        p.drop("follow_up", [pid])
        t0 = p.t0(pid)
        p.add("follow_up", patient_id=pid, contact_on=t0 + _days(365), status="alive")
        last = (1826, 1827, 1900, 1990)[i % 4]
        status = "dead" if i % 8 < 4 else "alive"
        p.add("follow_up", patient_id=pid, contact_on=t0 + _days(last), status=status)
        level = _shifted(p.index_levels(pid)[0], 1) or "L4"
        p.add("fractures", **_fracture(pid, level, t0 + _days(1826 + i % 2)))

    # sandwiches: a new fracture between two index levels, and a same-level one between two
    # (found before, or after, the second level is diagnosed)
    single = {pid for pid in p.pool if len(p.index_levels(pid)) == 1}
    for i, pid in enumerate(p.take(20, lambda x: x in single)):
        t0, ref = p.t0(pid), p.index_levels(pid)[0]
        upper, middle = _shifted(ref, 2), _shifted(ref, 1)
        if upper is None or middle is None:
            continue
        p.add("index_fractures", **_index(pid, upper, t0 + _days(3), "osteoporotic"))
        if i % 4 == 0:
            p.add("index_fractures", **_index(pid, middle, t0 + _days(5), "osteoporotic"))
        p.add("fractures", **_fracture(pid, middle, t0 + _days(rng.choice((1, 45, 90, 91, 400)))))

    # a withdrawal before a death, with a fracture between them (not ascertained), and a
    # death on the day of a withdrawal (the death is the end)
    for i, pid in enumerate(p.take(12, lambda x: x in dead)):
        death = p.status_on(pid, "dead")[0]
        if (death - p.t0(pid)).days > 40:
            gap = 0 if i % 3 == 0 else 30
            p.add("follow_up", patient_id=pid, contact_on=death - _days(gap), status="withdrawn")
            level = _shifted(p.index_levels(pid)[0], 1) or "L4"
            p.add("fractures", **_fracture(pid, level, death - _days(gap // 2)))

    # index levels diagnosed later (days 20-60: inside and outside the 30-day index
    # episode) with new fractures next to them before, on and after that diagnosis
    for pid in p.take(40, lambda x: x in single):
        t0, ref = p.t0(pid), p.index_levels(pid)[0]
        later = _shifted(ref, rng.choice((3, -3, 4, -4)))
        beside = _shifted(later, 1) if later else None
        if later is None or beside is None or beside == ref:
            continue
        diagnosed = rng.choice((20, 29, 30, 31, 45, 60))
        p.add("index_fractures", **_index(pid, later, t0 + _days(diagnosed), "osteoporotic"))
        found = diagnosed + rng.choice((-5, 0, 10))
        p.add("fractures", **_fracture(pid, rng.choice((beside, later)), t0 + _days(found)))

    # new fractures on days 1, the landmarks and their neighbours
    for pid in p.take(40):
        t0, ref = p.t0(pid), p.index_levels(pid)[0]
        level = _shifted(ref, rng.choice((-3, -1, 0, 1, 2))) or ref
        day = rng.choice((1, 29, 30, 31, 89, 90, 91))
        p.add("fractures", **_fracture(pid, level, t0 + _days(day)))

    return p.frames()


def _procedure(pid: str, level: str, when: dt.date, kind: str) -> Row:
    return {
        "patient_id": pid,
        "level": level,
        "performed_on": when,
        "procedure": kind,
        "cement_volume_ml": 4.5,
        "cement_leakage": "none",
    }


def _fracture(pid: str, level: str, when: dt.date) -> Row:
    return {"patient_id": pid, "level": level, "detected_on": when, "detection": "radiographic"}


def _index(pid: str, level: str, when: dt.date, etiology: str) -> Row:
    return {
        "patient_id": pid,
        "level": level,
        "diagnosed_on": when,
        "etiology": etiology,
        "genant_grade": 2,
    }


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory registry loaded from the perturbed synthetic cohort."""
    tables = perturb(generate_cohort(patients=PATIENTS, seed=SEED).tables, SEED)
    folder: Path = tmp_path_factory.mktemp("tte_reference")
    for name, frame in tables.items():
        frame.write_csv(folder / f"{name}.csv", date_format="%Y-%m-%d", null_value="")
    con = connect()
    apply_migrations(con)
    results = ingest_paths(con, [folder], as_of=AS_OF)
    refused = [r for r in results if isinstance(r, Exception)]
    assert not refused, refused
    quarantined = con.execute("SELECT file_name, rule, detail FROM quarantine").fetchall()
    assert not quarantined, quarantined[:10]
    for name, frame in tables.items():
        stored = con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
        assert stored == frame.height, (name, stored, frame.height)
    yield con
    con.close()


def registry_rows(con: duckdb.DuckDBPyConnection) -> dict[str, list[Row]]:
    """The six core tables as plain Python rows, straight from SQL."""
    out = {}
    for name in TABLES:
        cursor = con.execute(f"SELECT * FROM {name}")
        names = [d[0] for d in cursor.description]
        out[name] = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return out


def _rows(frame: pl.DataFrame, fields: tuple[str, ...]) -> list[Row]:
    return frame.select(fields).to_dicts()


def _sorted(rows: list[Row], key: tuple[str, ...]) -> list[Row]:
    return sorted(rows, key=lambda r: tuple(r[k] for k in key))


def assert_same_rows(
    what: str, ours: list[Row], theirs: list[Row], key: tuple[str, ...], shown: int = 6
) -> None:
    """Row-for-row equality; the message shows the first differing rows of both sides."""
    ours, theirs = _sorted(ours, key), _sorted(theirs, key)
    if ours == theirs:
        return
    lines = [f"{what}: reference has {len(ours)} rows, code under test {len(theirs)}"]
    mine = {tuple(r[k] for k in key): r for r in ours}
    other = {tuple(r[k] for k in key): r for r in theirs}
    only_ref = [k for k in mine if k not in other]
    only_code = [k for k in other if k not in mine]
    if only_ref:
        lines.append(f"  {len(only_ref)} keys only in the reference, first: {only_ref[:shown]}")
    if only_code:
        lines.append(f"  {len(only_code)} keys only in the code, first: {only_code[:shown]}")
    differing = [k for k in mine if k in other and mine[k] != other[k]]
    fields: dict[str, int] = {}
    for k in differing:
        for f in mine[k]:
            if mine[k][f] != other[k].get(f):
                fields[f] = fields.get(f, 0) + 1
    lines.append(f"  {len(differing)} shared keys differ; by field: {fields}")
    for k in differing[:shown]:
        lines.append(f"  reference: {mine[k]}")
        lines.append(f"  code:      {other[k]}")
    for i, (a, b) in enumerate(zip(ours, theirs, strict=False)):
        if a != b:
            lines.append(f"  first differing position {i}:\n    reference: {a}\n    code:      {b}")
            break
    raise AssertionError("\n".join(lines))


def assert_branches_exercised(ref: dict[str, list[Any]], study: Study) -> None:
    """The perturbed cohort reaches the branches the comparison is meant to cover."""
    assert all(n > 0 for _, n in ref["attrition"]), ref["attrition"]
    out = ref["outcomes"]
    events = {r["event"] for r in out}
    assert events == {0, 1, 2}, events
    assert any(r["treat_day"] == 0 for r in out)
    assert any(r["treat_day"] == study.landmark_days for r in out)
    assert any(r["event_sandwich"] for r in out)
    assert not any(r["event_distance"] != 1 and r["event_sandwich"] for r in out)
    assert any(r["end_on"] == r["t0"] + dt.timedelta(days=study.horizon_days) for r in out)
    splits = [r for r in ref["counting"] if r["start"] > 0]
    assert splits and any(r["event"] == 2 for r in splits) and any(r["event"] == 1 for r in splits)
    assert any(r["treated"] and r["start"] == 0 for r in ref["counting"])
    assert any(r["treat_day"] is not None and r["treat_day"] >= r["duration_days"] for r in out)


def assert_frame_types(tte: Any) -> None:
    """The column types the API promises (dict comparison alone would take True for 1)."""
    outcomes, counting, landmark = tte.outcomes.schema, tte.counting.schema, tte.landmark.schema
    assert outcomes["t0"] == pl.Date and outcomes["end_on"] == pl.Date, outcomes
    assert outcomes["event"].is_integer() and outcomes["treated"] == pl.Boolean, outcomes
    assert counting["treated"].is_integer() and counting["event"].is_integer(), counting
    assert landmark["treated"] == pl.Boolean and landmark["event"].is_integer(), landmark


STUDIES = {
    "default": Study(),
    "kyphoplasty_landmark30": Study(
        treatment_procedures=("vertebroplasty", "kyphoplasty"), landmark_days=30
    ),
}


@pytest.mark.parametrize("study_name", list(STUDIES))
def test_time_to_event_matches_reference(
    registry: duckdb.DuckDBPyConnection, study_name: str
) -> None:
    study = STUDIES[study_name]
    ref = reference_frames(registry_rows(registry), study)
    assert_branches_exercised(ref, study)

    frames = read_registry(registry)
    cohort = build_cohort(frames, study)
    tte = build_time_to_event(cohort, frames.fractures, study)

    assert_frame_types(tte)
    attrition = cohort.attrition.sort("step")
    steps = {r["step"]: r for r in attrition.to_dicts()}
    code_attrition = [(steps[s]["rule"], steps[s]["excluded"]) for s in (1, 2, 3, 4)]
    assert code_attrition == ref["attrition"], (code_attrition, ref["attrition"])
    n_patients = registry.execute("SELECT count(*) FROM patients").fetchall()[0][0]
    assert steps[0]["remaining"] == n_patients
    eligible = len({r["patient_id"] for r in ref["outcomes"]})
    assert steps[4]["remaining"] == eligible

    assert_same_rows(
        "outcomes", ref["outcomes"], _rows(tte.outcomes, OUTCOME_FIELDS), ("outcome", "patient_id")
    )
    assert_same_rows(
        "counting",
        ref["counting"],
        _rows(tte.counting, COUNTING_FIELDS),
        ("outcome", "patient_id", "start"),
    )
    assert_same_rows(
        "landmark",
        ref["landmark"],
        _rows(tte.landmark, LANDMARK_FIELDS),
        ("outcome", "patient_id"),
    )
