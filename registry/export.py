"""Write the analysis frames as Parquet (and CSV) with a data dictionary, for R or Stata."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO

import polars as pl
import pyarrow.parquet as pq

from registry import catalogue
from registry.cohort import Cohort
from registry.time_to_event import TimeToEvent

COMMON = {
    "patient_id": "pseudonymous patient identifier",
    "outcome": " | ".join(catalogue.outcome_keys()),
    "age": "age at t0 in years (year of t0 minus birth_year)",
    "sex": "F | M",
    "bmd_t_score": "bone mineral density T-score",
    "glucocorticoids": "long-term glucocorticoid use (true/false)",
    "prior_vertebral_fractures": "number of vertebral fractures before the index fracture",
    "n_index_levels": "number of index-fracture levels (the reference levels)",
    "site_id": "recruiting site",
    "has_covariates": "true when every covariate of the study's adjusted models is present",
    "duration_days": "days from time zero to the event or the end of follow-up",
    "event": "0 censored, 1 the outcome, 2 death first (competing event)",
}
DICTIONARY: dict[str, dict[str, str]] = {
    "outcomes": COMMON
    | {
        "t0": "time zero: earliest diagnosis of an osteoporotic index fracture",
        "end_on": "end of follow-up: death, else withdrawal/loss, else last contact; "
        "capped at t0 + horizon",
        "exit_on": "date of the event, or end_on",
        "end_reason": "death | withdrawn | lost | last_contact | administrative (horizon)",
        "treated": "ever treated before the end of follow-up (prone to immortal-time bias)",
        "treat_on": "date of the first study procedure at an index level",
        "treat_day": "days from t0 to treatment",
        "event_level": "level of the first fracture of this outcome",
        "event_distance": "positions from the event level to the nearest reference level",
        "event_sandwich": "an adjacent event level between two reference levels",
    },
    "counting": COMMON
    | {
        "start": "interval start, days from t0 (exclusive)",
        "stop": "interval stop, days from t0 (inclusive); event only on the last interval",
        "treated": "1 from the day of treatment on (time-varying exposure), else 0",
    },
    "landmark": COMMON
    | {
        "duration_days": "days from the landmark to the event or the end of follow-up",
        "treated": "treated on or before the landmark day",
    },
    "attrition": {
        "step": "order of the eligibility rule",
        "rule": "eligibility rule",
        "excluded": "patients excluded by this rule",
        "remaining": "patients remaining after it",
        "remaining_treated": "of them ever treated",
        "remaining_conservative": "of them never treated",
        "applies_to": "all analyses, or adjusted models only",
    },
    "data_policy": {
        "rule": "a data problem the cohort stage resolves by a documented policy",
        "rows": "rows affected",
        "patients": "patients affected",
        "action": "what the cohort stage does with them",
    },
}


def analysis_frames(cohort: Cohort, tte: TimeToEvent) -> dict[str, pl.DataFrame]:
    """The frames users take to other tools, by file name."""
    return {
        "outcomes": tte.outcomes,
        "counting": tte.counting,
        "landmark": tte.landmark,
        "attrition": cohort.attrition,
        "data_policy": cohort.policy,
    }


def dictionary_frame(frames: dict[str, pl.DataFrame] | dict[str, pl.Schema]) -> pl.DataFrame:
    """One row per file and column: type and meaning (from the frames or their schemas)."""
    schemas = {k: v if isinstance(v, pl.Schema) else v.schema for k, v in frames.items()}
    rows = [
        (name, column, str(dtype), DICTIONARY[name].get(column, ""))
        for name, schema in schemas.items()
        for column, dtype in schema.items()
    ]
    return pl.DataFrame(rows, schema=["file", "column", "type", "description"], orient="row")


def write_frames(frames: dict[str, pl.DataFrame], out: Path, *, csv: bool = False) -> list[Path]:
    """Write every frame as Parquet (and CSV) plus data_dictionary.csv; return the paths."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, frame in frames.items():
        frame.write_parquet(out / f"{name}.parquet")
        written.append(out / f"{name}.parquet")
        if csv:
            frame.write_csv(out / f"{name}.csv")
            written.append(out / f"{name}.csv")
    dictionary_frame(frames).write_csv(out / "data_dictionary.csv")
    return [*written, out / "data_dictionary.csv"]


PER_OUTCOME = ("outcomes", "counting", "landmark")


def write_analysis(cohort: Cohort, tte: TimeToEvent, out: Path, *, csv: bool = False) -> list[Path]:
    """write_frames(analysis_frames(...)) with the same files, one outcome's rows at a time:
    each frame of every outcome is appended outcome by outcome (the order of its rows), so
    the export never holds a frame of every outcome."""
    out.mkdir(parents=True, exist_ok=True)
    schemas: dict[str, pl.Schema] = {}
    written: list[Path] = []
    with ExitStack() as stack:
        appenders = [_Appender(out, name, csv, stack) for name in PER_OUTCOME]
        for outcome in tte.names:
            for name, appender, frame in zip(PER_OUTCOME, appenders, tte.frames(outcome),
                                             strict=True):  # fmt: skip
                schemas.setdefault(name, frame.schema)
                appender.append(frame)
            del frame
        written += [path for appender in appenders for path in appender.paths]
    small = {"attrition": cohort.attrition, "data_policy": cohort.policy}
    written += write_frames(small, out, csv=csv)[:-1]
    dictionary_frame({**schemas, **{k: v.schema for k, v in small.items()}}).write_csv(
        out / "data_dictionary.csv"
    )
    return [*written, out / "data_dictionary.csv"]


class _Appender:
    """Appends frames to <name>.parquet (one row group each) and, with csv, <name>.csv."""

    def __init__(self, out: Path, name: str, csv: bool, stack: ExitStack) -> None:
        self.parquet_path, self.csv_path = out / f"{name}.parquet", out / f"{name}.csv"
        self.csv, self.stack = csv, stack
        self.writer: pq.ParquetWriter | None = None
        self.handle: BinaryIO | None = None

    @property
    def paths(self) -> list[Path]:
        """The files written, Parquet first."""
        return [self.parquet_path, *([self.csv_path] if self.csv else [])]

    def append(self, frame: pl.DataFrame) -> None:
        """Write the frame's rows after the earlier ones."""
        table = frame.to_arrow()
        if self.writer is None:
            writer = pq.ParquetWriter(self.parquet_path, table.schema, compression="zstd")
            self.writer = self.stack.enter_context(writer)
        self.writer.write_table(table.cast(self.writer.schema))
        if self.csv:
            first = self.handle is None
            if self.handle is None:
                self.handle = self.stack.enter_context(self.csv_path.open("wb"))
            frame.write_csv(self.handle, include_header=first)
