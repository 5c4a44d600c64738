"""The study specification: a TOML file under reports/, validated on load."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry import catalogue
from registry.errors import ConfigError
from registry.missing_data import SECTION as MISSING_SECTION
from registry.missing_data import MissingData, missing_data_problems, parse_missing_data
from registry.resources import default_study
from registry.trial_protocol import SECTION, Protocol, parse_protocol, protocol_problems

DEFAULT_STUDY = default_study()
OUTCOMES = catalogue.outcome_keys()  # registry/catalogue.py declares them
PROCEDURES = ("vertebroplasty", "kyphoplasty")
COVARIATES = (
    "age",
    "sex",
    "bmd_t_score",
    "glucocorticoids",
    "prior_vertebral_fractures",
    "n_index_levels",
)


@dataclass(frozen=True)
class Study:
    """What to analyse: outcomes, horizon, what counts as treatment, landmark, covariates."""

    title: str = "New vertebral fractures after vertebroplasty"
    outcomes: tuple[str, ...] = OUTCOMES
    primary_outcome: str = catalogue.PRIMARY_OUTCOME
    horizon_days: int = 1826
    treatment_procedures: tuple[str, ...] = ("vertebroplasty",)
    landmark_days: int = 90
    covariates: tuple[str, ...] = COVARIATES
    min_cell_count: int = 5
    target_trial: Protocol = field(default_factory=Protocol)  # registry/trial_protocol.py
    missing_data: MissingData = field(default_factory=MissingData)  # registry/missing_data.py


def _problems(data: dict[str, Any]) -> list[str]:
    """Every problem of a study's keys and values (empty when valid)."""
    known = set(Study.__dataclass_fields__)
    found = [f"unknown key '{k}'" for k in sorted(set(data) - known)]
    found += protocol_problems(data[SECTION]) if SECTION in data else []
    if MISSING_SECTION in data:
        covariates = data.get("covariates", list(COVARIATES))
        covariates = tuple(covariates) if isinstance(covariates, list) else ()
        found += missing_data_problems(data[MISSING_SECTION], covariates)
    found += _check_subset(data, "outcomes", catalogue.outcome_keys())
    found += _check_subset(data, "treatment_procedures", PROCEDURES)
    found += _check_subset(data, "covariates", COVARIATES, allow_empty=True)
    outcomes = data.get("outcomes", OUTCOMES)
    primary = data.get("primary_outcome", catalogue.PRIMARY_OUTCOME)
    if isinstance(outcomes, list) and primary not in outcomes:
        # the headline, the primary model and the history page all read the primary outcome
        found.append(
            f"primary_outcome '{primary}' is not one of the outcomes"
            + ("" if "primary_outcome" in data else " (set primary_outcome, or add it)")
        )
    for key, low, high in (("horizon_days", 30, 36525), ("landmark_days", 0, 3650),
                           ("min_cell_count", 1, 1000)):  # fmt: skip
        value = data.get(key)
        if value is not None and (type(value) is not int or not low <= value <= high):
            found.append(f"{key} must be a whole number from {low} to {high}, got {value!r}")
    horizon, landmark = data.get("horizon_days", 1826), data.get("landmark_days", 90)
    both_valid = not [p for p in found if p.startswith(("horizon_days", "landmark_days"))]
    if both_valid and landmark >= horizon:
        found.append(f"landmark_days ({landmark}) must be before horizon_days ({horizon})")
    if "title" in data and not (isinstance(data["title"], str) and data["title"].strip()):
        found.append("title must be a non-empty string")
    return found


def _check_subset(
    data: dict[str, Any], key: str, allowed: tuple[str, ...], *, allow_empty: bool = False
) -> list[str]:
    if key not in data:
        return []
    value = data[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return [f"{key} must be a list of strings"]
    if not value and not allow_empty:
        return [f"{key} must not be empty"]
    unknown = [v for v in value if v not in allowed]
    return [f"{key}: unknown value '{v}' (allowed: {', '.join(allowed)})" for v in unknown]


def parse_study(data: dict[str, Any], *, source: str = "study") -> Study:
    """A Study from a TOML table; every problem is reported at once."""
    problems = _problems(data)
    if problems:
        listed = "\n  ".join(problems)
        raise ConfigError(f"{source}: {len(problems)} problem(s):\n  {listed}")
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    if SECTION in data:
        values[SECTION] = parse_protocol(data[SECTION])
    if MISSING_SECTION in data:
        values[MISSING_SECTION] = parse_missing_data(data[MISSING_SECTION])
    return Study(**values)


def load_study(path: Path | None = None) -> Study:
    """Read and validate a study file (default: reports/adjacent_refracture.toml)."""
    path = path or DEFAULT_STUDY
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such study file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return parse_study(data, source=str(path))
