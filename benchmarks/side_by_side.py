"""Side-by-side comparisons run by run.py at each size, on that size's own registry.

* pandas: benchmarks/tte_pandas.py times a plain pandas build of the time-to-event frames
  against the package's (Polars) on the same registry, and checks they agree.
* R: `registry tte --csv` exports the pipeline's frames; benchmarks/versus_r.py --tte fits
  our estimators and R's survival / cmprsk on those same CSV files and checks the numbers.

Each script times itself in process (medians of its repeats) and fails on a mismatch.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class SideBySide:
    """What one size's comparisons found."""

    patients: int
    pandas: dict[str, Any]
    versus_r: str  # markdown section written by versus_r.py


def run_checked(argv: list[str], cwd: Path) -> None:
    """Run a step; stop the benchmark with its output if it fails."""
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"Error: {' '.join(argv)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")


def compare(root: Path, db: Path, registry: str, patients: int, repeats: int) -> SideBySide:
    """Run both comparisons on the registry `db` of one size (files go under root)."""
    print(f"  {patients:>10,} pandas baseline and R side by side ...", flush=True)
    pandas_json = root / "pandas.json"
    run_checked(
        [
            sys.executable,
            str(HERE / "tte_pandas.py"),
            "--db",
            str(db),
            "--repeats",
            str(repeats),
            "--json",
            str(pandas_json),
        ],
        root,
    )
    export = root / "tte_csv"
    run_checked([registry, "tte", "--db", str(db), "--out", str(export), "--csv"], root)
    section = root / "versus_r.md"
    run_checked(
        [
            sys.executable,
            str(HERE / "versus_r.py"),
            "--tte",
            str(export),
            "--label",
            f"{patients:,} patients",
            "--out-md",
            str(section),
            "--repeats",
            str(repeats),
        ],
        root,
    )
    return SideBySide(
        patients=patients,
        pandas=json.loads(pandas_json.read_text(encoding="utf-8")),
        versus_r=section.read_text(encoding="utf-8"),
    )


PANDAS_HEADER = [
    "patients",
    "rows (outcome + counting)",
    "pandas read s",
    "pandas build s",
    "ours read s",
    "ours build s",
    "pandas / ours (build)",
    "mismatching rows",
    "n",
]


def pandas_table(found: list[SideBySide]) -> list[str]:
    """Markdown table of the pandas baseline against the package, one row per size."""
    lines = ["| " + " | ".join(PANDAS_HEADER) + " |", "|" + "---|" * len(PANDAS_HEADER)]
    for item in found:
        p = item.pandas
        ratio = p["pandas_build_s"] / p["ours_build_s"] if p["ours_build_s"] else float("nan")
        cells = [
            f"{item.patients:,}",
            f"{p['rows_outcome'] + p['rows_counting']:,}",
            f"{p['pandas_read_s']:.2f}",
            f"{p['pandas_build_s']:.2f}",
            f"{p['ours_read_s']:.2f}",
            f"{p['ours_build_s']:.2f}",
            f"{ratio:.1f}",
            f"{p['mismatches']:,}",
            str(p["repeats"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown(found: list[SideBySide]) -> list[str]:
    """The side-by-side part of the results page."""
    if not found:
        return []
    lines = [
        "## Time-to-event build: plain pandas versus the package",
        "",
        "Both read the same registry (DuckDB -> frames), apply the cohort rules and build, "
        "for the study's four outcomes, the per-patient outcome frame, the (start, stop] "
        "counting-process frame and the landmark frame, with attrition and data-policy "
        "counts; the script checks that every frame is identical (`benchmarks/tte_pandas.py`). "
        "Rows counts the outcome and counting-process frames. Ours reads a per-patient "
        "summary DuckDB aggregates, pandas aggregates in its build: compare the totals.",
        "",
        *pandas_table(found),
        "",
        "## Our estimators versus R on the pipeline's own time-to-event frames",
        "",
        "`registry tte --csv` exports the frames; `benchmarks/versus_r.py --tte` fits ours "
        "in process and R's (`Rscript`) on the same CSV files, timing only the fits.",
        "",
    ]
    for item in found:
        lines += [item.versus_r.strip(), ""]
    return lines
