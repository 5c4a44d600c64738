"""How missing covariates are handled: the study file's `[missing_data]` table, parsed and
checked.

Like the target trial's protocol (registry/trial_protocol.py) it lives at the package root:
the study holds it and the analysis stage reads the study, so the analysis stage cannot
define it without an import cycle.

`multiple_imputation` (the default): every incomplete covariate of the adjusted models is
imputed `imputations` times by chained equations (registry/analysis/imputation/), every
adjusted estimate is fitted on each completed dataset and pooled by Rubin's rules, and the
complete-case estimate stays beside it as `<model>_complete_case`. `complete_case`: the
adjusted models use the patients with every covariate, as before.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

Method = Literal["multiple_imputation", "complete_case"]
SECTION = "missing_data"
METHODS: tuple[Method, ...] = ("multiple_imputation", "complete_case")


@dataclass(frozen=True)
class MissingData:
    """The `[missing_data]` settings, with their defaults."""

    method: Method = "multiple_imputation"
    imputations: int = 20  # completed datasets (m); Rubin's rules need at least 2
    iterations: int = 10  # cycles of the chained equations per imputation
    seed: int = 20260101  # imputation m draws from numpy's default_rng([seed, m])
    donors: int = 5  # predictive mean matching: candidates a donor is drawn from
    # the covariates that may be imputed; None: every covariate of the adjusted models
    variables: tuple[str, ...] | None = None


def _whole(key: str, value: Any, low: int, high: int) -> list[str]:
    if type(value) is int and low <= value <= high:
        return []
    return [f"{SECTION}.{key} must be a whole number from {low} to {high}, got {value!r}"]


def missing_data_problems(data: Any, covariates: tuple[str, ...]) -> list[str]:
    """Every problem of a `[missing_data]` table (empty when valid), each naming its key;
    `covariates` are the study's, which `variables` must be drawn from."""
    if not isinstance(data, dict):
        return [f"{SECTION} must be a table ([{SECTION}]), got {data!r}"]
    known = {f.name for f in fields(MissingData)}
    found = [f"{SECTION}: unknown key '{k}'" for k in sorted(set(data) - known)]
    if "method" in data and data["method"] not in METHODS:
        found.append(f"{SECTION}.method must be 'multiple_imputation' or 'complete_case', "
                     f"got {data['method']!r}")  # fmt: skip
    for key, low, high in (("imputations", 2, 500), ("iterations", 1, 200),
                           ("seed", 0, 2**63 - 1), ("donors", 1, 50)):  # fmt: skip
        if key in data:
            found += _whole(key, data[key], low, high)
    if "variables" in data:
        value = data["variables"]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            found.append(f"{SECTION}.variables must be a list of covariate names, got {value!r}")
        else:
            found += [
                f"{SECTION}.variables: '{v}' is not a covariate of the study "
                f"(covariates: {', '.join(covariates) or 'none'})"
                for v in value
                if v not in covariates
            ]
    return found


def parse_missing_data(data: dict[str, Any]) -> MissingData:
    """A MissingData from a `[missing_data]` table already checked by missing_data_problems."""
    values: dict[str, Any] = dict(data)
    if "variables" in values:
        values["variables"] = tuple(values["variables"])
    return MissingData(**values)
