"""Target-trial check: does the estimator core recover truth.json's risks on tv-confounding?

Draws a tv-confounding cohort, loads it into an in-memory registry, clones the adjacent
outcome's eligible patients (grace period 56 days), weighs them with *unstabilised,
untruncated* censoring weights (`censoring_weights(..., percentile=100.0)`, weight `w`) and
prints the weighted Aalen-Johansen 1-, 2- and 5-year risks of both strategies beside the
true ones (`truth.json`'s target_trial: on the internal draw, and on the cohort's own draws).
With --oracle it also weighs the same clones by the *true* probabilities of starting treatment
in each interval (from the scenario's hazard): when the data-generating process matches the
weight model's story, the fitted weights give what the true ones give, and what is left is
sampling error (heavy weights make it large: about 1-2 points at 20,000 patients).

Usage: python benchmarks/target_trial_check.py [--patients N] [--seed S] [--treatment-hr HR]
                                               [--oracle]
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import polars as pl
from benchmarks_support import registry_connection

from registry.analysis.target_trial import NotEstimable
from registry.analysis.target_trial.clones import build_clones
from registry.analysis.target_trial.risks import target_trial_risks
from registry.analysis.target_trial.weights import (
    censoring_weights,
    cumulative_weights,
    initiation_rows,
)
from registry.cohort import read_registry
from registry.constants import DEMO_CUTOFF
from registry.db import query
from registry.pipeline import build_frames
from registry.study import load_study
from registry.synth import generate_cohort
from registry.synth.latent import draw_patients
from registry.synth.params import TV_LATE_LAST_DAY
from registry.synth.tv import draw_tv_times, treatment_hazard

GRACE_DAYS = 56
STRATEGIES = ("treat", "no_treat")


def estimate(
    patients: int, seed: int, hr: float, *, oracle: bool
) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
    """Risks (year, treat, no_treat, rd) per weighting and truth.json's target_trial."""
    cohort = generate_cohort(
        patients=patients, seed=seed, treatment_hr=hr, scenario="tv-confounding"
    )
    con = registry_connection(cohort)
    frames, assessments = read_registry(con), query(con, "queries/analysis/assessments")
    con.close()
    tte = build_frames(frames, load_study())[1]
    outcome = tte.outcomes.filter(pl.col("outcome") == "adjacent")
    clones = estimable(build_clones(outcome, assessments, grace_days=GRACE_DAYS))
    weights = estimable(censoring_weights(clones, assessments, percentile=100.0))
    found = {"fitted": estimable(target_trial_risks(weights.rows, weight="w"))[1]}
    if oracle:
        probs = true_probabilities(initiation_rows(clones, assessments), patients, seed, hr)
        rows = cumulative_weights(clones, probs).rename({"w_raw": "w"})
        found["true"] = estimable(target_trial_risks(rows, weight="w"))[1]
    return found, cohort.truth["target_trial"]


def estimable(value: Any) -> Any:
    """The value, or exit with the reason it is not estimable."""
    if isinstance(value, NotEstimable):
        raise SystemExit(f"Error: not estimable: {value.reason}")
    return value


def true_probabilities(
    initiation: pl.DataFrame, patients: int, seed: int, hr: float
) -> pl.DataFrame:
    """patient_id, interval, p_den, p_num: the scenario's true probability of starting
    treatment in each interval at risk (the same draws as generate_cohort's)."""
    pat = draw_patients(seed, patients, DEMO_CUTOFF)
    draw_tv_times(pat, seed, hr)
    bounds, rate = treatment_hazard(pat)
    width = np.diff(bounds, axis=1)
    width[:, -1] = 0.0
    cum = np.column_stack([np.zeros(patients), np.cumsum(rate * width, axis=1)])
    k = initiation.get_column("patient_id").str.slice(1).cast(pl.Int64).to_numpy() - 1

    def hazard(day: np.ndarray) -> np.ndarray:
        t = np.clip(day, bounds[k, 0], TV_LATE_LAST_DAY)  # none before day 15 or after 365
        seg = (bounds[k, 1:-1] <= t[:, None]).sum(axis=1)
        return np.asarray(cum[k, seg] + rate[k, seg] * (t - bounds[k, seg]))

    h = hazard(initiation.get_column("stop").to_numpy()) - hazard(
        initiation.get_column("start").to_numpy()
    )
    return initiation.select(
        "patient_id",
        "interval",
        pl.Series("p_den", -np.expm1(-h)),
        pl.lit(0.5).alias("p_num"),  # the stabilised weight is not used here
    )


def table(found: dict[str, pl.DataFrame], truth: dict[str, Any]) -> list[str]:
    """Lines of the table: per year and strategy, each estimate, both truths, the errors."""
    names = list(found)
    head = " ".join(f"{name:>8}" for name in names)
    errors = " ".join(f"{'err ' + name[:4]:>9}" for name in names)
    lines = [f"{'year':>4} {'strategy':9} {head} {'truth':>7} {'cohort':>7} {errors}"]
    by_year = {
        name: {row["year"]: row for row in r.iter_rows(named=True)} for name, r in found.items()
    }
    for year in by_year[names[0]]:
        for strategy in STRATEGIES:
            true = truth["strategies"][strategy]["risk"][str(year)]
            own = truth["cohort"]["strategies"][strategy]["risk"][str(year)]
            est = [by_year[name][year][strategy] for name in names]
            shown = " ".join("       -" if e is None else f"{e:8.4f}" for e in est)
            diff = " ".join("        -" if e is None else f"{e - true:+9.4f}" for e in est)
            lines.append(f"{year:>4} {strategy:9} {shown} {true:7.4f} {own:7.4f} {diff}")
    return lines


def main() -> None:
    """Print the estimated and the true risks side by side."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--treatment-hr", type=float, default=1.0)
    parser.add_argument(
        "--oracle", action="store_true", help="also weigh by the true probabilities"
    )
    args = parser.parse_args()
    found, truth = estimate(args.patients, args.seed, args.treatment_hr, oracle=args.oracle)
    print(
        f"tv-confounding, {args.patients:,} patients, seed {args.seed}, "
        f"HR {args.treatment_hr}; unstabilised untruncated weights; adjacent, death competing"
    )
    print("\n".join(table(found, truth)))


if __name__ == "__main__":
    main()
