"""Simulation check: do the primary and IPTW estimates recover a known treatment effect?

Synthetic cohorts with confounding by indication and a known hazard ratio of
adjacent fracture from the day of treatment (`--treatment-hr`); for each seed,
fit the naive ever-treated Cox, the time-varying (adjusted) Cox, the landmark
and IPTW models, and report estimates, bias of log HR and CI coverage.

Usage: python benchmarks/simulation_check.py [--patients N] [--seeds K] [--hr HR]
"""

from __future__ import annotations

import argparse
import math
import statistics

import polars as pl
from benchmarks_support import load_registry

from registry.analysis import LANDMARK, NAIVE, fit_fixed, fit_iptw, fit_time_varying
from registry.cohort import RegistryFrames, build_cohort
from registry.study import Study, load_study
from registry.synth import generate_cohort
from registry.time_to_event import build_time_to_event

MODELS = ("naive_unadjusted", "naive_adjusted", "time_varying", "time_varying_adjusted",
          "landmark", "iptw")  # fmt: skip


def frames_from_synth(patients: int, seed: int, hr: float) -> RegistryFrames:
    """Registry frames straight from a synthetic cohort (through an in-memory DuckDB)."""
    return load_registry(generate_cohort(patients=patients, seed=seed, treatment_hr=hr))


def estimates(frames: RegistryFrames, study: Study) -> dict[str, dict[str, float]]:
    """HR and CI of every model for the adjacent outcome."""
    cohort = build_cohort(frames, study)
    tte = build_time_to_event(cohort, frames.fractures, study)
    out = tte.outcomes.filter(pl.col("outcome") == "adjacent")
    cp = tte.counting.filter(pl.col("outcome") == "adjacent")
    lm = tte.landmark.filter(pl.col("outcome") == "adjacent")
    return {
        "naive_unadjusted": fit_fixed(out, study, adjusted=False, label=NAIVE),
        "naive_adjusted": fit_fixed(out, study, adjusted=True, label=NAIVE),
        "time_varying": fit_time_varying(cp, study, adjusted=False),
        "time_varying_adjusted": fit_time_varying(cp, study, adjusted=True),
        "landmark": fit_fixed(lm, study, adjusted=False, label=LANDMARK),
        "iptw": fit_iptw(lm, study)[0],
    }


def main() -> None:
    """Print a table of mean HR, bias of log HR and coverage per model."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--hr", type=float, default=0.6)
    args = parser.parse_args()
    study = load_study()
    found: dict[str, list[dict[str, float]]] = {m: [] for m in MODELS}
    for seed in range(1, args.seeds + 1):
        fits = estimates(frames_from_synth(args.patients, seed, args.hr), study)
        for model in MODELS:
            found[model].append(fits[model])
    print(f"truth HR {args.hr}; {args.patients:,} patients x {args.seeds} seeds (adjacent outcome)")
    print(f"{'model':24} {'mean HR':>8} {'bias logHR':>11} {'coverage':>9}")
    for model, fits in found.items():
        bias = statistics.mean(math.log(f["hr"]) - math.log(args.hr) for f in fits)
        covered = sum(f["ci_lower"] <= args.hr <= f["ci_upper"] for f in fits)
        mean_hr = statistics.mean(f["hr"] for f in fits)
        print(f"{model:24} {mean_hr:8.3f} {bias:11.3f} {covered:>5}/{len(fits)}")


if __name__ == "__main__":
    main()
