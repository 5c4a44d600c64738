"""emulate() pinned on a synthetic tv-confounding cohort: the whole block (points, bootstrap
intervals, curves, diagnostics) equals the values the estimator gave before its performance
work (tests/data/target_trial_pinned.json, written by this file's `main`), to 1e-12.

Regenerate only for a change that is meant to move the numbers:
`.venv/bin/python -m tests.test_target_trial_pinned`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from registry.analysis.target_trial.estimate import emulate
from registry.analysis.target_trial.protocol import Protocol
from registry.cohort import read_registry
from registry.db import connect, query
from registry.migrate import apply_migrations
from registry.pipeline import build_frames
from registry.study import load_study
from registry.synth import generate_cohort

GOLDEN = Path(__file__).parent / "data" / "target_trial_pinned.json"
PATIENTS, SEED, REPLICATES = 1500, 11, 30
TOLERANCE = 1e-12


def pinned_inputs() -> tuple[pl.DataFrame, pl.DataFrame]:
    """The adjacent outcome's frame and the assessments of the synthetic cohort."""
    synth = generate_cohort(patients=PATIENTS, seed=SEED, scenario="tv-confounding")
    con = connect()
    try:
        apply_migrations(con)
        for name, frame in synth.tables.items():
            con.register("frame", frame)
            con.execute(f"INSERT INTO {name} SELECT * FROM frame")
            con.unregister("frame")
        frames = read_registry(con)
        assessments = query(con, "queries/analysis/assessments")
    finally:
        con.close()
    _, tte = build_frames(frames, load_study())
    return tte.outcomes.filter(pl.col("outcome") == "adjacent"), assessments


def blocks() -> dict[str, Any]:
    """The block without and with bootstrap replicates."""
    outcome, assessments = pinned_inputs()
    return {
        str(replicates): emulate(
            outcome, assessments, Protocol(replicates=replicates), outcome="adjacent"
        )
        for replicates in (0, REPLICATES)
    }


def differences(ours: Any, pinned: Any, path: str = "") -> list[str]:
    """Paths where two JSON values differ (numbers beyond the tolerance)."""
    if isinstance(pinned, dict) and isinstance(ours, dict):
        if set(ours) != set(pinned):
            return [f"{path}: keys {sorted(ours)} != {sorted(pinned)}"]
        return [d for k in pinned for d in differences(ours[k], pinned[k], f"{path}.{k}")]
    if isinstance(pinned, list) and isinstance(ours, list):
        if len(ours) != len(pinned):
            return [f"{path}: length {len(ours)} != {len(pinned)}"]
        return [d for k, (a, b) in enumerate(zip(ours, pinned, strict=True))
                for d in differences(a, b, f"{path}[{k}]")]  # fmt: skip
    numbers = (int, float)
    if isinstance(pinned, numbers) and isinstance(ours, numbers) and not isinstance(ours, bool):
        close = math.isclose(ours, pinned, rel_tol=TOLERANCE, abs_tol=TOLERANCE)
        return [] if close else [f"{path}: {ours!r} != {pinned!r}"]
    return [] if ours == pinned else [f"{path}: {ours!r} != {pinned!r}"]


@pytest.mark.slow
def test_emulate_gives_the_pinned_numbers() -> None:
    ours = json.loads(json.dumps(blocks()))  # tuples as lists, as in the golden file
    pinned = json.loads(GOLDEN.read_text())
    assert ours["0"]["status"] == "estimated"
    assert ours[str(REPLICATES)]["risk_difference"]["5"]["ci_lower"] is not None
    assert differences(ours, pinned) == []


def test_the_comparison_sees_a_changed_number() -> None:
    pinned = {"a": [1.0, {"b": 0.25}], "c": None}
    assert differences(pinned, pinned) == []
    assert differences({"a": [1.0, {"b": 0.25 + 1e-9}], "c": None}, pinned) == [
        ".a[1].b: 0.250000001 != 0.25"
    ]
    assert differences({"a": [1.0], "c": None}, pinned) == [".a: length 1 != 2"]


def main() -> None:
    """Write the golden file from the current estimator."""
    GOLDEN.write_text(json.dumps(blocks(), indent=1) + "\n")


if __name__ == "__main__":
    main()
