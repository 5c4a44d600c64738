"""What the per-stage timing scripts share: a stage run in a fresh interpreter, this process's
peak RSS and the results page (executor_timing, imputation_timing, target_trial_timing,
target_trial_versus_r; no heavy imports)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


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


def run_stage(stage: Callable[[], dict[str, Any]], out: Path) -> None:
    """Run one stage in this process; write its timings and peak RSS to `out` as JSON."""
    found = stage()
    found["peak_mib"] = peak_mib()
    out.write_text(json.dumps(found))


def in_fresh_process(
    script: str, stage: str, folder: Path, number: int, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """`script --worker stage folder number out` in a fresh interpreter (its peak RSS is its
    own; `env` added to the environment): the JSON its run_stage wrote, or exit saying why."""
    out = folder / f"{stage}.json"
    out.unlink(missing_ok=True)
    done = subprocess.run(
        [sys.executable, script, "--worker", stage, str(folder), str(number), str(out)],
        capture_output=True, text=True, env={**os.environ, **(env or {})},
    )  # fmt: skip
    if done.returncode or not out.exists():
        sys.exit(f"Error: the {stage} stage failed in {folder}:\n{done.stderr[-3000:]}")
    return dict(json.loads(out.read_text()))
