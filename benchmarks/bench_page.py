"""The results page of run.py: the stage table, the targets and the side-by-side parts."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import side_by_side
from rich.console import Console
from rich.table import Table
from side_by_side import SideBySide

MIB = 1024 * 1024


@dataclass
class Result:
    """Every repeat of one case at one size."""

    size: int
    case: str
    seconds: list[float] = field(default_factory=list)
    peak_mib: list[float] = field(default_factory=list)
    rows: int | None = None
    notes: str = ""


HEADER = ["size (patients)", "case", "median s", "min s", "max s", "peak RSS MiB", "rows", "notes"]


def table_rows(results: list[Result]) -> list[list[str]]:
    """One row of text cells per (size, case)."""
    return [
        [
            f"{r.size:,}",
            r.case,
            f"{statistics.median(r.seconds):.2f}",
            f"{min(r.seconds):.2f}",
            f"{max(r.seconds):.2f}",
            f"{max(r.peak_mib):,.0f}",
            "" if r.rows is None else f"{r.rows:,}",
            f"n={len(r.seconds)}; {r.notes}",
        ]
        for r in results
    ]


TARGETS = {  # case: (seconds, peak MiB) the issue sets at 1,000,000 patients
    "refresh (whole nightly run, empty registry)": (300.0, 8 * 1000**3 / MIB),
}


def targets(results: list[Result]) -> list[str]:
    """Markdown table of the stage targets at 1,000,000 patients, met or not."""
    rows = [r for r in results if r.size == 1_000_000 and r.case in TARGETS]
    if not rows:
        return []
    lines = [
        "## Targets at 1,000,000 patients",
        "",
        "| case | target | measured | met |",
        "|---|---|---|---|",
    ]
    for r in rows:
        seconds, mib = TARGETS[r.case]
        wall, peak = statistics.median(r.seconds), max(r.peak_mib)
        met = "yes" if wall <= seconds and peak <= mib else "**no**"
        lines.append(
            f"| {r.case} | under {seconds:.0f} s and {mib * MIB / 1000**3:.0f} GB | "
            f"{wall:.1f} s, {peak / 1024:.2f} GiB | {met} |"
        )
    return [*lines, ""]


def to_markdown(
    preamble: list[str], results: list[Result], note: str, found: list[SideBySide], *, as_of: str
) -> str:
    """The results page: machine, method note, the stage table, targets, comparisons."""
    lines = ["# Benchmarks", "", *preamble, f"- {note}", ""]
    lines += ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(results)]
    method = (
        "Wall time and peak RSS of each command as a subprocess, measured by a fresh "
        "`python -c` wrapper (`resource.getrusage(RUSAGE_CHILDREN)` after its only child). "
        "Time is the median over the repeats, peak RSS the largest; n is the number of "
        f"repeats. `ingest` loads the whole synthetic folder into a fresh database, `--as-of "
        f"{as_of}`; `report` runs the analysis again before writing the HTML; `refresh` is "
        "the whole nightly run (migrate, ingest the inbox, checks, frames, models, report, "
        "publish) on a fresh copy of the same export into an empty registry."
    )
    lines += ["", method, "", *targets(results), *side_by_side.markdown(found)]
    return "\n".join(lines) + "\n"


def print_table(rows: list[list[str]]) -> None:
    """The results on the terminal as a rich table."""
    table = Table(*HEADER, title="registry benchmarks")
    for row in rows:
        table.add_row(*row)
    console = Console()
    console.width = max(console.width, 130)  # keep rows on one line when piped
    console.print(table)
