"""A simulated month: 30 nightly full exports of a growing synthetic registry through refresh.

Night d exports every patient whose first index fracture is on or before that night's cut-off
(about 300 patients growing to 600) and every dated row up to the cut-off (new follow-up),
with a few corrected values (audit), a few bad rows (quarantine) and one refused file. Takes
about 2 minutes (30 builds of 3-4 s), hence slow.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import polars as pl
import pytest

from registry.db import connect, query
from registry.refresh import run_refresh
from registry.synth import generate_cohort
from tests.conftest import write_csv
from tests.test_refresh_support import options, utc_now

NIGHTS = 30
LAST_CUT = dt.date(2025, 12, 31)
DATES = {
    "index_fractures": "diagnosed_on",
    "procedures": "performed_on",
    "assessments": "assessed_on",
    "fractures": "detected_on",
    "follow_up": "contact_on",
}
CORRECTION_NIGHTS = (5, 12, 20)
BAD_ROW_NIGHTS = (3, 10, 17, 25)
REFUSED_NIGHT = 15

pytestmark = pytest.mark.slow


def cut_offs(tables: dict[str, pl.DataFrame]) -> list[dt.date]:
    """Night cut-offs: the 300th patient's index date on night 1, LAST_CUT on night 30."""
    t0 = tables["index_fractures"].group_by("patient_id").agg(pl.col("diagnosed_on").min())
    first = t0.get_column("diagnosed_on").sort()[299]
    step = (LAST_CUT - first).days / (NIGHTS - 1)
    return [first + dt.timedelta(days=round(step * i)) for i in range(NIGHTS)]


def export(
    tables: dict[str, pl.DataFrame], cut: dt.date, fixes: dict[str, float]
) -> dict[str, pl.DataFrame]:
    """What the source system exports on the night of `cut`, with the corrections so far."""
    t0 = tables["index_fractures"].group_by("patient_id").agg(pl.col("diagnosed_on").min())
    ids = t0.filter(pl.col("diagnosed_on") <= cut).get_column("patient_id")
    patients = tables["patients"].filter(pl.col("patient_id").is_in(ids.implode()))
    fixed = pl.col("patient_id").replace_strict(
        fixes, default=pl.col("bmd_t_score"), return_dtype=pl.Float64
    )
    out = {"patients": patients.with_columns(bmd_t_score=fixed)}
    for name, column in DATES.items():
        frame = tables[name].filter(pl.col("patient_id").is_in(ids.implode()))
        out[name] = frame.filter(pl.col(column) <= cut)
    return out


def correct(out: dict[str, pl.DataFrame], fixes: dict[str, float]) -> None:
    """Correct the BMD of two more patients (kept in every later export)."""
    candidates = out["patients"].filter(~pl.col("patient_id").is_in(list(fixes))).head(2)
    for patient_id, bmd in candidates.select("patient_id", "bmd_t_score").iter_rows():
        fixes[patient_id] = -2.0 if bmd is None or bmd > -1.5 else round(bmd + 0.5, 1)


def write_night(inbox: Path, night: int, out: dict[str, pl.DataFrame], cut: dt.date) -> None:
    folder = inbox / f"night{night:02d}"
    folder.mkdir(parents=True)
    for name, frame in out.items():
        frame.write_csv(folder / f"{name}.csv", date_format="%Y-%m-%d", null_value="")
    if night in BAD_ROW_NIGHTS:  # an impossible date and an unknown patient
        first = out["patients"].get_column("patient_id")[0]
        with (folder / "follow_up.csv").open("a") as f:
            f.write(f"{first},2021-02-30,alive\nNOBODY-{night},{cut},alive\n")
    if night == REFUSED_NIGHT:
        extra = inbox / f"night{night:02d}-extra"
        extra.mkdir()
        write_csv(extra, "patients", "patient_id,sex,birth_year,email\nX1,F,1950,x@y.z")


def test_a_month_of_nightly_refreshes(tmp_path: Path) -> None:
    tables = generate_cohort(patients=600, seed=3, cutoff=LAST_CUT).tables
    fixes: dict[str, float] = {}
    opts, started = options(tmp_path), time.perf_counter()
    cuts = cut_offs(tables)
    for night, cut in enumerate(cuts, start=1):
        if night in CORRECTION_NIGHTS:  # among the patients of night 1, so an update not an insert
            correct(export(tables, cuts[0], fixes), fixes)
        write_night(opts.inbox, night, export(tables, cut, fixes), cut)
        assert run_refresh(opts, as_of=cut, clock=utc_now).status == "published"
    elapsed = time.perf_counter() - started
    print(f"30 nightly refreshes in {elapsed:.0f} s")
    con = connect(opts.db, read_only=True)
    history = query(con, "queries/refresh/history")
    con.close()
    assert history.height == NIGHTS and set(history["status"]) == {"published"}
    corrected = history.get_column("corrected_rows").to_list()
    assert [i + 1 for i, n in enumerate(corrected) if n] == list(CORRECTION_NIGHTS)
    quarantined = history.get_column("quarantined_rows").to_list()
    assert [i + 1 for i, n in enumerate(quarantined) if n] == list(BAD_ROW_NIGHTS)
    assert all(n == 2 for n in corrected if n) and all(n == 2 for n in quarantined if n)
    patients = history.get_column("n_patients").to_list()
    assert patients[0] >= 300 and patients == sorted(patients) and patients[-1] == 600
    page = (opts.publish / "index.html").read_text()
    assert page.count('class="published') == NIGHTS and "first build" in page
    assert len(list((opts.inbox / "rejected").rglob("*.reason.txt"))) == 1
