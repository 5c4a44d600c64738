"""The analysis frames written for R or Stata (registry.export)."""

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from registry.config import Settings
from registry.export import analysis_frames, write_analysis, write_frames
from registry.pipeline import build_analysis, ingest_into, init_registry, synthesise


@pytest.fixture(scope="module")
def analysis(tmp_path_factory: pytest.TempPathFactory) -> object:
    root = tmp_path_factory.mktemp("export")
    synthesise(root / "in", patients=400, seed=11)
    db = root / "r.duckdb"
    init_registry(db)
    ingest_into(Settings(db=db), [root / "in"], as_of=dt.date(2026, 1, 1))
    return build_analysis(db, None)


@pytest.mark.parametrize("csv", [False, True])
def test_outcome_by_outcome_files_equal_the_whole_frames(
    analysis: object, tmp_path: Path, csv: bool
) -> None:
    """write_analysis appends each outcome's rows in turn and never holds every outcome's
    frames; what it writes is what writing the whole frames at once wrote."""
    cohort, tte = analysis.cohort, analysis.tte  # type: ignore[attr-defined]
    whole = write_frames(analysis_frames(cohort, tte), tmp_path / "whole", csv=csv)
    parts = write_analysis(cohort, tte, tmp_path / "parts", csv=csv)
    assert [p.name for p in parts] == [p.name for p in whole]
    for a, b in zip(whole, parts, strict=True):
        if a.suffix == ".parquet":
            assert pl.read_parquet(b).equals(pl.read_parquet(a)), a.name
            assert pl.read_parquet(b).height > 0 or a.stem in ("data_policy",)
        else:
            assert b.read_text() == a.read_text(), a.name
    outcomes = pl.read_parquet(tmp_path / "parts" / "outcomes.parquet")
    assert outcomes.get_column("outcome").unique(maintain_order=True).to_list() == list(tte.names)
