"""Write the demo-derived golden frames that the R reference scripts read.

Usage (from the repository root):  .venv/bin/python tests/reference/make_demo_frames.py

Runs the pipeline's own stages on the demo cohort (`registry demo`: 1,700 synthetic
patients, seed 20260101) in a temporary folder -- synthesise, ingest, cohort, time-to-event
frames -- and writes the adjacent outcome's frames with pseudonymous ids replaced by row
numbers:

  tests/data/demo_adjacent_{outcomes,counting,landmark}.csv   id = 1, 2, ... in patient order
      (tests/reference/analysis_reference.R)
  tests/data/iptw_landmark.csv   the landmark frame, complete covariates only, id = 0, 1, ...
      in row order, male = sex == "M", with the study's covariates (those of
      reports/adjacent_refracture.toml) (tests/reference/iptw_reference.R)

Then rerun those two R scripts and commit the frames with their outputs.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import polars as pl

from registry.config import Settings
from registry.constants import DEMO_PATIENTS, DEMO_SEED
from registry.pipeline import build_analysis, ingest_into, init_registry, synthesise

PATIENTS, SEED = DEMO_PATIENTS, DEMO_SEED  # registry demo's defaults
OUTCOME = "adjacent"
DATA = Path(__file__).resolve().parent.parent / "data"
COVARIATES = [
    "age",
    "sex",
    "bmd_t_score",
    "glucocorticoids",
    "prior_vertebral_fractures",
    "n_index_levels",
    "site_id",
    "has_covariates",
]
AS_INT = ("treated", "glucocorticoids", "has_covariates")


def demo_frames(folder: Path) -> dict[str, pl.DataFrame]:
    """The demo cohort's outcome, counting-process and landmark frames of the outcome."""
    inbox, db = folder / "input", folder / "registry.duckdb"
    synthesise(inbox, fmt="csv", patients=PATIENTS, seed=SEED)
    init_registry(db)
    ingest_into(Settings(db=db), [inbox], as_of=dt.date.today())
    tte = build_analysis(db, None).tte
    frames = {"outcomes": tte.outcomes, "counting": tte.counting, "landmark": tte.landmark}
    return {name: f.filter(pl.col("outcome") == OUTCOME) for name, f in frames.items()}


def numbered(frames: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Pseudonyms replaced by 1, 2, ... in patient order; booleans as 0/1."""
    ids = frames["outcomes"].select("patient_id").unique().sort("patient_id")
    ids = ids.with_row_index("id", offset=1)
    columns = {
        "outcomes": ["duration_days", "event", "treated"],
        "counting": ["start", "stop", "event", "treated"],
        "landmark": ["duration_days", "event", "treated"],
    }
    return {
        name: frame.join(ids, on="patient_id", maintain_order="left")
        .select("id", *columns[name], *COVARIATES)
        .with_columns(pl.col(c).cast(pl.Int8) for c in AS_INT)
        for name, frame in frames.items()
    }


def iptw_frame(landmark: pl.DataFrame) -> pl.DataFrame:
    """The landmark frame of complete covariates as iptw_reference.R reads it."""
    rows = landmark.filter(pl.col("has_covariates") == 1)
    return (
        rows.drop("id")
        .with_row_index("id")
        .select(
            pl.col("id").cast(pl.Int64),
            "duration_days",
            "event",
            "treated",
            "age",
            (pl.col("sex") == "M").cast(pl.Int8).alias("male"),
            "bmd_t_score",
            "glucocorticoids",
            "prior_vertebral_fractures",
            "n_index_levels",
        )
    )


def main() -> None:
    """Build the frames and write them beside the other test data."""
    with tempfile.TemporaryDirectory() as tmp:
        frames = numbered(demo_frames(Path(tmp)))
    for name, frame in frames.items():
        frame.write_csv(DATA / f"demo_{OUTCOME}_{name}.csv")
    iptw_frame(frames["landmark"]).write_csv(DATA / "iptw_landmark.csv")
    print(f"wrote {', '.join(f'{n} {f.height:,} rows' for n, f in frames.items())} to {DATA}")


if __name__ == "__main__":
    main()
