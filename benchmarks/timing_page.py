"""What the per-stage timing scripts share: this process's peak RSS and the results page
(imported by executor_timing, imputation_timing, target_trial_timing; no heavy imports)."""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path


def peak_mib() -> float:
    """This process's peak RSS in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def when_and_where() -> str:
    """The preamble's first line: date, CPUs and the load average now (at the end)."""
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"- {time.strftime('%Y-%m-%d %H:%M %Z')}; {os.cpu_count()} CPUs shared with other jobs "
        f"(load average at end {load})"
    )


def write_page(
    path: Path, title: str, preamble: list[str], header: list[str], rows: list[list[str]]
) -> None:
    """Write the Markdown results page (title, preamble, one table), print it and say where."""
    lines = [f"# {title}", "", *preamble, "", "| " + " | ".join(header) + " |",
             "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]  # fmt: skip
    page = "\n".join(lines) + "\n"
    path.write_text(page, encoding="utf-8")
    print(page)
    print(f"Wrote {path}")
