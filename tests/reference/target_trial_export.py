"""Export the inputs of tests/reference/target_trial_reference.R (run from the repository root:
`.venv/bin/python tests/reference/target_trial_export.py`, then the R script).

A synthetic cohort (`registry synth --patients 400 --seed 7`) is ingested into a temporary
registry; the adjacent outcome's clones and weights (grace period 56 days, 99th-percentile
truncation) are written to tests/reference/target_trial/:
  initiation.csv  the treatment-initiation model's data: `initiated` and its design columns
  clones.csv      clone_id, strategy, start, stop, event, w, sw (truncated weights)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import polars as pl

from registry.analysis.target_trial.clones import build_clones
from registry.analysis.target_trial.weights import (
    Weights,
    active_rows,
    censoring_weights,
    initiation_rows,
    model_frame,
)
from registry.pipeline import build_analysis

OUT = Path("tests/reference/target_trial")
REGISTRY = [sys.executable, "-m", "registry.cli"]


def synthetic_registry(folder: Path) -> Path:
    """Synthesise, initialise and ingest the 400-patient cohort of seed 7."""
    db = folder / "r.duckdb"
    for args in (
        ["synth", "--out", str(folder / "in"), "--patients", "400", "--seed", "7"],
        ["init", "--db", str(db)],
        ["ingest", "--db", str(db), str(folder / "in"), "--as-of", "2026-01-01"],
    ):
        subprocess.run([*REGISTRY, *args], check=True, capture_output=True)
    return db


def inputs(db: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The adjacent outcome's frame and the assessments."""
    analysis = build_analysis(db, None)
    assessments = analysis.assessments
    outcome = analysis.tte.outcomes.filter(pl.col("outcome") == "adjacent")
    return outcome, assessments


def main(out: Path = OUT) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        outcome, assessments = inputs(synthetic_registry(Path(tmp)))
    clones = build_clones(outcome, assessments, grace_days=56)
    assert isinstance(clones, pl.DataFrame), clones
    weights = censoring_weights(clones, assessments)
    assert isinstance(weights, Weights), weights
    fitted = active_rows(initiation_rows(clones, assessments))
    design = model_frame(fitted).select(weights.denominator.names[1:])
    design.insert_column(0, fitted.get_column("initiated")).write_csv(out / "initiation.csv")
    weights.rows.select("clone_id", "strategy", "start", "stop", "event", "w", "sw").write_csv(
        out / "clones.csv", float_precision=17
    )


if __name__ == "__main__":
    main()
