"""The target trial's protocol: the study file's `[target_trial]` table, parsed and checked.

Its settings dataclass lives here, at the package root, rather than in the analysis stage:
the study (registry/study.py) holds it and every stage reads the study, while importing
registry.analysis from registry.study would be an import cycle (the analysis stage imports
the study). registry.analysis.target_trial.protocol re-exports it.

Eligibility and time zero are the cohort's (every patient of an outcome's frame with all
baseline covariates, from the index diagnosis); the strategies are `treat` (a procedure of
the study's treatment within `grace_days` of t0) and `no_treat` (none during follow-up);
death competes with every outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

MarginScale = Literal["difference", "ratio"]
WeightKind = Literal["stabilised", "unstabilised"]
SECTION = "target_trial"


@dataclass(frozen=True)
class Protocol:
    """The protocol's settings, with the defaults of the press release's question."""

    grace_days: int = 56  # treat within 2-8 weeks: 8 weeks
    years: tuple[int, ...] = (1, 2, 5)  # risks, differences and ratios at these years
    # weights capped at this percentile; 100: none (the simulation study: capping at the
    # 99th left 2-3 points of the confounding in the 5-year risk difference, see README)
    truncation_percentile: float = 100.0
    weights: WeightKind = "stabilised"
    replicates: int = 200  # nonparametric bootstrap of patients (0: point estimates only)
    seed: int = 20260101
    margin: float = 0.05  # non-inferiority: "no more frequent" by this much at `margin_year`
    margin_scale: MarginScale = "difference"  # 0.05 = 5 percentage points; ratio e.g. 1.25
    margin_year: int = 5
    positivity_bounds: tuple[float, float] = (0.05, 0.95)
    enabled: bool = True  # false: results.json's target_trial is null and nothing is fitted


def _is_int(value: Any) -> bool:
    return type(value) is int


def _is_number(value: Any) -> bool:
    return type(value) in (int, float) and value == value  # not a bool, not NaN


def _whole(key: str, value: Any, low: int, high: int) -> list[str]:
    if _is_int(value) and low <= value <= high:
        return []
    return [f"{SECTION}.{key} must be a whole number from {low} to {high}, got {value!r}"]


def _years(value: Any) -> list[str]:
    ok = isinstance(value, list) and value and all(_is_int(v) and 1 <= v <= 30 for v in value)
    if not ok:
        return [f"{SECTION}.years must be a non-empty list of whole years from 1 to 30, "
                f"got {value!r}"]  # fmt: skip
    if value != sorted(set(value)):
        return [f"{SECTION}.years must be in increasing order without repeats, got {value!r}"]
    return []


def _margin(data: dict[str, Any]) -> list[str]:
    scale = data.get("margin_scale", "difference")
    if scale not in ("difference", "ratio"):
        return [f"{SECTION}.margin_scale must be 'difference' or 'ratio', got {scale!r}"]
    if "margin" not in data and scale == "ratio":
        return [f"{SECTION}.margin must be set when margin_scale is 'ratio' (e.g. 1.25)"]
    margin = data.get("margin", Protocol.margin)
    if scale == "difference" and not (_is_number(margin) and 0 < margin < 1):
        return [f"{SECTION}.margin must be a risk difference between 0 and 1 (0.05 = 5 "
                f"percentage points), got {margin!r}"]  # fmt: skip
    if scale == "ratio" and not (_is_number(margin) and 1 < margin < float("inf")):
        return [f"{SECTION}.margin must be a risk ratio above 1 (e.g. 1.25), got {margin!r}"]
    return []


def _bounds(value: Any) -> list[str]:
    pair = isinstance(value, list) and len(value) == 2 and all(_is_number(v) for v in value)
    if pair and 0 < value[0] < value[1] < 1:
        return []
    return [f"{SECTION}.positivity_bounds must be [low, high] with 0 < low < high < 1, "
            f"got {value!r}"]  # fmt: skip


def protocol_problems(data: Any) -> list[str]:
    """Every problem of a `[target_trial]` table (empty when valid), each naming its key."""
    if not isinstance(data, dict):
        return [f"{SECTION} must be a table ([{SECTION}]), got {data!r}"]
    known = {f.name for f in fields(Protocol)}
    found = [f"{SECTION}: unknown key '{k}'" for k in sorted(set(data) - known)]
    checks = {
        "grace_days": lambda v: _whole("grace_days", v, 1, 365),
        "years": _years,
        "replicates": lambda v: _whole("replicates", v, 0, 5000),
        "seed": lambda v: _whole("seed", v, 0, 2**63 - 1),
        "positivity_bounds": _bounds,
        "truncation_percentile": lambda v: [] if _is_number(v) and 90 <= v <= 100 else [
            f"{SECTION}.truncation_percentile must be a number from 90 to 100, got {v!r}"],
        "weights": lambda v: [] if v in ("stabilised", "unstabilised") else [
            f"{SECTION}.weights must be 'stabilised' or 'unstabilised', got {v!r}"],
        "enabled": lambda v: [] if isinstance(v, bool) else [
            f"{SECTION}.enabled must be true or false, got {v!r}"],
    }  # fmt: skip
    for key, check in checks.items():
        if key in data:
            found += check(data[key])
    found += _margin(data)
    years = data.get("years", list(Protocol.years))
    year = data.get("margin_year", Protocol.margin_year)
    if not _years(years) and year not in years:
        found.append(f"{SECTION}.margin_year must be one of the years {years}, got {year!r}")
    return found


def parse_protocol(data: dict[str, Any]) -> Protocol:
    """A Protocol from a `[target_trial]` table already checked by protocol_problems."""
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    if "truncation_percentile" in values:
        values["truncation_percentile"] = float(values["truncation_percentile"])
    if "margin" in values:
        values["margin"] = float(values["margin"])
    if "positivity_bounds" in values:
        values["positivity_bounds"] = tuple(float(v) for v in values["positivity_bounds"])
    return Protocol(**values)
