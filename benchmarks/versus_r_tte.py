"""The --tte mode of versus_r.py: ours versus R on the frames `registry tte --csv` wrote."""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
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

from registry.analysis.common import arm_masks, complete, covariate_matrix
from registry.models import competing, cox, km
from registry.study import Study, load_study

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
            cox_values,
            rows.height,
        )
    if case == "cox":
        rows = complete(out, adjusted=True)
        x, names = covariate_matrix(rows, study, adjusted=True)
        time_ = rows.get_column("duration_days").to_numpy().astype(float)
        event = rows.get_column("event").to_numpy() == 1
        return lambda: cox.fit_cox(time_, event, x, names=tuple(names)), cox_values, rows.height
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
