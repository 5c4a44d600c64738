"""Our target-trial point estimate beside R's, at 10,000 and 100,000 patients (issue 16, item 4;
run by `make bench`).

For each size a tv-confounding cohort is synthesised (what `registry synth --scenario
tv-confounding` writes, loaded into an in-memory registry as target_trial_timing.py does) and
the adjacent outcome's frame and the assessments saved. Then, each in a fresh process:
  ours    emulate(..., Protocol(replicates=0)) --repeats times with OPENBLAS_NUM_THREADS=1:
          clones, initiation model, weights, curves, hazard ratio and diagnostics;
  export  the data the estimate is computed from (layout.prepare_outcome): the clone rows
          (patient, strategy, interval, start, stop, event), the initiation rows (patient,
          interval, initiated and the model's design columns), the interval grid and the
          model terms, as CSV, with our coefficients, weight sums and risks (engine.run);
  R       benchmarks/target_trial_versus_r.R on those files: glm(binomial) for the
          denominator and time-only numerator models (tests/reference/target_trial_functions.R,
          the calls the test references use), the stabilised censoring weights built from its
          own predictions, truncation, weighted survfit (Aalen-Johansen, death competing) and
          summary at the year days, and coxph for the cause-specific hazard ratio.
Both sides get the same clone and initiation rows; everything from the model fit onwards is
computed separately. The page compares the coefficients, weights, risks at each year, risk
differences and ratios and the log hazard ratio (max absolute difference) and times each side.
Writes benchmarks/results/target_trial_versus_r.md (and prints it). Skips (message, exit 0)
without Rscript or the survival package.

Usage: python benchmarks/target_trial_versus_r.py [--sizes 10000,100000] [--repeats 3]
       [--r-repeats 1]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from target_trial_timing import WRAPPER, build_inputs
from timing_page import in_fresh_process, run_stage
from versus_r_common import r_ready

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "target_trial_versus_r.md"
R_SCRIPT = HERE / "target_trial_versus_r.R"
TOLERANCE = 1e-8  # the agreement the issue asks for
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _inputs(folder: Path) -> tuple[Any, Any]:
    import polars as pl

    return (pl.read_parquet(folder / "outcome.parquet"),
            pl.read_parquet(folder / "assessments.parquet"))  # fmt: skip


def time_ours(folder: Path, repeats: int) -> dict[str, Any]:
    """Wall seconds of emulate without replicates, `repeats` times, and its numbers."""
    from registry.analysis.target_trial.estimate import emulate
    from registry.analysis.target_trial.protocol import Protocol

    outcome, assessments = _inputs(folder)
    seconds, cpu, block = [], [], None
    for _ in range(repeats):
        started, used = time.perf_counter(), time.process_time()
        block = emulate(outcome, assessments, Protocol(replicates=0), outcome="adjacent")
        seconds.append(time.perf_counter() - started)
        cpu.append(time.process_time() - used)
    assert block is not None and block["status"] == "estimated", block
    return {"seconds": seconds, "cpu": cpu, "numbers": block_numbers(dict(block))}


def block_numbers(block: dict[str, Any]) -> dict[str, float | None]:
    """The point estimates of an emulate block: risk:<strategy>:<year>, rd:<year>, rr:<year>,
    log_hr."""
    out: dict[str, float | None] = {}
    for strategy, part in block["strategies"].items():
        out.update({f"risk:{strategy}:{y}": v for y, v in part["risk"].items()})
    for name in ("risk_difference", "risk_ratio"):
        key = "rd" if name == "risk_difference" else "rr"
        out.update({f"{key}:{y}": v["estimate"] for y, v in block[name].items()})
    hr = block["hazard_ratio"]["estimate"]
    out["log_hr"] = math.log(hr) if hr else None
    return out


def export(folder: Path, repeats: int) -> dict[str, Any]:
    """Write what R needs (see the module docstring) and our fit's coefficients and weights;
    time engine.run on the prepared rows `repeats` times (R's estimate starts from them too)."""
    import numpy as np
    import polars as pl

    from registry.analysis.target_trial import NotEstimable
    from registry.analysis.target_trial.clones import STRATEGIES
    from registry.analysis.target_trial.engine import run
    from registry.analysis.target_trial.layout import prepare_outcome
    from registry.analysis.target_trial.protocol import Protocol

    outcome, assessments = _inputs(folder)
    protocol = Protocol(replicates=0)
    prep = prepare_outcome(outcome, assessments, grace_days=protocol.grace_days,
                           years=protocol.years)  # fmt: skip
    if isinstance(prep, NotEstimable):
        sys.exit(f"Error: the target trial is not estimable on this cohort: {prep.reason}")
    seconds, cpu = [], []
    for _ in range(max(repeats, 1)):
        started, used = time.perf_counter(), time.process_time()
        result = run(prep, protocol, np.ones(prep.n_patients), None)
        seconds.append(time.perf_counter() - started)
        cpu.append(time.process_time() - used)
    write_inputs(folder, prep)
    pl.DataFrame({"w": result.w}).write_csv(folder / "ours_weights.csv")  # R compares per row
    numbers: dict[str, float | None] = {}
    for model, names, coef in (("den", prep.den_names, result.coef_den),
                               ("num", prep.num_names, result.coef_num)):  # fmt: skip
        numbers.update({f"coef_{model}:{n}": float(c) for n, c in zip(names, coef, strict=True)})
    strategy = prep.row_strategy
    for code, name in enumerate(STRATEGIES):
        numbers[f"weight_mean:{name}"] = float(result.w[strategy == code].mean())
    numbers["weight_row_max_abs_diff"] = 0.0  # R's: max |ours - R's| over the clone rows
    numbers["weight_max"] = float(result.w.max())
    numbers["weight_cap"] = float(result.cap)
    for name in STRATEGIES:
        numbers.update({f"risk:{name}:{y}": v for y, v in result.risks[name].items()})
    numbers["log_hr"] = result.log_hr
    rows = {"clone": int(strategy.size), "initiation": int(prep.init_y.size),
            "patients": prep.n_patients}  # fmt: skip
    return {"seconds": seconds, "cpu": cpu, "numbers": numbers, "rows": rows}


def write_inputs(folder: Path, prep: Any) -> None:
    """clones.csv, initiation.csv, intervals.csv and terms.csv for the R script."""
    import numpy as np
    import polars as pl

    from registry.analysis.target_trial.clones import STRATEGIES

    pl.DataFrame({
        "patient": prep.row_patient, "strategy": np.array(STRATEGIES)[prep.row_strategy],
        "interval": prep.row_interval,
        "start": prep.interval_start[prep.row_interval].astype(np.int64),  # its interval
        "stop": prep.row_stop.astype(np.int64), "event": prep.row_event,
    }).write_csv(folder / "clones.csv")  # fmt: skip
    columns = {"patient": prep.init_patient, "interval": prep.init_interval,
               "initiated": prep.init_y.astype(np.int8)}  # fmt: skip
    # the numerator design is kept per interval with a start (the rows are those intervals')
    x_num = prep.interval_x_num[np.searchsorted(prep.model_intervals, prep.init_interval)]
    for x, names in ((prep.init_x, prep.den_names), (x_num, prep.num_names)):
        columns.update({name: x[:, k] for k, name in enumerate(names) if k})
    pl.DataFrame(columns).write_csv(folder / "initiation.csv")
    pl.DataFrame({
        "interval": np.arange(prep.n_intervals), "start": prep.interval_start,
        "stop": prep.interval_stop, "in_grace": prep.interval_in_grace.astype(np.int8),
    }).write_csv(folder / "intervals.csv")  # fmt: skip
    terms = [("den", t) for t in prep.den_names[1:]] + [("num", t) for t in prep.num_names[1:]]
    pl.DataFrame(terms, schema=["model", "term"], orient="row").write_csv(folder / "terms.csv")


STAGES = {"inputs": build_inputs, "ours": time_ours, "export": export}


def worker(stage: str, folder: Path, number: int, out: Path) -> None:
    """Run one stage in this process and write its timings and peak RSS as JSON."""
    run_stage(lambda: STAGES[stage](folder, number), out)  # type: ignore[operator]


def measure(stage: str, folder: Path, number: int) -> dict[str, Any]:
    """One stage in a fresh interpreter with one BLAS thread (its peak RSS is its own)."""
    return in_fresh_process(__file__, stage, folder, number, ONE_THREAD)


def run_r(folder: Path, repeats: int, percentile: float) -> dict[str, Any]:
    """The R script on the exported files, in a wrapper whose only child it is (peak RSS)."""
    argv = ["Rscript", str(R_SCRIPT), str(folder), str(repeats), repr(percentile)]
    done = subprocess.run([sys.executable, "-c", WRAPPER, *argv], capture_output=True,
                          text=True, env={**os.environ, **ONE_THREAD})  # fmt: skip
    lines = done.stdout.strip().splitlines()
    found = json.loads(lines[-1]) if lines else {}
    if found.get("returncode") != 0 or not (folder / "r_numbers.csv").exists():
        sys.exit(f"Error: {R_SCRIPT.name} failed on {folder} (run it by hand: "
                 f"Rscript {' '.join(argv[1:])}):\n{done.stderr[-2000:]}")  # fmt: skip
    return {"peak_mib": found["maxrss"] / 1024, "wall": found["seconds"],
            "numbers": read_r_numbers(folder / "r_numbers.csv"),
            "steps": read_r_steps(folder / "r_seconds.csv")}  # fmt: skip


def read_r_numbers(path: Path) -> dict[str, float | None]:
    """name,value lines (value empty: NA) as a dict."""
    out: dict[str, float | None] = {}
    for line in path.read_text().splitlines()[1:]:
        name, value = line.rsplit(",", 1)
        out[name] = float(value) if value not in ("", "NA") else None
    return out


def read_r_steps(path: Path) -> dict[str, dict[str, list[float]]]:
    """step,seconds,cpu lines (several per step when repeated): per step, the elapsed and
    the CPU seconds."""
    steps: dict[str, dict[str, list[float]]] = {}
    for line in path.read_text().splitlines()[1:]:
        step, seconds, cpu = line.split(",")
        found = steps.setdefault(step, {"seconds": [], "cpu": []})
        found["seconds"].append(float(seconds))
        found["cpu"].append(float(cpu))
    return steps


def with_contrasts(numbers: dict[str, float | None], years: list[str]) -> dict[str, float | None]:
    """numbers plus rd:<year> and rr:<year> from the risks, as estimate.py forms them."""
    out = dict(numbers)
    for y in years:
        t, n = numbers.get(f"risk:treat:{y}"), numbers.get(f"risk:no_treat:{y}")
        out[f"rd:{y}"] = t - n if t is not None and n is not None else None
        out[f"rr:{y}"] = t / n if t is not None and n is not None and n > 0 else None
    return out


GROUPS = {
    "coef_den": "denominator model coefficients (glm)",
    "coef_num": "numerator (time-only) model coefficients (glm)",
    "weight": "weights: mean per strategy, maximum, cap; per row (max abs diff)",
    "risk": "risks per strategy at 1, 2, 5 years (survfit)",
    "rd": "risk differences at 1, 2, 5 years",
    "rr": "risk ratios at 1, 2, 5 years",
    "log_hr": "log hazard ratio (coxph, Efron)",
}


def agreement(ours: dict[str, float | None], r: dict[str, float | None]) -> list[dict[str, Any]]:
    """Per group of quantities: how many, the max absolute (and relative) difference, where."""
    out = []
    for prefix, label in GROUPS.items():
        names = sorted(k for k in set(ours) | set(r) if k.split(":")[0].startswith(prefix))
        worst, where, rel, missing = 0.0, "", 0.0, []
        for name in names:
            a, b = ours.get(name), r.get(name)
            if a is None or b is None:
                if a is not None or b is not None:
                    missing.append(name)
                continue
            diff = abs(a - b) if math.isfinite(a) and math.isfinite(b) else float(a != b)
            if diff >= worst:
                worst, where = diff, name
            if not name.endswith("_diff"):  # R's own difference: nothing to divide by
                rel = max(rel, diff / abs(b) if b else diff)
        out.append({"group": label, "n": len(names), "max_abs": worst, "max_rel": rel,
                    "where": where, "missing": missing})  # fmt: skip
    return out


def spread(seconds: list[float]) -> list[str]:
    """median, min, max."""
    return [f"{statistics.median(seconds):.3f}", f"{min(seconds):.3f}", f"{max(seconds):.3f}"]


def table_row(size: int, case: str, seconds: list[float], peak: float | None, rows: str,
              note: str, cpu: list[float] | None = None) -> list[str]:  # fmt: skip
    """size | case | median s | min s | max s | peak RSS MiB | rows | notes (with the median
    CPU seconds, which the shared machine's load disturbs less than the wall time)."""
    mib = f"{peak:,.0f}" if peak is not None else ""
    used = f"CPU {statistics.median(cpu):.3f} s; " if cpu else ""
    return [f"{size:,}", case, *spread(seconds), mib, rows, f"n={len(seconds)}; {used}{note}"]


def r_rows(size: int, r: dict[str, Any], rows: str) -> list[list[str]]:
    """R's read, estimate and per-step timings."""
    steps = r["steps"]
    read = steps["read"]
    out = [table_row(size, "R: read the CSV files (read.csv)", read["seconds"], None, rows, "",
                     read["cpu"])]  # fmt: skip
    out.append(table_row(size, "R: point estimate (glm x2, weights, survfit, coxph)",
                         steps["estimate"]["seconds"], r["peak_mib"], rows,
                         f"peak RSS of the whole Rscript run; wall {r['wall']:.1f} s incl. "
                         "start-up and reading", steps["estimate"]["cpu"]))  # fmt: skip
    for step in ("glm", "weights", "survfit", "coxph"):
        found = steps[step]
        out.append(table_row(size, f"R: {step}", found["seconds"], None, rows,
                             "part of the above", found["cpu"]))  # fmt: skip
    return out


def markdown(rows: list[list[str]], agree: dict[int, list[dict[str, Any]]],
             preamble: list[str]) -> str:  # fmt: skip
    """The results page: the timing table, then one agreement table per size."""
    header = ["size", "case", "median s", "min s", "max s", "peak RSS MiB", "rows", "notes"]
    lines = ["# Target-trial point estimate: ours beside R (issue 16, item 4)", "", *preamble,
             "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]  # fmt: skip
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    for size, groups in agree.items():
        lines += ["", f"## Agreement at {size:,} patients (ours minus R)", "",
                  "| quantities | n | max abs difference | max rel difference | where | "
                  f"within {TOLERANCE:g} |", "|---|---|---|---|---|---|"]  # fmt: skip
        for g in groups:
            ok = "yes" if g["max_abs"] <= TOLERANCE and not g["missing"] else "**no**"
            where = g["where"] + (f"; only one side: {', '.join(g['missing'])}"
                                  if g["missing"] else "")  # fmt: skip
            lines.append(f"| {g['group']} | {g['n']} | {g['max_abs']:.2e} | {g['max_rel']:.2e} "
                         f"| {where} | {ok} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeats", type=int, default=3, help="Runs of ours per size.")
    parser.add_argument("--r-repeats", type=int, default=1, help="Runs of R's estimate per size.")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def compare_size(
    size: int, args: argparse.Namespace, scratch: Path = HERE
) -> tuple[list[list[str]], list[Any]]:
    """Inputs, ours, export and R at one size (files in a folder under `scratch`, removed
    afterwards): the table rows and the agreement."""
    from registry.analysis.target_trial.protocol import Protocol

    protocol = Protocol(replicates=0)
    years = [str(y) for y in protocol.years]
    with tempfile.TemporaryDirectory(prefix=f"ttr{size}-", dir=scratch) as tmp:
        folder = Path(tmp)
        inputs = measure("inputs", folder, size)
        ours = measure("ours", folder, args.repeats)
        exported = measure("export", folder, args.repeats)
        r = run_r(folder, args.r_repeats, protocol.truncation_percentile)
    n = exported["rows"]
    rows = f"{n['clone']:,} clone / {n['initiation']:,} initiation"
    note = (f"{n['patients']:,} eligible patients; default Protocol, 0 replicates, "
            "OPENBLAS_NUM_THREADS=1")  # fmt: skip
    first = table_row(size, "inputs (synth, registry, frames)", inputs["seconds"],
                      inputs["peak_mib"], f"{inputs['rows']:,} patients", "")  # fmt: skip
    mine_row = table_row(size, "ours: point estimate (emulate, 0 replicates)", ours["seconds"],
                         ours["peak_mib"], rows, note, ours["cpu"])  # fmt: skip
    from_rows = table_row(size, "ours: from the rows (engine.run: glm x2, weights, curves, HR)",
                          exported["seconds"], None, rows, "part of the above; like R's "
                          "estimate below, which starts from the same rows",
                          exported["cpu"])  # fmt: skip
    table = [first, mine_row, from_rows, *r_rows(size, r, rows)]
    mine = {**exported["numbers"], **with_contrasts(ours["numbers"], years)}
    for key, value in ours["numbers"].items():  # emulate and engine.run: one computation
        other = exported["numbers"].get(key, value)  # (emulate's log HR went through exp)
        assert value is other is None or math.isclose(value, other, rel_tol=1e-12), (key, value)
    return table, agreement(mine, with_contrasts(r["numbers"], years))


def main(argv: list[str] | None = None) -> None:
    """Both sides at every size; write the page."""
    args = parse_args(argv)
    if args.worker:
        stage, folder, number, out = args.worker
        worker(stage, Path(folder), int(number), Path(out))
        return
    why = r_ready()
    if why:
        print(f"Skipped the target trial beside R: {why} (make r-packages installs it).")
        return
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    rows: list[list[str]] = []
    agree: dict[int, list[dict[str, Any]]] = {}
    for size in sizes:
        table, agree[size] = compare_size(size, args)
        rows += table
        print("\n".join(" | ".join(r) for r in table), flush=True)
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    preamble = [
        f"- {time.strftime('%Y-%m-%d %H:%M %Z')}; {os.cpu_count()} CPUs shared with other "
        f"jobs (load average at end {load}); R {r_version()}",
        "- Scenario tv-confounding, adjacent outcome, default Protocol (grace 56 days, "
        "stabilised weights, truncation at the 100th percentile, i.e. none), 0 replicates; "
        "each side in a fresh process with one BLAS thread; both get the same clone and "
        "initiation rows, R fits and weighs on its own (benchmarks/target_trial_versus_r.R)",
    ]
    page = markdown(rows, agree, preamble)
    args.results.write_text(page, encoding="utf-8")
    print(page)
    print(f"Wrote {args.results}")


def r_version() -> str:
    """R and survival versions, as Rscript reports them."""
    expr = 'cat(R.version$major, ".", R.version$minor, ", survival ", ' \
           'format(packageVersion("survival")), sep = "")'  # fmt: skip
    done = subprocess.run(["Rscript", "-e", expr], capture_output=True, text=True)
    return done.stdout.strip() or "(version unknown)"


if __name__ == "__main__":
    main()
