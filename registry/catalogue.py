"""The study's outcomes and models, each declared once: key, labels, what it selects or fits.

Everything else reads these tuples: the study file's allowed outcomes, the time-to-event
filters, the report's tables, captions and forest plot, the terminal's hazard-ratio table,
the exported data dictionary and the small-count protection. A new outcome is one `Outcome`
below; a new model is one `Model` below plus its estimator (in
registry/analysis/outcome.py) and its key in `result_types.CoxModels` and `FitName` (a
TypedDict and a Literal cannot be built from a tuple; tests/test_catalogue.py checks both
against this file).

Keys are results.json's keys (and the study file's `outcomes`): renaming one is a change of
the published format. Descriptions of models are the `label` a fit carries in results.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import polars as pl

from registry.result_types import FitName

Frame = Literal["outcomes", "counting", "landmark"]  # the time-to-event frame a model fits


@dataclass(frozen=True)
class Outcome:
    """A kind of new fracture: the fractures it counts are those at `min_distance` to
    `max_distance` (None: any farther) positions from the nearest reference level."""

    key: str
    label: str  # headings, captions, tables and figures of the report
    short_label: str  # lower case, plural, in running text: "new adjacent-level fractures"
    description: str  # the exported data dictionary and the README
    min_distance: int
    max_distance: int | None

    def selects(self) -> pl.Expr:
        """The filter of classified fractures (column `distance`) this outcome counts."""
        low = pl.col("distance") >= self.min_distance
        return low if self.max_distance is None else low & (pl.col("distance") <= self.max_distance)


@dataclass(frozen=True)
class Model:
    """A model with a hazard ratio of treatment, as the report and the terminal show it."""

    key: FitName
    label: str  # the hazard-ratio table
    forest_label: str  # the forest plot's rows (shorter where the plot is tight)
    frame: Frame  # which time-to-event frame it is fitted on
    description: str  # results.json's `label` of the fit
    primary: bool = False  # the primary relative measure: first, bold, marked '*'
    on_terminal: bool = False  # listed by `registry analyze` / `registry demo`


OUTCOMES: tuple[Outcome, ...] = (
    Outcome(
        "adjacent", "Adjacent-level fracture", "new adjacent-level fractures",
        "a new fracture one level from a reference level", 1, 1,
    ),
    Outcome(
        "remote", "Remote-level fracture", "new remote-level fractures",
        "a new fracture two or more levels from every reference level", 2, None,
    ),
    Outcome(
        "same_level", "Same-level fracture (recollapse)", "new same-level fractures",
        "a new fracture at a reference level (recollapse)", 0, 0,
    ),
    Outcome(
        "any_new", "Any new vertebral fracture", "new vertebral fractures",
        "any new vertebral fracture", 0, None,
    ),
)  # fmt: skip
PRIMARY_OUTCOME = "adjacent"  # the study's default primary outcome

_NAIVE = (
    "ever-treated from t0 (prone to immortal-time bias, and counts a procedure after the "
    "outcome as treatment)"
)
_TIME_VARYING = "time-varying treatment (primary)"
MODELS: tuple[Model, ...] = (
    Model(
        "time_varying_adjusted", "Time-varying, adjusted (primary)",
        "Time-varying, adjusted (primary)", "counting", _TIME_VARYING,
        primary=True, on_terminal=True,
    ),
    Model(
        "time_varying", "Time-varying, unadjusted", "Time-varying, unadjusted", "counting",
        _TIME_VARYING, on_terminal=True,
    ),
    Model(
        "landmark", "Landmark", "Landmark", "landmark",
        "landmark: treated by the landmark day, time from the landmark", on_terminal=True,
    ),
    Model(
        "iptw", "IPTW, landmark cohort", "IPTW, landmark cohort", "landmark",
        "IPTW (stabilised weights, landmark cohort, robust SE)", on_terminal=True,
    ),
    Model(
        "adjusted", "Ever-treated, adjusted (immortal-time bias)",
        "Ever-treated, adjusted (immortal-time)", "outcomes", _NAIVE,
    ),
    Model(
        "unadjusted", "Ever-treated, unadjusted (immortal-time bias)",
        "Ever-treated, unadjusted (immortal-time)", "outcomes", _NAIVE, on_terminal=True,
    ),
    Model(
        "fine_gray", "Fine–Gray subdistribution", "Fine–Gray subdistribution", "landmark",
        "Fine-Gray, landmark cohort",
    ),
    Model(
        "death_cause_specific", "Death, cause-specific (competing event)",
        "Death, cause-specific (competing)", "counting",
        "death as the event (cause-specific hazard of the competing event), time-varying",
    ),
)  # fmt: skip
PRIMARY_MODEL: FitName = next(m.key for m in MODELS if m.primary)


def outcome(key: str) -> Outcome:
    """The outcome of a key (KeyError naming the known ones if there is none)."""
    for found in OUTCOMES:
        if found.key == key:
            return found
    raise KeyError(f"unknown outcome '{key}' (known: {', '.join(outcome_keys())})")


def model(key: str) -> Model:
    """The model of a key (KeyError naming the known ones if there is none)."""
    for found in MODELS:
        if found.key == key:
            return found
    raise KeyError(f"unknown model '{key}' (known: {', '.join(m.key for m in MODELS)})")


def outcome_keys() -> tuple[str, ...]:
    """The outcomes' keys, in the catalogue's order."""
    return tuple(o.key for o in OUTCOMES)


def outcome_label(key: str) -> str:
    """The label of an outcome; an outcome the catalogue does not know (an older results.json)
    keeps its key (not escaped: escape where it is shown)."""
    return next((o.label for o in OUTCOMES if o.key == key), key)


def terminal_models() -> tuple[Model, ...]:
    """The models the terminal lists, primary first."""
    return tuple(m for m in MODELS if m.on_terminal)
