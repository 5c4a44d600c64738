"""The synthetic mode of versus_r.py: every case at every size, ours then R's, one page."""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from run import load_average
from versus_r_common import (
    HEADER,
    HERE,
    Result,
    Values,
    cox_values,
    machine,
    max_rel_diff,
    r_ready,
    run_rscript,
    table_rows,
    time_ours,
)
from versus_r_data import FOLLOW_UP, GRID, SEED, Data, make_data

from registry.models import competing, cox, km

OUT = HERE / "out"
R_SCRIPT = HERE / "versus_r.R"

CASES = {  # name: (ours, R's, what is compared)
    "cox": ("`cox.fit_cox`", "`coxph` (Efron)", "coef, se"),
    "cox_tv": ("`cox.fit_cox(start=)`", "`coxph(Surv(start, stop, event))`", "coef, se"),
    "cox_cluster": ("`cox.fit_cox(cluster=id)`", "`coxph(..., cluster = id)`", "coef, robust se"),
    "km": ("`km.fit_km`", "`survfit` (log-log CI)", "S, CI at 121 days"),
    "logrank": ("`km.logrank`", "`survdiff`", "chi-square"),
    "cuminc": ("`competing.cumulative_incidence` x2", "`cmprsk::cuminc`", "CIF, var at 121 days"),
    "crr": ("`competing.fit_fine_gray`", "`cmprsk::crr`", "coef, se"),
}


def ours(case: str, data: Data) -> tuple[Callable[[], Any], Callable[[Any], Values], int]:
    """The fit to time, how to read the compared numbers from its result, and the rows."""
    sub, cp = data.subjects, data.counting
    x = np.column_stack([sub[c] for c in ("x1", "x2", "x3", "x4")]).astype(float)
    x_tv = np.column_stack([cp[c] for c in ("trt", "x1", "x2", "x3")]).astype(float)
    n, n_cp = sub["time"].size, cp["stop"].size
    grid = np.array(GRID, dtype=float)
    if case == "cox":
        return lambda: cox.fit_cox(sub["time"], sub["event"], x), cox_values, n
    if case == "cox_tv":
        return (
            lambda: cox.fit_cox(cp["stop"], cp["event"], x_tv, start=cp["start"]),
            cox_values,
            n_cp,
        )
    if case == "cox_cluster":
        fit = lambda: cox.fit_cox(  # noqa: E731
            cp["stop"], cp["event"], x_tv, start=cp["start"], cluster=cp["id"]
        )
        return fit, cox_values, n_cp
    if case == "km":
        at = lambda f: dict(zip(("surv", "lower", "upper"), f.at(grid), strict=True))  # noqa: E731
        return lambda: km.fit_km(sub["time"], sub["event"]), at, n
    if case == "logrank":
        chisq = lambda f: {"chisq": np.array([f.statistic])}  # noqa: E731
        return lambda: km.logrank(sub["time"], sub["event"], sub["arm"]), chisq, n
    if case == "cuminc":

        def both() -> list[competing.CumulativeIncidence]:
            return [
                competing.cumulative_incidence(sub["time"], sub["status"], cause=k) for k in (1, 2)
            ]

        def curves(fits: list[competing.CumulativeIncidence]) -> Values:
            out = {}
            for k, f in enumerate(fits, start=1):
                out[f"est{k}"], out[f"var{k}"] = f.at(GRID), f.variance_at(GRID)
            return out

        return both, curves, n
    if case == "crr":
        fg = lambda f: {"coef": f.coef, "se": f.se}  # noqa: E731
        return lambda: competing.fit_fine_gray(sub["time"], sub["status"], x, cause=1), fg, n
    raise ValueError(f"unknown case {case}")


def run_r(folder: Path, repeats: int, cases: Sequence[str]) -> tuple[dict, dict, dict]:
    """Run versus_r.R; return its info lines, timings per case and values per case."""
    argv = ["Rscript", str(R_SCRIPT), str(folder), str(repeats), ",".join(cases)]
    argv.append(",".join(map(str, GRID)))
    return run_rscript(argv)


def run_size(
    size: int, cases: Sequence[str], r_cases: Sequence[str], repeats: int, r_info: dict
) -> list[Result]:
    """Draw and write one cohort, time our fits, then R's, and compare the estimates."""
    OUT.mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"versus-r-{size}-", dir=OUT))
    try:
        data = make_data(size)
        data.write(folder)
        results, mine = [], {}
        for case in cases:
            fit, read, rows = ours(case, data)
            seconds, fitted = time_ours(fit, repeats)
            mine[case] = read(fitted)
            results.append(Result(size, case, rows, seconds))
            print(f"  {size:>10,} {case:<12} ours {statistics.median(seconds):8.3f} s", flush=True)
        info, r_times, r_values = run_r(folder, repeats, r_cases) if r_cases else ({}, {}, {})
        r_info.update(info)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    for result in results:
        if result.case not in r_cases:
            result.note = "R not run: crr is quadratic in n"
            continue
        result.r = r_times[result.case]
        result.rel_diff = max_rel_diff(mine[result.case], r_values[result.case])
        if r_values[result.case].get("converged") == [0.0]:
            result.note = "crr did not converge"
        print(
            f"  {size:>10,} {result.case:<12} R    {statistics.median(result.r):8.3f} s, "
            f"max rel diff {result.rel_diff:.1e}",
            flush=True,
        )
    return results


def to_markdown(preamble: list[str], rows: list[list[str]], note: str, crr_sizes: list[int]) -> str:
    """The results page: machine, method note and the table."""
    lines = ["# Our estimators versus R", "", *preamble, f"- {note}", ""]
    lines += ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    method = (
        "Generated by `benchmarks/versus_r.py` (R side: `benchmarks/versus_r.R`). Each size is "
        f"one synthetic cohort drawn in Python (seed {SEED}): whole days up to {FOLLOW_UP}, so "
        "heavily tied times; about 40% events (cause 1 ~28%, competing cause 2 ~12%). Rows are "
        "subjects, except for `cox_tv` and `cox_cluster`, whose (start, stop] rows split the "
        "follow-up of the subjects whose treatment started before their exit. Both sides read "
        "the same CSV files and time only the fit, in wall seconds: ours with "
        "`time.perf_counter` in process, R's with `system.time` (elapsed), never both at once. "
        "Times are medians of n repeats; ours / R below 1 means ours is faster. Max rel diff is "
        "the largest |ours - R| / |R| over the compared numbers (curves at every 30th day). "
        "`cox*` use Efron ties; `cuminc` times ours for both causes, as cuminc estimates both. "
        f"R's `crr` runs only at {' and '.join(f'{s:,}' for s in crr_sizes)} rows, and once "
        "above 10,000: its time grows at least with the square of the rows (each Newton step "
        "sums, for every event, over all subjects), so 100,000 rows would take over an hour."
    )
    return "\n".join([*lines, "", method, ""])


def default_repeats(size: int, *, crr_only: bool) -> int:
    """3 repeats up to 100,000 rows (up to 10,000 for R's quadratic crr), else 1."""
    return 3 if size <= (10_000 if crr_only else 100_000) else 1


def sizes_of(text: str) -> list[int]:
    """Comma-separated sizes as integers (underscores allowed)."""
    return [int(s.replace("_", "")) for s in text.split(",") if s.strip()]


def run_synthetic(args: argparse.Namespace) -> None:
    """Run every case at every size and write the results page (skip without R)."""
    if (why := r_ready()) is not None:
        print(f"Skipping the comparison with R: {why}.")
        return
    sizes, crr_sizes = sizes_of(args.sizes), sizes_of(args.crr_sizes)
    r_info: dict[str, str] = {}
    preamble = machine(r_info)
    results: list[Result] = []
    for size in sorted(set(sizes) | set(crr_sizes)):
        cases = list(CASES) if size in sizes else ["crr"]
        repeats = args.repeats or default_repeats(size, crr_only=cases == ["crr"])
        r_cases = [c for c in cases if c != "crr" or size in crr_sizes]
        print(f"{size:,} rows, {repeats} repeat(s):", flush=True)
        results += run_size(size, cases, r_cases, repeats, r_info)
    preamble[-1:] = machine(r_info)[-1:]  # R's versions are known once R has run
    preamble.append(f"- Load average at end {load_average()}")
    text = to_markdown(preamble, table_rows(results, CASES), args.note, crr_sizes)
    args.results.write_text(text, encoding="utf-8")
    print(text)
    print(f"Wrote {args.results}")
