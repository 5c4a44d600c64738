"""A deliberately plain reference implementation of the time-to-event definitions.

Written from DESIGN.md ("Time-to-event definitions") without reading registry/cohort.py
or registry/time_to_event.py, so that tests can compare the two row for row. Everything
here is a loop over patients with `datetime.date` arithmetic on lists of dict rows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from registry.levels import POSITION

Row = dict[str, Any]

RULES = (
    "malignant or traumatic index fracture",
    "no osteoporotic index fracture",
    "procedure before t0",
    "no follow-up after t0",
)


def _by_patient(rows: list[Row]) -> dict[str, list[Row]]:
    grouped: dict[str, list[Row]] = {}
    for row in rows:
        grouped.setdefault(row["patient_id"], []).append(row)
    return grouped


def _days(later: dt.date, earlier: dt.date) -> int:
    return (later - earlier).days


def _end_of_follow_up(
    contacts: list[Row], other_dates: list[dt.date]
) -> tuple[dt.date | None, dt.date | None]:
    """(uncapped end of follow-up, death date or None).

    The earliest of the death date and the withdrawal/lost date; a death recorded after a
    withdrawal or loss is not a competing event (one on the same day is not "later").
    """
    deaths = [c["contact_on"] for c in contacts if c["status"] == "dead"]
    stops = [c["contact_on"] for c in contacts if c["status"] in ("withdrawn", "lost")]
    if deaths and (not stops or min(deaths) <= min(stops)):
        death = min(deaths)
        return death, death
    if stops:
        return min(stops), None
    every = [c["contact_on"] for c in contacts] + other_dates
    if every:
        return max(every), None
    return None, None


def _classify(position: int, references: list[str]) -> tuple[int, bool]:
    """(distance to the nearest reference level, sandwich flag: adjacent events only)."""
    ref_positions = [POSITION[r] for r in references]
    distance = min(abs(position - p) for p in ref_positions)
    between = (position - 1) in ref_positions and (position + 1) in ref_positions
    return distance, distance == 1 and between


def _in_outcome(outcome: str, distance: int) -> bool:
    if outcome == "adjacent":
        return distance == 1
    if outcome == "remote":
        return distance >= 2
    if outcome == "same_level":
        return distance == 0
    if outcome == "any_new":
        return True
    raise ValueError(f"unknown outcome {outcome!r}")


def _counting_rows(pid: str, outcome: str, d: int, s: int | None, event: int) -> list[Row]:
    if s is None or s >= d:
        return [_interval(pid, outcome, 0, d, 0, event)]
    if s == 0:
        return [_interval(pid, outcome, 0, d, 1, event)]
    return [_interval(pid, outcome, 0, s, 0, 0), _interval(pid, outcome, s, d, 1, event)]


def _interval(pid: str, outcome: str, start: int, stop: int, treated: int, event: int) -> Row:
    return {
        "patient_id": pid,
        "outcome": outcome,
        "start": start,
        "stop": stop,
        "treated": treated,
        "event": event,
    }


def reference_frames(tables: dict[str, list[Row]], study: Any) -> dict[str, list[Any]]:
    """Outcome, counting-process and landmark rows plus the attrition counts."""
    index = _by_patient(tables["index_fractures"])
    procedures = _by_patient(tables["procedures"])
    assessments = _by_patient(tables["assessments"])
    fractures = _by_patient(tables["fractures"])
    follow_up = _by_patient(tables["follow_up"])
    horizon = study.horizon_days
    landmark_days = study.landmark_days

    excluded = dict.fromkeys(RULES, 0)
    outcomes: list[Row] = []
    counting: list[Row] = []
    landmark: list[Row] = []

    for patient in sorted(tables["patients"], key=lambda p: p["patient_id"]):
        pid = patient["patient_id"]
        idx = index.get(pid, [])
        procs = procedures.get(pid, [])
        if any(r["etiology"] != "osteoporotic" for r in idx):
            excluded[RULES[0]] += 1
            continue
        osteoporotic = [r for r in idx if r["etiology"] == "osteoporotic"]
        if not osteoporotic:
            excluded[RULES[1]] += 1
            continue
        t0 = min(r["diagnosed_on"] for r in osteoporotic)
        if any(p["performed_on"] < t0 for p in procs):
            excluded[RULES[2]] += 1
            continue
        other_dates = (
            [a["assessed_on"] for a in assessments.get(pid, [])]
            + [p["performed_on"] for p in procs]
            + [f["detected_on"] for f in fractures.get(pid, [])]
        )
        raw_end, death = _end_of_follow_up(follow_up.get(pid, []), other_dates)
        if raw_end is None or _days(raw_end, t0) <= 0:
            excluded[RULES[3]] += 1
            continue
        cap = t0 + dt.timedelta(days=horizon)
        end = min(raw_end, cap)
        died = death is not None and end == death and death <= cap
        duration = _days(end, t0)
        # the index episode: osteoporotic levels diagnosed within 30 days of t0
        episode = [r for r in osteoporotic if _days(r["diagnosed_on"], t0) <= 30]
        index_levels = [r["level"] for r in idx]

        treat_dates = [
            p["performed_on"]
            for p in procs
            if p["procedure"] in study.treatment_procedures
            and p["level"] in index_levels
            and t0 <= p["performed_on"] < end
        ]
        treat_on = min(treat_dates) if treat_dates else None
        treat_day = None if treat_on is None else _days(treat_on, t0)

        new = []
        for f in fractures.get(pid, []):
            if t0 < f["detected_on"] <= end:
                position = POSITION[f["level"]]
                known = [r["level"] for r in episode if r["diagnosed_on"] <= f["detected_on"]]
                distance, sandwich = _classify(position, known)
                new.append((f["detected_on"], distance, position, f["level"], sandwich))

        covariates = {
            "age": t0.year - patient["birth_year"],
            "sex": patient["sex"],
            "bmd_t_score": patient["bmd_t_score"],
            "glucocorticoids": patient["glucocorticoids"],
            "prior_vertebral_fractures": patient["prior_vertebral_fractures"],
            "n_index_levels": len(idx),
            "site_id": patient["site_id"],
        }
        for outcome in study.outcomes:
            candidates = sorted(c for c in new if _in_outcome(outcome, c[1]))
            if candidates:
                detected_on, distance, _position, level, sandwich = candidates[0]
                event = 1
                d = _days(detected_on, t0)
                event_level, event_distance, event_sandwich = level, distance, sandwich
            else:
                event = 2 if died else 0
                d = duration
                event_level, event_distance, event_sandwich = None, None, None
            outcomes.append(
                {
                    "patient_id": pid,
                    "outcome": outcome,
                    "t0": t0,
                    "end_on": end,
                    "duration_days": d,
                    "event": event,
                    "treated": treat_on is not None,
                    "treat_day": treat_day,
                    **covariates,
                    "event_level": event_level,
                    "event_distance": event_distance,
                    "event_sandwich": event_sandwich,
                }
            )
            counting.extend(_counting_rows(pid, outcome, d, treat_day, event))
            if d > landmark_days:
                landmark.append(
                    {
                        "patient_id": pid,
                        "outcome": outcome,
                        "duration_days": d - landmark_days,
                        "event": event,
                        "treated": treat_day is not None and treat_day <= landmark_days,
                    }
                )

    return {
        "outcomes": outcomes,
        "counting": counting,
        "landmark": landmark,
        "attrition": [(rule, excluded[rule]) for rule in RULES],
    }
