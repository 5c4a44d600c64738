"""The pandas baseline's time-to-event frames: outcomes, (start, stop] rows and landmark.

What registry.time_to_event.build_time_to_event does, written with pandas alone, and
build_pandas, the whole `registry tte` build from the raw tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tte_pandas_cohort import (
    add_treatment,
    eligibility,
    follow_up_end,
    patient_facts,
    policy_counts,
)

from registry.levels import POSITION
from registry.study import Study
from registry.time_to_event import BASELINE

OUTCOME_MASKS: dict[str, Callable[[pd.DataFrame], pd.Series]] = {
    "adjacent": lambda f: f["distance"] == 1,
    "remote": lambda f: f["distance"] >= 2,
    "same_level": lambda f: f["distance"] == 0,
    "any_new": lambda f: pd.Series(True, index=f.index),
}
OUTCOME_COLUMNS = [
    "patient_id",
    "outcome",
    "t0",
    "end_on",
    "exit_on",
    "duration_days",
    "event",
    "end_reason",
    "treated",
    "treat_on",
    "treat_day",
    *BASELINE,
    "event_level",
    "event_distance",
    "event_sandwich",
]


@dataclass
class PandasFrames:
    """The pandas build's outputs, named like the package's export files."""

    outcomes: pd.DataFrame
    counting: pd.DataFrame
    landmark: pd.DataFrame
    attrition: pd.DataFrame
    policy: pd.DataFrame


def classify(fractures: pd.DataFrame, t: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """New fractures in (t0, end]: distance to the nearest reference level diagnosed by then
    (osteoporotic index levels within 30 days of t0), sandwich flag (adjacent only)."""
    new = fractures[
        (fractures["detected_on"] > fractures["t0"])
        & (fractures["detected_on"] <= fractures["end_on"])
    ]
    new = new.assign(position=new["level"].map(POSITION))
    idx = t["index_fractures"]
    refs = idx.loc[idx["etiology"] == "osteoporotic", ["patient_id", "diagnosed_on"]].assign(
        ref=idx["level"].map(POSITION)
    )
    paired = new.merge(refs, on="patient_id")
    in_episode = paired["diagnosed_on"] <= paired["t0"] + pd.Timedelta(days=30)
    paired = paired[in_episode & (paired["diagnosed_on"] <= paired["detected_on"])]
    gap = paired["position"] - paired["ref"]
    paired = paired.assign(dist=gap.abs(), above=gap == 1, below=gap == -1)
    out = (
        paired.groupby(["patient_id", "level", "detected_on"], sort=False)
        .agg(
            position=("position", "first"),
            distance=("dist", "min"),
            above=("above", "any"),
            below=("below", "any"),
        )
        .reset_index()
    )
    out["sandwich"] = out["above"] & out["below"] & (out["distance"] == 1)
    return out.sort_values(["patient_id", "detected_on", "distance", "position"])


def outcome_frame(eligible: pd.DataFrame, classified: pd.DataFrame, study: Study) -> pd.DataFrame:
    """One row per patient per outcome, outcomes in study order, patients sorted."""
    patients = eligible.reset_index()
    parts = []
    for name in study.outcomes:
        first = classified[OUTCOME_MASKS[name](classified)].drop_duplicates("patient_id")
        first = first[["patient_id", "detected_on", "level", "distance", "sandwich"]].rename(
            columns={
                "detected_on": "event_on",
                "level": "event_level",
                "distance": "event_distance",
                "sandwich": "event_sandwich",
            }
        )
        part = patients.merge(first, on="patient_id", how="left")
        part["outcome"] = name
        parts.append(part)
    rows = pd.concat(parts, ignore_index=True)
    rows["outcome"] = pd.Categorical(rows["outcome"], categories=list(study.outcomes))
    rows["exit_on"] = rows["event_on"].fillna(rows["end_on"])
    rows["duration_days"] = (rows["exit_on"] - rows["t0"]).dt.days
    rows["event"] = np.select([rows["event_on"].notna(), rows["died"]], [1, 2], 0).astype("int8")
    return rows[OUTCOME_COLUMNS]


def counting_frame(outcomes: pd.DataFrame) -> pd.DataFrame:
    """(start, stop] rows: untreated until the day of treatment, treated after; event last."""
    switch, stop = outcomes["treat_day"], outcomes["duration_days"]
    treated_now = switch.notna() & (switch < stop)
    split = treated_now & (switch > 0)
    keep = ["patient_id", "outcome", *BASELINE]
    after = outcomes[keep].assign(
        start=switch.where(split, 0).astype("int64"),
        stop=stop.astype("int64"),
        treated=treated_now.astype("int8"),
        event=outcomes["event"],
    )
    before = outcomes.loc[split, keep].assign(
        start=0, stop=switch[split].astype("int64"), treated=np.int8(0), event=np.int8(0)
    )
    # the split rows share their outcome row's index: a stable sort puts them before
    return pd.concat([before, after]).sort_index(kind="stable").reset_index(drop=True)


def landmark_frame(outcomes: pd.DataFrame, landmark_days: int) -> pd.DataFrame:
    """Event-free and under follow-up after the landmark; arm = treated by then."""
    at_risk = outcomes[outcomes["duration_days"] > landmark_days]
    return at_risk.assign(
        duration_days=at_risk["duration_days"] - landmark_days,
        treated=at_risk["treat_day"].notna() & (at_risk["treat_day"] <= landmark_days),
    )[["patient_id", "outcome", "duration_days", "event", "treated", *BASELINE]]


def build_pandas(t: dict[str, pd.DataFrame], study: Study) -> PandasFrames:
    """Every frame of `registry tte`, from the raw tables, in pandas."""
    facts = follow_up_end(patient_facts(t), study.horizon_days)
    facts = add_treatment(facts, t, study)
    imputed = study.missing_data.method == "multiple_imputation"
    eligible, attrition = eligibility(facts, imputed=imputed)
    fractures = t["fractures"].merge(
        eligible[["t0", "end_on"]], left_on="patient_id", right_index=True
    )
    outcomes = outcome_frame(eligible, classify(fractures, t), study)
    return PandasFrames(
        outcomes=outcomes,
        counting=counting_frame(outcomes),
        landmark=landmark_frame(outcomes, study.landmark_days),
        attrition=attrition,
        policy=policy_counts(t, facts, eligible, fractures),
    )
