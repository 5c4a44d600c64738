"""The weighted cause-specific hazard ratio of the strategies: reasons, symmetries, scale."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from registry.analysis.target_trial import NotEstimable
from registry.analysis.target_trial.hazard import HazardRatio, weighted_hazard_ratio


def clone_rows(n: int = 80, seed: int = 3) -> pl.DataFrame:
    """Two (start, stop] rows per clone, both strategies, outcomes, deaths and weights."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        strategy = "treat" if i % 2 else "no_treat"
        end = int(rng.integers(30, 400))
        code = int(rng.choice([0, 1, 2], p=[0.5, 0.3, 0.2]))
        w1, w2 = 1.0, float(rng.uniform(1, 3))
        rows += [
            (f"P{i}:{strategy}", strategy, 0, 28, 0, w1),
            (f"P{i}:{strategy}", strategy, 28, end, code, w2),
        ]
    return pl.DataFrame(
        rows, schema=["clone_id", "strategy", "start", "stop", "event", "w"], orient="row"
    )


def fitted(rows: pl.DataFrame) -> HazardRatio:
    result = weighted_hazard_ratio(rows, "w")
    assert isinstance(result, HazardRatio), result
    return result


def test_hazard_ratio_is_the_exponent_of_the_coefficient() -> None:
    result = fitted(clone_rows())
    assert result.estimate == pytest.approx(np.exp(result.coef))
    assert result.se_robust > 0 and result.events > 0


@pytest.mark.parametrize("strategy", ["treat", "no_treat"])
def test_a_strategy_without_outcomes_gives_a_reason(strategy: str) -> None:
    rows = clone_rows()
    # deaths are no outcome: a strategy with deaths only still has nothing to compare
    rows = rows.with_columns(
        pl.when((pl.col("strategy") == strategy) & (pl.col("event") == 1))
        .then(2)
        .otherwise(pl.col("event"))
        .alias("event")
    )
    result = weighted_hazard_ratio(rows, "w")
    assert result == NotEstimable(f"no outcome among the {strategy} clones: no hazard ratio")


def test_no_rows_give_a_reason() -> None:
    assert isinstance(weighted_hazard_ratio(clone_rows().clear(), "w"), NotEstimable)


def test_a_coefficient_running_to_infinity_gives_a_reason() -> None:
    # every outcome of the treat clones comes while no_treat clones are at risk, but the one
    # no_treat outcome comes after every treat clone has left: the likelihood rises forever
    rows = pl.DataFrame(
        [
            ("a:treat", "treat", 0, 2, 1, 1.0),
            ("b:treat", "treat", 0, 3, 1, 1.0),
            ("c:no_treat", "no_treat", 0, 9, 0, 1.0),
            ("d:no_treat", "no_treat", 0, 10, 1, 1.0),
        ],
        schema=["clone_id", "strategy", "start", "stop", "event", "w"],
        orient="row",
    )
    result = weighted_hazard_ratio(rows, "w")
    assert isinstance(result, NotEstimable)
    assert result.reason.startswith("the weighted Cox model could not be fitted")


def test_deaths_are_censorings() -> None:
    rows = clone_rows()
    censored = rows.with_columns(pl.col("event").replace(2, 0))
    assert fitted(rows).coef == pytest.approx(fitted(censored).coef, abs=1e-12)


def test_swapping_the_strategies_inverts_the_hazard_ratio() -> None:
    rows = clone_rows()
    swapped = rows.with_columns(
        pl.when(pl.col("strategy") == "treat")
        .then(pl.lit("no_treat"))
        .otherwise(pl.lit("treat"))
        .alias("strategy")
    )
    assert fitted(swapped).coef == pytest.approx(-fitted(rows).coef, abs=1e-10)


def test_identical_strategies_give_a_hazard_ratio_of_one() -> None:
    treat = clone_rows()
    no_treat = treat.with_columns(
        pl.lit("no_treat").alias("strategy"), (pl.col("clone_id") + "-copy").alias("clone_id")
    )
    both = pl.concat([treat.with_columns(pl.lit("treat").alias("strategy")), no_treat])
    assert fitted(both).coef == pytest.approx(0.0, abs=1e-10)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.01, 100.0))
def test_scaling_every_weight_leaves_the_hazard_ratio(seed: int, scale: float) -> None:
    rows = clone_rows(60, seed)
    assume(not isinstance(weighted_hazard_ratio(rows, "w"), NotEstimable))
    scaled = rows.with_columns(pl.col("w") * scale)
    assert fitted(scaled).coef == pytest.approx(fitted(rows).coef, abs=1e-9)
