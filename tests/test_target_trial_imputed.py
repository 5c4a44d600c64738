"""The target trial on multiply imputed covariates (target_trial/imputed.py): pooled points,
the bootstrap spread over the imputations (replicate b on completed dataset b mod m), the
complete-case twin, and its publication under the small-cell rules."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import polars as pl
import pytest

from registry.analysis.imputation.pool import pool_cloglog
from registry.analysis.target_trial import imputed as imputed_module
from registry.analysis.target_trial.engine import run
from registry.analysis.target_trial.estimate import bootstrap, emulate
from registry.analysis.target_trial.imputed import with_covariates
from registry.analysis.target_trial.layout import prepare_outcome
from registry.analysis.target_trial.protocol import Protocol
from registry.compute import ProcessRunner
from registry.study import COVARIATES
from tests.test_target_trial_estimate import YEARS, frames
from tests.test_trial_publish import STRATEGIES, K, estimated_block, publish

MI_KEYS = ("multiple_imputation", "complete_case")
SCHEMA = Path(__file__).parent.parent / "registry" / "results.schema.json"


def protocol(replicates: int = 24) -> Protocol:
    return Protocol(years=YEARS, replicates=replicates, seed=5, margin_year=2)


def with_missing(seed: int = 3) -> tuple[pl.DataFrame, pl.DataFrame, list[pl.DataFrame]]:
    """An outcome frame with bmd_t_score missing for a fifth of the patients, its scores, and
    three completed datasets filling it with different draws."""
    frame, scores = frames(seed=seed)
    rng = np.random.default_rng(seed)
    missing = rng.random(frame.height) < 0.2
    observed = frame.with_columns(
        pl.when(pl.Series(missing))
        .then(None)
        .otherwise(pl.col("bmd_t_score"))
        .alias("bmd_t_score"),
        pl.Series("has_covariates", ~missing),
    )
    completed = [
        observed.select("patient_id", *COVARIATES).with_columns(
            pl.col("bmd_t_score").fill_null(pl.Series(rng.normal(-2.5, 0.8, frame.height)))
        )
        for _ in range(3)
    ]
    return observed, scores, completed


def without(block: Any, keys: tuple[str, ...] = MI_KEYS) -> dict[str, Any]:
    return {k: v for k, v in block.items() if k not in keys}


def test_imputations_equal_to_the_complete_data_give_todays_block() -> None:
    """Nothing missing, every completed dataset = the data: the block is today's, to the bit,
    plus the complete-case twin (today's points) and the pooling note."""
    frame, scores = frames()
    completed = frame.select("patient_id", *COVARIATES)
    today = emulate(frame, scores, protocol(), outcome="adjacent")
    pooled = emulate(frame, scores, protocol(), outcome="adjacent", imputed=[completed] * 3)
    assert json.dumps(without(pooled)) == json.dumps(today)
    assert pooled["multiple_imputation"]["imputations"] == 3
    assert "first completed dataset" in pooled["multiple_imputation"]["note"]
    twin = pooled["complete_case"]
    assert twin["status"] == "estimated" and twin["reason"] is None
    for strategy in STRATEGIES:
        assert twin["strategies"][strategy]["risk"] == today["strategies"][strategy]["risk"]
    for year in ("1", "2"):
        assert twin["risk_difference"][year] == today["risk_difference"][year]["estimate"]
        assert twin["risk_ratio"][year] == today["risk_ratio"][year]["estimate"]


def test_points_are_pooled_over_the_completed_datasets() -> None:
    """Risks pooled on the cloglog scale, RD and RR from the pooled risks, log HR averaged,
    every eligible patient counted; the complete-case twin is today's complete-case fit."""
    frame, scores, completed = with_missing()
    block = emulate(frame, scores, protocol(0), outcome="adjacent", imputed=completed)
    each = [
        emulate(with_covariates(frame, c), scores, protocol(0), outcome="adjacent")
        for c in completed
    ]
    assert block["patients"] == frame.height > int(frame["has_covariates"].sum())
    for strategy in STRATEGIES:
        for year in ("1", "2"):
            risks = [e["strategies"][strategy]["risk"][year] for e in each]
            assert len(set(risks)) == 3  # the imputations differ
            got = block["strategies"][strategy]["risk"][year]
            assert got == pytest.approx(pool_cloglog(risks), rel=1e-14)
        curve = block["strategies"][strategy]["curve"]["risk"]
        column = [e["strategies"][strategy]["curve"]["risk"][-1] for e in each]
        assert curve[-1] == pytest.approx(pool_cloglog(column), rel=1e-14)
    treat, no_treat = (block["strategies"][s]["risk"]["2"] for s in STRATEGIES)
    assert block["risk_difference"]["2"]["estimate"] == pytest.approx(treat - no_treat)
    assert block["risk_ratio"]["2"]["estimate"] == pytest.approx(treat / no_treat)
    log_hr = np.mean([np.log(e["hazard_ratio"]["estimate"]) for e in each])
    assert block["hazard_ratio"]["estimate"] == pytest.approx(np.exp(log_hr), rel=1e-12)
    first = each[0]["diagnostics"]  # the diagnostics are the first completed dataset's
    assert json.dumps(block["diagnostics"]) == json.dumps(first)
    complete = emulate(frame, scores, protocol(0), outcome="adjacent")
    assert complete["patients"] == int(frame["has_covariates"].sum())
    for strategy in STRATEGIES:
        assert (block["complete_case"]["strategies"][strategy]["risk"]
                == complete["strategies"][strategy]["risk"])  # fmt: skip


def test_replicate_b_runs_on_completed_dataset_b_mod_m() -> None:
    """The intervals are the percentiles of replicates b = 0..R-1, replicate b being today's
    replicate b (same patients drawn) on completed dataset b mod m; any other assignment of
    imputations gives other intervals."""
    frame, scores, completed = with_missing()
    prot = protocol(21)  # MIN_REPLICATES = 20: fewer give no interval
    block = emulate(frame, scores, prot, outcome="adjacent", imputed=completed)
    by_imputation = []
    for c in completed:
        prep = prepare_outcome(with_covariates(frame, c), scores, grace_days=prot.grace_days,
                               years=prot.years)  # fmt: skip
        assert not isinstance(prep, imputed_module.NotEstimable)
        point = run(prep, prot, np.ones(prep.n_patients), None)
        by_imputation.append(bootstrap(prep, prot, point, None))

    def interval(assign: list[int]) -> list[float]:
        values = [by_imputation[k][b].risks["treat"][2] for b, k in enumerate(assign)]  # type: ignore[union-attr]
        return [float(v) for v in np.percentile(values, (2.5, 97.5))]

    m = len(completed)
    assert block["strategies"]["treat"]["ci"]["2"] == interval([b % m for b in range(21)])
    assert block["strategies"]["treat"]["ci"]["2"] != interval([0] * 21)
    assert block["strategies"]["treat"]["ci"]["2"] != interval([(b + 1) % m for b in range(21)])


def test_serial_and_processes_give_the_same_pooled_block() -> None:
    """Replicates spread over workers: byte-identical blocks."""
    frame, scores, completed = with_missing()
    serial = emulate(frame, scores, protocol(), outcome="adjacent", imputed=completed)
    spread = emulate(frame, scores, protocol(), outcome="adjacent", runner=ProcessRunner(2),
                     imputed=completed)  # fmt: skip
    assert json.dumps(serial) == json.dumps(spread)
    assert serial["bootstrap"]["succeeded"] == 24


def test_with_covariates_replaces_the_covariates_and_recomputes_the_flag() -> None:
    """Columns and row order kept; has_covariates true where the completed values are all set."""
    frame, _, completed = with_missing()
    shuffled = completed[0].sample(fraction=1.0, shuffle=True, seed=1)
    out = with_covariates(frame, shuffled)
    assert out.columns == frame.columns and out["patient_id"].equals(frame["patient_id"])
    assert out["has_covariates"].all() and out["bmd_t_score"].null_count() == 0
    assert out["bmd_t_score"].equals(completed[0]["bmd_t_score"])
    holey = completed[0].with_columns(pl.lit(None, dtype=pl.Boolean).alias("glucocorticoids"))
    assert not with_covariates(frame, holey)["has_covariates"].any()


def test_an_imputation_the_design_cannot_answer_gives_the_not_estimable_block() -> None:
    """A completed dataset that leaves covariates missing (too few patients): no number."""
    frame, scores, completed = with_missing()
    holey = completed[0].with_columns(pl.lit(None, dtype=pl.Boolean).alias("glucocorticoids"))
    block = emulate(frame, scores, protocol(), outcome="adjacent", imputed=[holey, *completed])
    assert block["status"] == "not_estimable"
    assert "too few patients" in block["reason"] and "(imputation 1)" in block["reason"]


def test_a_complete_case_the_design_cannot_answer_keeps_the_pooled_estimate() -> None:
    """Too few complete cases: the pooled block stands, the twin says why it has no number."""
    frame, scores, completed = with_missing()
    few = frame.with_columns((pl.int_range(pl.len()) < 10).alias("has_covariates"))
    block = emulate(few, scores, protocol(0), outcome="adjacent", imputed=completed)
    assert block["status"] == "estimated"
    twin = block["complete_case"]
    assert twin["status"] == "not_estimable" and "too few patients" in twin["reason"]
    assert set(twin["risk_difference"].values()) == {None}


def twin_block(events: dict[str, int] | None) -> dict[str, Any]:
    """A published-ready block with a complete-case twin whose risks rest on `events`."""
    flows = {s: [(0, 1)] * 7 for s in STRATEGIES}
    block = estimated_block(400, flows, {"treat": [300, 200], "no_treat": [300, 200]},
                            [(0, 0.0), (365, 0.10), (730, 0.20)])  # fmt: skip
    for s in STRATEGIES:
        block["strategies"][s]["_events"] = {"1": 40, "2": 80}
    block["complete_case"] = {
        "status": "estimated", "reason": None,
        "strategies": {s: {"risk": {"1": 0.09, "2": 0.19}} for s in STRATEGIES},
        "risk_difference": {"1": 0.0, "2": 0.0}, "risk_ratio": {"1": 1.0, "2": 1.0},
    }  # fmt: skip
    if events is not None:
        for s in STRATEGIES:
            block["complete_case"]["strategies"][s]["_events"] = events
    return block


def test_complete_case_risks_are_published_by_their_own_event_counts() -> None:
    """A complete-case risk reached by fewer than k events is withheld with its contrasts;
    without counts nothing is shown; a withheld outcome empties the twin; `_events` never
    reaches results.json."""
    shown = publish(twin_block({"1": 40, "2": 80}))["complete_case"]
    assert shown["strategies"]["treat"]["risk"] == {"1": 0.09, "2": 0.19}
    assert shown["risk_difference"] == {"1": 0.0, "2": 0.0}
    few = publish(twin_block({"1": 40, "2": 40 + K - 1}))["complete_case"]
    assert few["strategies"]["treat"]["risk"] == {"1": 0.09, "2": None}
    assert few["risk_difference"] == {"1": 0.0, "2": None} and few["risk_ratio"]["2"] is None
    none = publish(twin_block(None))["complete_case"]
    assert none["strategies"]["no_treat"]["risk"] == {"1": None, "2": None}
    assert set(none["risk_ratio"].values()) == {None}
    small = twin_block({"1": 40, "2": 80})
    small["patients"] = K - 1
    withheld = publish(copy.deepcopy(small))
    assert set(withheld["complete_case"]["risk_difference"].values()) == {None}
    assert withheld["complete_case"]["strategies"]["treat"]["risk"] == {"1": None, "2": None}
    for published in (shown, few, none, withheld):
        assert "_events" not in repr(published)


def test_a_published_pooled_block_validates_against_the_schema() -> None:
    """The pooled block, once published, is a TrialOutcome of the committed JSON Schema (its
    `multiple_imputation` and `complete_case` keys typed in result_types.py)."""
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator({**schema, "$ref": "#/$defs/TrialOutcome"})
    frame, scores, completed = with_missing()
    block = emulate(frame, scores, protocol(), outcome="adjacent", imputed=completed)
    published = publish(json.loads(json.dumps(block)))
    assert set(MI_KEYS) <= set(published)
    validator.validate(published)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({**published, "complete_case": {"status": "estimated"}})
