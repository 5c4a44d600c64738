"""The synthetic cohort of versus_r.py: subjects with competing causes, and (start, stop] rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

SEED = 20260101
FOLLOW_UP = 3650  # administrative censoring, days
GRID = tuple(range(30, FOLLOW_UP, 30))  # days at which curves are compared
SUBJECT_COLUMNS = ("time", "event", "status", "arm", "x1", "x2", "x3", "x4")
COUNTING_COLUMNS = ("id", "start", "stop", "event", "trt", "x1", "x2", "x3")


@dataclass(frozen=True)
class Data:
    """One synthetic cohort: one row per subject, and (start, stop] rows for the Cox cases."""

    subjects: dict[str, np.ndarray]
    counting: dict[str, np.ndarray]

    def write(self, folder: Path) -> None:
        """subjects.csv and counting.csv, the columns in the order versus_r.R reads them."""
        pl.DataFrame({c: self.subjects[c] for c in SUBJECT_COLUMNS}).write_csv(
            folder / "subjects.csv"
        )
        pl.DataFrame({c: self.counting[c] for c in COUNTING_COLUMNS}).write_csv(
            folder / "counting.csv"
        )


def make_data(n: int, seed: int = SEED) -> Data:
    """n subjects: x1 normal (3 decimals), x2 binary, x3 age 50-90, x4 in {0, 1, 2}, arm 0/1.

    Two competing exponential causes and uniform censoring capped at FOLLOW_UP, rounded up
    to whole days (status 1 ~ 28%, 2 ~ 12%; event = status > 0). The (start, stop] rows come
    from a second outcome whose hazard drops (log HR -0.4) once a treatment starts, on a
    random day for 60% of subjects: one row before the start and one after it.
    """
    rng = np.random.default_rng(seed)
    x1 = np.round(rng.standard_normal(n), 3)
    x2 = rng.binomial(1, 0.4, n)
    x3 = rng.integers(50, 91, n)
    x4 = rng.integers(0, 3, n)
    arm = rng.binomial(1, 0.5, n)
    age = x3 - 70
    lp1 = 0.4 * x1 - 0.3 * x2 + 0.03 * age + 0.2 * x4 - 0.25 * arm
    lp2 = -0.2 * x1 + 0.2 * x2 + 0.06 * age - 0.1 * x4
    t1 = rng.exponential(1 / (1.5e-4 * np.exp(lp1)))
    t2 = rng.exponential(1 / (6.5e-5 * np.exp(lp2)))
    censor = np.minimum(rng.uniform(0, 1.5 * FOLLOW_UP, n), FOLLOW_UP)
    first = np.minimum(np.minimum(t1, t2), censor)
    status = np.where(first == censor, 0, np.where(t1 < t2, 1, 2))
    days = np.clip(np.ceil(first), 1, FOLLOW_UP).astype(np.int64)
    subjects = {
        "time": days, "event": (status > 0).astype(np.int64), "status": status,
        "arm": arm, "x1": x1, "x2": x2, "x3": x3, "x4": x4,
    }  # fmt: skip
    return Data(subjects, _counting(rng, n, x1, x2, x3, censor))


def _counting(
    rng: np.random.Generator,
    n: int,
    x1: np.ndarray,
    x2: np.ndarray,
    x3: np.ndarray,
    censor: np.ndarray,
) -> dict[str, np.ndarray]:
    """(start, stop] rows with a time-varying treatment: piecewise exponential event times."""
    never = 10 * FOLLOW_UP  # the untreated: a start day after every exit
    begin = np.where(rng.random(n) < 0.6, rng.integers(1, FOLLOW_UP // 2, n), never)
    rate = 2e-4 * np.exp(0.4 * x1 - 0.3 * x2 + 0.03 * (x3 - 70))
    draw = rng.exponential(1.0, n)
    before = draw < rate * begin  # the event comes before the treatment starts
    t = np.where(before, draw / rate, begin + (draw - rate * begin) / (rate * np.exp(-0.4)))
    stop = np.clip(np.ceil(np.minimum(t, censor)), 1, FOLLOW_UP).astype(np.int64)
    event = (t <= censor).astype(np.int64)
    s = begin < stop  # the treatment started during follow-up: two rows
    ids = np.arange(1, n + 1)
    return {
        "id": np.concatenate([ids, ids[s]]),
        "start": np.concatenate([np.zeros(n, np.int64), begin[s]]),
        "stop": np.concatenate([np.where(s, begin, stop), stop[s]]),
        "event": np.concatenate([np.where(s, 0, event), event[s]]),
        "trt": np.concatenate([np.zeros(n, np.int64), np.ones(int(s.sum()), np.int64)]),
        "x1": np.concatenate([x1, x1[s]]),
        "x2": np.concatenate([x2, x2[s]]),
        "x3": np.concatenate([x3, x3[s]]),
    }
