"""Large synthetic cohorts written one part at a time, so synth's memory is that of one part.

Up to PARTS_ABOVE patients a cohort is drawn in one piece (as it always was). Above, it is
drawn in parts of PART_PATIENTS: part k with its own seed (SeedSequence([seed, k]); part 0
with `seed` itself) and its patient ids shifted past the earlier parts', each part appended
to the same contract files. Every patient is drawn from the same model either way; only the
random streams differ, so the same seed still gives the same files.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import polars as pl
import pyarrow.parquet as pq

PART_PATIENTS = 1_000_000
PARTS_ABOVE = 2_000_000  # at 1,000,000 patients one piece peaks at about 1.7 GiB


def part_seed(seed: int, part: int) -> int:
    """The seed of part `part` of a cohort drawn with `seed`."""
    return seed if part == 0 else int(np.random.SeedSequence([seed, part]).generate_state(1)[0])


def part_sizes(patients: int) -> Iterator[tuple[int, int]]:
    """(first patient's offset, patients) of each part."""
    for start in range(0, patients, PART_PATIENTS):
        yield start, min(PART_PATIENTS, patients - start)


def shift_ids(frame: pl.DataFrame, offset: int) -> pl.DataFrame:
    """Patient ids P0000001... moved up by `offset` (ids of another form, as a dirty row may
    carry, are left as they are)."""
    if offset == 0 or "patient_id" not in frame.columns:
        return frame
    pid = pl.col("patient_id")
    number = pid.str.slice(1).cast(pl.Int64, strict=False) + offset
    shifted = pl.lit("P") + number.cast(pl.String).str.zfill(7)
    return frame.with_columns(
        pl.when(pid.str.contains(r"^P\d+$")).then(shifted).otherwise(pid).alias("patient_id")
    )


class PartWriter:
    """Appends each part's tables to <name>.csv or <name>.parquet."""

    def __init__(self, out: Path, fmt: str, stack: ExitStack) -> None:
        self.out, self.fmt, self.stack = out, fmt, stack
        self.csv: dict[str, BinaryIO] = {}
        self.parquet: dict[str, pq.ParquetWriter] = {}

    def append(self, name: str, frame: pl.DataFrame) -> Path:
        """Write one part of a table after the earlier ones."""
        path = self.out / f"{name}.{self.fmt}"
        if self.fmt == "csv":
            first = name not in self.csv
            if first:
                self.csv[name] = self.stack.enter_context(path.open("wb"))
            frame.write_csv(
                self.csv[name], date_format="%Y-%m-%d", null_value="", include_header=first
            )
            return path
        table = frame.to_arrow()
        if name not in self.parquet:
            self.parquet[name] = self.stack.enter_context(pq.ParquetWriter(path, table.schema))
        self.parquet[name].write_table(table.cast(self.parquet[name].schema))
        return path


def write_in_parts(out: Path, *, patients: int, seed: int, fmt: str, **options: Any) -> list[Path]:
    """Draw and write a cohort part by part (see the module docstring); truth.json is part
    0's (its dirty and missing counts are part 0's), with the whole cohort's size and every
    part's seed."""
    from registry.synth import generate_cohort

    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be 'csv' or 'parquet', not {fmt!r}")
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    truth: dict[str, Any] = {}
    with ExitStack() as stack:
        writer = PartWriter(out, fmt, stack)
        for part, (start, size) in enumerate(part_sizes(patients)):
            cohort = generate_cohort(patients=size, seed=part_seed(seed, part), **options)
            for name, frame in cohort.tables.items():
                paths[name] = writer.append(name, shift_ids(frame, start))
            truth = truth or cohort.truth
            del cohort  # one part in memory at a time
    seeds = [part_seed(seed, k) for k in range(len(list(part_sizes(patients))))]
    truth.update(patients=patients, parts={"patients_per_part": PART_PATIENTS, "seeds": seeds})
    truth_path = out / "truth.json"
    truth_path.write_text(json.dumps(truth, indent=2) + "\n")
    return [*paths.values(), truth_path]
