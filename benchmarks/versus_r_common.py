"""What both modes of versus_r.py share: timing ours, running R, comparing, the table.

The synthetic mode (versus_r_synthetic.py) and the --tte mode (versus_r_tte.py) time our fits
here, run their R script through run_rscript and parse the lines it prints, and lay out the
same markdown table.
"""

from __future__ import annotations

import datetime as dt
import gc
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy
from run import cpus, load_average, memory_gib

from registry.models import cox

HERE = Path(__file__).resolve().parent
R_TIMEOUT = 3600  # seconds for one Rscript run (all cases of one size)

Values = dict[str, np.ndarray]


def cox_values(fit: cox.CoxFit) -> Values:
    """The numbers compared for a Cox fit: coefficients and standard errors."""
    return {"coef": fit.coef, "se": fit.se}


@dataclass
class Result:
    """One case at one size: our timings and R's, and how far apart the estimates are."""

    size: int
    case: str
    rows: int = 0
    ours: list[float] = field(default_factory=list)
    r: list[float] = field(default_factory=list)
    rel_diff: float | None = None
    note: str = ""


def time_ours(fit: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    """Wall seconds of each repeat (after a garbage collection, as system.time) and a result."""
    seconds, result = [], None
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        result = fit()
        seconds.append(time.perf_counter() - start)
    return seconds, result


def run_rscript(argv: list[str]) -> tuple[dict, dict, dict]:
    """Run an R side (exit on failure); parse its info, time and value lines."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=R_TIMEOUT)
    if done.returncode:
        sys.exit(f"Error: {' '.join(argv)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    info: dict[str, str] = {}
    times: dict[str, list[float]] = {}
    values: dict[str, dict[str, list[float]]] = {}
    for line in done.stdout.splitlines():
        parts = line.strip().split(",")
        if parts[0] == "info" and len(parts) == 3:
            info[parts[1]] = parts[2]
        elif parts[0] == "time" and len(parts) == 4:
            times.setdefault(parts[1], []).append(float(parts[3]))
        elif parts[0] == "value" and len(parts) == 4:
            key = parts[2].rsplit("_", 1)[0]
            values.setdefault(parts[1], {}).setdefault(key, []).append(float(parts[3]))
    return info, times, values


def max_rel_diff(ours_values: Values, r_values: dict[str, list[float]]) -> float:
    """Largest |ours - R| / |R| over every compared number (absolute where R is 0)."""
    worst = 0.0
    for key, theirs in r_values.items():
        if key == "converged":
            continue
        a, b = np.asarray(ours_values[key], dtype=float), np.asarray(theirs, dtype=float)
        if a.shape != b.shape or np.any(np.isnan(a) != np.isnan(b)):
            return float("inf")
        ok = ~np.isnan(b)
        scale = np.where(b[ok] != 0, np.abs(b[ok]), 1.0)
        worst = max(worst, float(np.max(np.abs(a[ok] - b[ok]) / scale, initial=0.0)))
    return worst


def seconds_text(values: list[float]) -> str:
    """Median seconds, with more decimals for short times; a dash if not run."""
    if not values:
        return "—"
    m = statistics.median(values)
    return f"{m:.3f}" if m < 1 else f"{m:.2f}"


HEADER = ["case", "ours", "R", "rows", "ours s", "R s", "ours / R", "max rel diff", "n", "compared"]


def table_rows(results: list[Result], cases: dict[str, tuple[str, str, str]]) -> list[list[str]]:
    """One row of text cells per (case, size), cases in `cases` order, sizes ascending."""
    order = list(cases)
    rows = []
    for r in sorted(results, key=lambda r: (order.index(r.case), r.size)):
        ours_name, r_name, compared = cases[r.case]
        ratio = statistics.median(r.ours) / statistics.median(r.r) if r.r else None
        rows.append(
            [
                r.case,
                ours_name,
                r_name,
                f"{r.rows:,}",
                seconds_text(r.ours),
                seconds_text(r.r),
                "—" if ratio is None else f"{ratio:.2g}",
                "—" if r.rel_diff is None else f"{r.rel_diff:.1e}",
                str(len(r.ours)),
                r.note or compared,
            ]
        )
    return rows


def machine(r_info: dict[str, str]) -> list[str]:
    """Lines describing when and where the benchmark ran."""
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    return [
        f"- Date: {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"- Machine: {platform.platform()}, {cpus()} CPUs, {memory_gib():.1f} GiB RAM; "
        f"load average at start {load_average()}",
        f"- Python {platform.python_version()}, numpy {np.__version__} "
        f"({blas.get('name', '?')} {blas.get('version', '')}), scipy {scipy.__version__}",
        f"- R {r_info.get('R', '?')}, survival {r_info.get('survival', '?')}, "
        f"cmprsk {r_info.get('cmprsk', '?')}, BLAS {r_info.get('BLAS', '?')}",
    ]


def r_ready() -> str | None:
    """Why R cannot run the benchmark (no Rscript, a package missing), or None."""
    if shutil.which("Rscript") is None:
        return "Rscript not found"
    check = 'quit(status = !all(sapply(c("survival", "cmprsk"), requireNamespace, quietly = TRUE)))'
    if subprocess.run(["Rscript", "-e", check], capture_output=True).returncode:
        return "R package survival or cmprsk not installed"
    return None
