"""Time our survival estimators against R's (survival, cmprsk) on the same data, side by side.

Usage: python benchmarks/versus_r.py [--sizes 100000,1000000] [--crr-sizes 10000,20000]
       python benchmarks/versus_r.py --tte DIR --label TEXT --out-md PATH [--repeats N]

For every size one synthetic cohort is drawn here with a fixed seed (integer days, so many
tied times; about 40% events, split between a cause of interest and a competing cause) and
written as CSV to a scratch folder under benchmarks/out/, deleted afterwards. Our estimators
are timed in this process on arrays already in memory; then benchmarks/versus_r.R reads the
same CSV files and times R's fits with system.time. Both sides time only the fit (no reading,
no extraction of results), run one after the other (never at the same time), and take the
median of 3 repeats (1 at sizes above 100,000, and for crr above 10,000 rows: one R fit at
20,000 rows takes about 3 minutes). Python parses the CSV lines R prints and
checks that both sides estimated the same numbers (max relative difference), so the timings
compare like with like. Results go to benchmarks/versus_r.md and to the terminal.

Cases: Cox with fixed covariates (4, Efron ties) vs coxph; Cox on (start, stop] rows with a
time-varying treatment vs coxph(Surv(start, stop, event) ~ ...); the same with the robust
(cluster = id) variance; Kaplan-Meier vs survfit; log-rank vs survdiff; cumulative incidence
of both causes vs cmprsk::cuminc; Fine-Gray vs cmprsk::crr. crr's time grows with the square
of the number of rows, so R runs it only at --crr-sizes; ours runs at those and at --sizes.

Skips (message, exit 0) when Rscript or the survival / cmprsk packages are missing.

--tte DIR: instead of synthetic data, the pipeline's own frames, as `registry tte --out DIR
--csv` wrote them (outcomes.csv, counting.csv, data_dictionary.csv), on the rows of the
study's primary outcome (--study, default reports/adjacent_refracture.toml; it must be the
study the export was built with). Cases, each built as registry/analysis builds it: `cox`,
the adjusted ever-treated Cox model (treated plus the study covariates, sex as male, on the
has_covariates rows, event 1 = the outcome, death censored, Efron) vs coxph; `cox_tv`, the
adjusted time-varying model on the (start, stop] rows vs coxph(Surv(start, stop, event));
`cox_cluster`, the same with the robust variance clustered on patient_id; `km`, Kaplan-Meier
per arm vs survfit(~ arm) (log-log CI); `cuminc`, cumulative incidence of the outcome and of
death (competing) per arm vs cmprsk::cuminc per arm. benchmarks/versus_r_tte.R reads the same
CSV files, typed by the data dictionary. Repeats: --repeats (default 3), 1 for a case above
2,000,000 rows. Writes one markdown section (heading, machine, table, method) to --out-md
and prints it. Tolerance: the run exits non-zero after writing the section when any case's
max relative difference exceeds 1e-6 (TOLERANCE), except cases listed in KNOWN_DIFFERENCES
(definitional differences, reported but not held to it; none is known: at 100,000 and
1,000,000 patients every case agrees to 2e-10 or better). Without Rscript or its packages
the section holds only our times ("R not installed") and the exit status is 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy
from run import cpus, load_average, memory_gib

from registry.analysis.common import arm_masks, complete, covariate_matrix
from registry.models import competing, cox, km
from registry.study import DEFAULT_STUDY, Study, load_study

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
R_SCRIPT = HERE / "versus_r.R"
SEED = 20260101
FOLLOW_UP = 3650  # administrative censoring, days
GRID = tuple(range(30, FOLLOW_UP, 30))  # days at which curves are compared
R_TIMEOUT = 3600  # seconds for one Rscript run (all cases of one size)

CASES = {  # name: (ours, R's, what is compared)
    "cox": ("`cox.fit_cox`", "`coxph` (Efron)", "coef, se"),
    "cox_tv": ("`cox.fit_cox(start=)`", "`coxph(Surv(start, stop, event))`", "coef, se"),
    "cox_cluster": ("`cox.fit_cox(cluster=id)`", "`coxph(..., cluster = id)`", "coef, robust se"),
    "km": ("`km.fit_km`", "`survfit` (log-log CI)", "S, CI at 121 days"),
    "logrank": ("`km.logrank`", "`survdiff`", "chi-square"),
    "cuminc": ("`competing.cumulative_incidence` x2", "`cmprsk::cuminc`", "CIF, var at 121 days"),
    "crr": ("`competing.fit_fine_gray`", "`cmprsk::crr`", "coef, se"),
}
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


Values = dict[str, np.ndarray]


def _cox_values(fit: cox.CoxFit) -> Values:
    return {"coef": fit.coef, "se": fit.se}


def ours(case: str, data: Data) -> tuple[Callable[[], Any], Callable[[Any], Values], int]:
    """The fit to time, how to read the compared numbers from its result, and the rows."""
    sub, cp = data.subjects, data.counting
    x = np.column_stack([sub[c] for c in ("x1", "x2", "x3", "x4")]).astype(float)
    x_tv = np.column_stack([cp[c] for c in ("trt", "x1", "x2", "x3")]).astype(float)
    n, n_cp = sub["time"].size, cp["stop"].size
    grid = np.array(GRID, dtype=float)
    if case == "cox":
        return lambda: cox.fit_cox(sub["time"], sub["event"], x), _cox_values, n
    if case == "cox_tv":
        return (
            lambda: cox.fit_cox(cp["stop"], cp["event"], x_tv, start=cp["start"]),
            _cox_values,
            n_cp,
        )
    if case == "cox_cluster":
        fit = lambda: cox.fit_cox(  # noqa: E731
            cp["stop"], cp["event"], x_tv, start=cp["start"], cluster=cp["id"]
        )
        return fit, _cox_values, n_cp
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


def run_r(folder: Path, repeats: int, cases: Sequence[str]) -> tuple[dict, dict, dict]:
    """Run versus_r.R; return its info lines, timings per case and values per case."""
    argv = ["Rscript", str(R_SCRIPT), str(folder), str(repeats), ",".join(cases)]
    argv.append(",".join(map(str, GRID)))
    return run_rscript(argv)


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


def seconds_text(values: list[float]) -> str:
    """Median seconds, with more decimals for short times; a dash if not run."""
    if not values:
        return "—"
    m = statistics.median(values)
    return f"{m:.3f}" if m < 1 else f"{m:.2f}"


HEADER = ["case", "ours", "R", "rows", "ours s", "R s", "ours / R", "max rel diff", "n", "compared"]


def table_rows(
    results: list[Result], cases: dict[str, tuple[str, str, str]] = CASES
) -> list[list[str]]:
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


# --- --tte: the pipeline's own time-to-event frames -------------------------------------

R_TTE_SCRIPT = HERE / "versus_r_tte.R"
TOLERANCE = 1e-6  # largest max rel diff accepted in --tte mode (see KNOWN_DIFFERENCES)
SINGLE_REPEAT_ROWS = 2_000_000  # above this many rows a case is timed once
TTE_CASES = {  # name: (ours, R's, what is compared); the grid size is filled in
    "cox": ("`cox.fit_cox`", "`coxph` (Efron)", "coef, se"),
    "cox_tv": ("`cox.fit_cox(start=)`", "`coxph(Surv(start, stop, event))`", "coef, se"),
    "cox_cluster": (
        "`cox.fit_cox(start=, cluster=patient_id)`",
        "`coxph(..., cluster = patient_id)`",
        "coef, robust se",
    ),
    "km": ("`km.fit_km` per arm", "`survfit(~ arm)` (log-log CI)", "S, CI per arm at {} days"),
    "cuminc": (
        "`competing.cumulative_incidence` x4",
        "`cmprsk::cuminc` per arm",
        "CIF, var of outcome and death per arm at {} days",
    ),
}
# Cases whose estimates differ from R's by definition (case: why); their max rel diff is
# reported but not held to TOLERANCE. None known: Cox to ~1e-10 at 1,000,000 patients
# (summation order over a million rows), curves to ~1e-14.
KNOWN_DIFFERENCES: dict[str, str] = {}


@dataclass(frozen=True)
class Export:
    """The primary outcome's rows of an export written by `registry tte --csv`."""

    folder: Path
    study: Study
    outcomes: pl.DataFrame  # one row per patient
    counting: pl.DataFrame  # (start, stop] rows, treatment time-varying

    @property
    def patients(self) -> int:
        return self.outcomes.height

    @property
    def grid(self) -> tuple[int, ...]:
        """Days at which curves are compared: every 30th day up to the horizon."""
        return tuple(range(30, self.study.horizon_days + 1, 30))


def read_export(folder: Path, study: Study) -> Export:
    """outcomes.csv and counting.csv (the files R reads), typed by data_dictionary.csv."""
    dictionary = pl.read_csv(folder / "data_dictionary.csv")
    frames = {}
    for name in ("outcomes", "counting"):
        types = dictionary.filter(pl.col("file") == name).select("column", "type").rows()
        kinds = {column: getattr(pl, kind, None) for column, kind in types}  # e.g. pl.Int8
        schema: dict[str, pl.DataType] = {  # a type not named plainly is inferred
            c: k() for c, k in kinds.items() if isinstance(k, type) and issubclass(k, pl.DataType)
        }
        frame = pl.read_csv(folder / f"{name}.csv", schema_overrides=schema)
        frames[name] = frame.filter(pl.col("outcome") == study.primary_outcome)
        if frames[name].is_empty():
            sys.exit(f"Error: {folder / name}.csv has no rows of outcome {study.primary_outcome}")
    return Export(folder, study, frames["outcomes"], frames["counting"])


def ours_tte(case: str, export: Export) -> tuple[Callable[[], Any], Callable[[Any], Values], int]:
    """As `ours`, on the export: the fit to time, how to read its numbers, and the rows.

    Cox cases take the study's adjusted design (analysis/common.py covariate_matrix on the
    has_covariates rows, as analysis/hazards.py fits it); curves take every row, per arm.
    """
    study, out = export.study, export.outcomes
    if case in ("cox_tv", "cox_cluster"):
        rows = complete(export.counting, adjusted=True)
        x, names = covariate_matrix(rows, study, adjusted=True)
        stop, start = (rows.get_column(c).to_numpy().astype(float) for c in ("stop", "start"))
        event = rows.get_column("event").to_numpy() == 1
        ids = rows.get_column("patient_id").to_numpy() if case == "cox_cluster" else None
        return (
            lambda: cox.fit_cox(stop, event, x, start=start, cluster=ids, names=tuple(names)),
            _cox_values,
            rows.height,
        )
    if case == "cox":
        rows = complete(out, adjusted=True)
        x, names = covariate_matrix(rows, study, adjusted=True)
        time_ = rows.get_column("duration_days").to_numpy().astype(float)
        event = rows.get_column("event").to_numpy() == 1
        return lambda: cox.fit_cox(time_, event, x, names=tuple(names)), _cox_values, rows.height
    duration = out.get_column("duration_days").to_numpy().astype(float)
    status = out.get_column("event").to_numpy().astype(int)
    arms = arm_masks(out)
    if case == "km":

        def km_fits() -> dict[str, km.KaplanMeier]:
            return {arm: km.fit_km(duration[m], status[m] == 1) for arm, m in arms.items()}

        def km_values(fits: dict[str, km.KaplanMeier]) -> Values:
            found = {}
            for arm, f in fits.items():
                for key, curve in zip(("surv", "lower", "upper"), f.at(export.grid), strict=True):
                    found[f"{key}_{arm}"] = curve
            return found

        return km_fits, km_values, out.height
    if case == "cuminc":

        def cif_fits() -> dict[tuple[str, int], competing.CumulativeIncidence]:
            return {
                (arm, k): competing.cumulative_incidence(duration[m], status[m], cause=k)
                for arm, m in arms.items()
                for k in (1, 2)
            }

        def cif_values(fits: dict[tuple[str, int], competing.CumulativeIncidence]) -> Values:
            found = {}
            for (arm, k), f in fits.items():
                found[f"est{k}_{arm}"] = f.at(export.grid)
                found[f"var{k}_{arm}"] = f.variance_at(export.grid)
            return found

        return cif_fits, cif_values, out.height
    raise ValueError(f"unknown case {case}")


def tte_repeats(rows: int, requested: int | None) -> int:
    """--repeats (default 3), but 1 above SINGLE_REPEAT_ROWS rows."""
    return 1 if rows > SINGLE_REPEAT_ROWS else (requested or 3)


def run_tte(args: argparse.Namespace) -> None:
    """Time ours then R's on the export's frames, write the section, fail on disagreement."""
    study = load_study(args.study)
    export = read_export(args.tte, study)
    why = r_ready()
    r_info: dict[str, str] = {}
    preamble = machine(r_info)
    results, mine, repeats = [], {}, {}
    for case in TTE_CASES:
        fit, read, rows = ours_tte(case, export)
        repeats[case] = tte_repeats(rows, args.repeats)
        seconds, fitted = time_ours(fit, repeats[case])
        mine[case] = read(fitted)
        del fit, fitted
        results.append(Result(export.patients, case, rows, seconds))
        print(
            f"  {case:<12} {rows:>10,} rows, ours {statistics.median(seconds):8.3f} s", flush=True
        )
    failures = []
    if why is None:
        argv = ["Rscript", str(R_TTE_SCRIPT), str(args.tte)]
        argv += [",".join(f"{c}:{n}" for c, n in repeats.items())]
        argv += [",".join(map(str, export.grid)), study.primary_outcome, ",".join(study.covariates)]
        info, r_times, r_values = run_rscript(argv)
        r_info.update(info)
        preamble[-1:] = machine(r_info)[-1:]
        for result in results:
            result.r = r_times[result.case]
            result.rel_diff = max_rel_diff(mine[result.case], r_values[result.case])
            if result.case in KNOWN_DIFFERENCES:
                result.note = f"{KNOWN_DIFFERENCES[result.case]} (not held to {TOLERANCE:g})"
            elif not result.rel_diff <= TOLERANCE:
                failures.append(f"{result.case}: max rel diff {result.rel_diff:.1e}")
            print(
                f"  {result.case:<12} R    {statistics.median(result.r):8.3f} s, "
                f"max rel diff {result.rel_diff:.1e}",
                flush=True,
            )
    else:
        print(f"R not run ({why}): only our times.", flush=True)
        preamble[-1] = f"- R not installed ({why}): only our times"
        for result in results:
            result.note = "R not installed: only our times"
    preamble.append(f"- Load average at end {load_average()}")
    text = tte_markdown(export, args.label, preamble, results, args.note, r_ran=why is None)
    args.out_md.parent.mkdir(parents=True, exist_ok=True)
    args.out_md.write_text(text, encoding="utf-8")
    print(text)
    print(f"Wrote {args.out_md}")
    if failures:
        sys.exit(
            f"Error: ours and R disagree beyond {TOLERANCE:g} relative: " + "; ".join(failures)
        )


def tte_markdown(
    export: Export, label: str, preamble: list[str], results: list[Result], note: str,
    *, r_ran: bool,
) -> str:  # fmt: skip
    """The section to embed: heading, machine, frames, the table and how it was made."""
    grid = len(export.grid)
    cases = {k: (o, r, compared.format(grid)) for k, (o, r, compared) in TTE_CASES.items()}
    study = export.study
    heading = f"## Ours versus R on the pipeline's time-to-event frames: {label}"
    if not r_ran:
        heading += " (R not installed: only our times)"
    frames = (
        f"- Frames: `{export.folder}` (`registry tte --csv`), outcome `{study.primary_outcome}`: "
        f"{export.patients:,} patients, {export.counting.height:,} (start, stop] rows; "
        f"covariates {', '.join(study.covariates)}"
    )
    lines = [heading, "", *preamble, frames, f"- {note}", ""]
    lines += ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(results, cases)]
    method = (
        "Generated by `benchmarks/versus_r.py --tte` (R side: `benchmarks/versus_r_tte.R`). "
        "Both sides read the export's outcomes.csv and counting.csv, typed by its "
        f"data_dictionary.csv, and keep the rows of the primary outcome (`{study.primary_outcome}`"
        f"); event 1 is the outcome, 2 death first. `cox` is the adjusted ever-treated model "
        "and `cox_tv` the adjusted time-varying one (the primary), as registry/analysis/hazards.py "
        "fits them: rows with every covariate, treated then the covariates, sex as male = 1, "
        "booleans as 0/1, event 1 versus the rest, Efron ties; `cox_cluster` adds the robust "
        "variance clustered on patient_id. `km` (outcome, death censored) and `cuminc` "
        "(outcome and death as competing causes) take every row, one curve per arm "
        "(ever treated or not), as registry/analysis/curves.py. Only the fit is timed, in wall "
        "seconds: ours with `time.perf_counter` in process, R's with `system.time` (elapsed), "
        "never both at once; medians of n repeats (1 above "
        f"{SINGLE_REPEAT_ROWS:,} rows). ours / R below 1 means ours is faster. Max rel diff is "
        "the largest |ours - R| / |R| over the compared numbers (curves at every 30th day up "
        f"to the horizon, {study.horizon_days} days); the run fails above {TOLERANCE:g}."
    )
    if not r_ran:
        method += " R was not run here: the R columns are empty."
    return "\n".join([*lines, "", method, ""])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="Rows, comma-separated.")
    parser.add_argument(
        "--crr-sizes", default="10000,20000", help="Rows at which R's crr also runs."
    )
    parser.add_argument(
        "--repeats",
        type=int,
        help="Repeats per size (default 3 up to 100,000 rows, else 1; crr: up to 10,000). "
        "With --tte: per case (default 3; 1 above 2,000,000 rows).",
    )
    parser.add_argument("--results", type=Path, default=HERE / "versus_r.md", help="Markdown out.")
    parser.add_argument(
        "--note",
        default="Shared 2-core machine: other jobs may have run at the same time.",
        help="Free text recorded above the table.",
    )
    tte = parser.add_argument_group(
        "--tte mode", "compare on the frames `registry tte --csv` wrote, instead of synthetic ones"
    )
    tte.add_argument("--tte", type=Path, metavar="DIR", help="Folder of `registry tte --csv`.")
    tte.add_argument("--label", help='Heading of the section, e.g. "100,000 patients".')
    tte.add_argument("--out-md", type=Path, metavar="PATH", help="Markdown section to write.")
    tte.add_argument(
        "--study", type=Path, default=DEFAULT_STUDY, help="The study the export was built with."
    )
    args = parser.parse_args(argv)
    if args.tte is not None and (args.label is None or args.out_md is None):
        parser.error("--tte needs --label and --out-md")
    if args.tte is None and (args.label or args.out_md):
        parser.error("--label and --out-md go with --tte")
    if args.tte is not None and args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def r_ready() -> str | None:
    """Why R cannot run the benchmark (no Rscript, a package missing), or None."""
    if shutil.which("Rscript") is None:
        return "Rscript not found"
    check = 'quit(status = !all(sapply(c("survival", "cmprsk"), requireNamespace, quietly = TRUE)))'
    if subprocess.run(["Rscript", "-e", check], capture_output=True).returncode:
        return "R package survival or cmprsk not installed"
    return None


def default_repeats(size: int, *, crr_only: bool) -> int:
    """3 repeats up to 100,000 rows (up to 10,000 for R's quadratic crr), else 1."""
    return 3 if size <= (10_000 if crr_only else 100_000) else 1


def sizes_of(text: str) -> list[int]:
    """Comma-separated sizes as integers (underscores allowed)."""
    return [int(s.replace("_", "")) for s in text.split(",") if s.strip()]


def main(argv: Sequence[str] | None = None) -> None:
    """Run every case at every size and write benchmarks/versus_r.md."""
    args = parse_args(argv)
    if args.tte is not None:
        run_tte(args)
        return
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
    text = to_markdown(preamble, table_rows(results), args.note, crr_sizes)
    args.results.write_text(text, encoding="utf-8")
    print(text)
    print(f"Wrote {args.results}")


if __name__ == "__main__":
    main()
