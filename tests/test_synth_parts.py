"""Large synthetic cohorts drawn and written part by part (registry.synth.parts)."""

import json
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.pipeline import synthesise
from registry.synth import TABLES
from registry.synth import parts as synth_parts
from registry.synth.parts import part_seed, part_sizes, shift_ids


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts of 40 patients above 100, so a test cohort is drawn in parts."""
    monkeypatch.setattr(synth_parts, "PART_PATIENTS", 40)
    monkeypatch.setattr(synth_parts, "PARTS_ABOVE", 100)


def read(folder: Path, name: str, fmt: str = "csv") -> pl.DataFrame:
    path = folder / f"{name}.{fmt}"
    return pl.read_csv(path, infer_schema=False) if fmt == "csv" else pl.read_parquet(path)


@pytest.mark.usefixtures("small_parts")
def test_parts_make_one_cohort_with_distinct_ids(tmp_path: Path) -> None:
    written = synthesise(tmp_path / "a", patients=130, seed=7)
    assert {p.name for p in written} == {f"{t}.csv" for t in TABLES} | {"truth.json"}
    patients = read(tmp_path / "a", "patients")
    assert patients.height == 130  # one header, every part's rows
    expected = [f"P{i:07d}" for i in range(1, 131)]
    assert sorted(patients.get_column("patient_id").to_list()) == expected
    for table in TABLES:  # every table points at patients of the cohort
        ids = set(read(tmp_path / "a", table).get_column("patient_id").to_list())
        assert ids <= set(expected)
    fractures = read(tmp_path / "a", "index_fractures").get_column("patient_id")
    assert fractures.str.slice(1).cast(pl.Int64).max() > 120  # the last part's patients too
    truth = json.loads((tmp_path / "a" / "truth.json").read_text())
    assert truth["patients"] == 130
    assert truth["parts"] == {"patients_per_part": 40, "seeds": [part_seed(7, k) for k in range(4)]}


@pytest.mark.usefixtures("small_parts")
def test_the_same_seed_gives_the_same_files_and_parquet_the_same_rows(tmp_path: Path) -> None:
    synthesise(tmp_path / "a", patients=130, seed=7)
    synthesise(tmp_path / "b", patients=130, seed=7)
    synthesise(tmp_path / "p", patients=130, seed=7, fmt="parquet")
    for table in TABLES:
        csv = (tmp_path / "a" / f"{table}.csv").read_bytes()
        assert csv == (tmp_path / "b" / f"{table}.csv").read_bytes()
        from_parquet = read(tmp_path / "p", table, "parquet").cast(pl.String)
        assert from_parquet.height == read(tmp_path / "a", table).height
    other = synthesise(tmp_path / "c", patients=130, seed=8)
    assert other[0].read_bytes() != (tmp_path / "a" / other[0].name).read_bytes()


@pytest.mark.usefixtures("small_parts")
def test_up_to_the_threshold_a_cohort_is_drawn_in_one_piece(tmp_path: Path) -> None:
    from registry.synth import generate_cohort

    synthesise(tmp_path / "a", patients=100, seed=3)
    whole = generate_cohort(patients=100, seed=3).tables["patients"]
    assert read(tmp_path / "a", "patients").height == whole.height
    assert "parts" not in json.loads((tmp_path / "a" / "truth.json").read_text())


@pytest.mark.usefixtures("small_parts")
def test_a_part_drawn_cohort_ingests_without_quarantine(tmp_path: Path) -> None:
    import datetime as dt

    from registry.config import Settings
    from registry.pipeline import ingest_into, init_registry

    synthesise(tmp_path / "a", patients=130, seed=7)
    db = tmp_path / "r.duckdb"
    init_registry(db)
    run = ingest_into(Settings(db=db), [tmp_path / "a"], as_of=dt.date(2026, 1, 1))
    assert not run.refused
    assert all(o.quarantined == 0 for o in run.loaded)
    assert [o.inserted for o in run.loaded if o.table == "patients"] == [130]


@settings(max_examples=50, deadline=None)
@given(patients=st.integers(0, 5_000), size=st.integers(1, 700))
def test_parts_cover_every_patient_once(patients: int, size: int) -> None:
    """Offsets and sizes tile 0..patients, so the shifted ids are 1..patients exactly once."""
    synth_parts.PART_PATIENTS, saved = size, synth_parts.PART_PATIENTS
    try:
        tiles = list(part_sizes(patients))
    finally:
        synth_parts.PART_PATIENTS = saved
    ids: list[str] = []
    for start, n in tiles:
        frame = pl.DataFrame({"patient_id": [f"P{i:07d}" for i in range(1, n + 1)]})
        ids += shift_ids(frame, start).get_column("patient_id").to_list()
    assert ids == [f"P{i:07d}" for i in range(1, patients + 1)]


def test_ids_of_another_form_are_not_shifted() -> None:
    frame = pl.DataFrame({"patient_id": ["P0000001", "P0000002x", None]})
    shifted = shift_ids(frame, 10).get_column("patient_id").to_list()
    assert shifted == ["P0000011", "P0000002x", None]
