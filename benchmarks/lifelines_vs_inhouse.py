"""Time lifelines against the in-house engine (and both against R) on the pipeline's frames.

Usage: python benchmarks/lifelines_vs_inhouse.py --tte DIR --label TEXT --out-md PATH
           [--repeats 3] [--ctv-max-rows 150000] [--lifelines-skip cox_iptw] [--only CASES]
           [--adapter] [--no-r]

DIR is what `registry tte --out DIR --csv` wrote (outcomes, landmark, counting and the data
dictionary); the rows of the study's primary outcome are used (--study, default
reports/adjacent_refracture.toml). Every case builds its model as registry/analysis builds
it (analysis/common.py covariate_matrix, complete) and times, from the Polars frame, the whole
route of each engine: ours is `.to_numpy()` of the columns plus the fit; lifelines is
`df.select(cols).to_pandas()` plus the fit (what an adapter at the model boundary would
cost). Medians of --repeats runs (gc first), ours and lifelines in turn (the machine is
shared: both see the same load); a lifelines fit slower than 30 s is timed once.
Cases:

  km                  KaplanMeierFitter per arm      vs km.fit_km per arm
  cox_naive[_adj]     CoxPHFitter (Efron)            vs cox.fit_cox, ever-treated frame
  cox_landmark[_adj]  CoxPHFitter (Efron)            vs cox.fit_cox, landmark frame
  cox_iptw            CoxPHFitter(weights_col, robust=True) vs cox.fit_cox(weights, robust)
  cox_tv[_adj]        CoxTimeVaryingFitter           vs cox.fit_cox(start=), counting rows;
                      lifelines only up to --ctv-max-rows rows (73 s at 100,000 patients)

Compared: Cox coefficients and SEs; Kaplan-Meier survival and both log-log CI limits at every
distinct time of each arm (lifelines' default CI, "exponential Greenwood", is R's
conf.type = "log-log", as ours), and against R (benchmarks/lifelines_vs_inhouse.R, one fit
per case, unless --no-r or R is missing) the same numbers, curves at every 30th day. The
result is one markdown section (machine, table, method) written to --out-md and printed.
A model "qualifies" for lifelines when lifelines equals R within 1e-8 (absolute) and its
median time is within 3x ours.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from run import load_average
from versus_r_common import HERE, machine, r_ready, run_rscript, time_ours

from registry.analysis.common import arm_masks, complete, covariate_matrix
from registry.models import cox, km, lifelines_fits
from registry.models.iptw import design_matrix, fit_propensity
from registry.study import DEFAULT_STUDY, Study, load_study

R_SCRIPT = HERE / "lifelines_vs_inhouse.R"
EXACT = 1e-8  # largest |lifelines - R| for lifelines to fit a model
FAST_ENOUGH = 3.0  # largest lifelines / ours time for lifelines to fit a model
# lifelines stops on |step| < precision (default 1e-7), a relative loglik change below
# r_precision (1e-9) or a Newton decrement below precision, short of R by ~1e-6 relative;
# as registry/models/lifelines_fits.py: full Newton steps to 1e-20 (one more step than 1e-14).
LIFELINES_FIT = {"precision": 1e-20, "r_precision": 1e-20, "step_size": 1.0, "max_steps": 50}
# lifelines' own heuristic sends a single binary covariate down its per-row Efron path (2-3x
# slower here than its per-time batch path, which suits the frames' ~1,826 distinct days).
BATCH_MODE = True
ADAPTER = False  # --adapter: time lifelines through registry.models.lifelines_fits
ONCE_ABOVE = 30.0  # seconds: a lifelines fit slower than this is timed once
Values = dict[str, np.ndarray]


@dataclass(frozen=True)
class Frames:
    """The primary outcome's rows of an export, and the study."""

    study: Study
    outcomes: pl.DataFrame
    landmark: pl.DataFrame
    counting: pl.DataFrame


@dataclass
class Case:
    """One model: both engines' times and values, and R's values."""

    name: str
    rows: int
    ours: list[float] = field(default_factory=list)
    lifelines: list[float] = field(default_factory=list)
    ours_values: Values = field(default_factory=dict)
    lifelines_values: Values = field(default_factory=dict)
    r_values: Values = field(default_factory=dict)
    # what is compared with R when it differs from the values above (km: the 30-day grid)
    ours_at_r: Values | None = None
    lifelines_at_r: Values | None = None
    note: str = ""

    def against_r(self) -> tuple[float | None, float | None]:
        """Largest |ours - R| and |lifelines - R|."""
        ours = self.ours_values if self.ours_at_r is None else self.ours_at_r
        theirs = self.lifelines_values if self.lifelines_at_r is None else self.lifelines_at_r
        return max_abs(ours, self.r_values), max_abs(theirs, self.r_values)


def read_frames(folder: Path, study: Study) -> Frames:
    """outcomes, landmark and counting of the primary outcome, typed by the data dictionary."""
    dictionary = pl.read_csv(folder / "data_dictionary.csv")
    frames = {}
    for name in ("outcomes", "landmark", "counting"):
        types = dictionary.filter(pl.col("file") == name).select("column", "type").rows()
        kinds = {column: getattr(pl, kind, None) for column, kind in types}
        schema: dict[str, Any] = {
            c: k() for c, k in kinds.items() if isinstance(k, type) and issubclass(k, pl.DataType)
        }
        frame = pl.read_csv(folder / f"{name}.csv", schema_overrides=schema)
        frames[name] = frame.filter(pl.col("outcome") == study.primary_outcome)
    return Frames(study, frames["outcomes"], frames["landmark"], frames["counting"])


def model_frame(rows: pl.DataFrame, study: Study, *, adjusted: bool) -> pl.DataFrame:
    """The model columns as the analysis builds them: time columns, event, the design."""
    x, names = covariate_matrix(rows, study, adjusted=adjusted)
    keep = [c for c in ("start", "stop", "duration_days", "patient_id") if c in rows.columns]
    out = rows.select(keep).with_columns((rows.get_column("event") == 1).cast(pl.Int8).alias("e"))
    return out.with_columns(pl.Series(n, x[:, j]) for j, n in enumerate(names))


def names_of(frame: pl.DataFrame) -> list[str]:
    """The covariate columns of a model_frame."""
    return frame.columns[frame.columns.index("e") + 1 :]


# ---- ours ----------------------------------------------------------------------------------


def ours_fixed(frame: pl.DataFrame, weights: np.ndarray | None = None) -> Values:
    """fit_cox on one row per patient, from the Polars frame."""
    names = names_of(frame)
    fit = cox.fit_cox(
        frame.get_column("duration_days").to_numpy().astype(float),
        frame.get_column("e").to_numpy() == 1,
        frame.select(names).to_numpy(),
        weights=weights,
        robust=weights is not None,
        names=tuple(names),
    )
    return {"coef": fit.coef, "se": fit.se}


def ours_tv(frame: pl.DataFrame) -> Values:
    """fit_cox on (start, stop] rows."""
    names = names_of(frame)
    fit = cox.fit_cox(
        frame.get_column("stop").to_numpy().astype(float),
        frame.get_column("e").to_numpy() == 1,
        frame.select(names).to_numpy(),
        start=frame.get_column("start").to_numpy().astype(float),
        names=tuple(names),
    )
    return {"coef": fit.coef, "se": fit.se}


def ours_km(frame: pl.DataFrame) -> dict[str, km.KaplanMeier]:
    """fit_km per arm."""
    d = frame.get_column("duration_days").to_numpy().astype(float)
    e = frame.get_column("event").to_numpy() == 1
    return {arm: km.fit_km(d[m], e[m]) for arm, m in arm_masks(frame).items()}


# ---- lifelines -----------------------------------------------------------------------------


def adapter_fixed(frame: pl.DataFrame) -> Values:
    """registry.models.lifelines_fits.fit_cox_fixed, as the analysis calls it (--adapter)."""
    names = names_of(frame)
    fit = lifelines_fits.fit_cox_fixed(
        frame.get_column("duration_days").to_numpy().astype(float),
        frame.get_column("e").to_numpy() == 1,
        frame.select(names).to_numpy(),
        names=tuple(names),
    )
    return {"coef": fit.coef, "se": fit.se}


def lifelines_fixed(frame: pl.DataFrame, weights: np.ndarray | None = None) -> Values:
    """CoxPHFitter (Efron) on the model columns converted once to pandas."""
    from lifelines import CoxPHFitter

    if ADAPTER and weights is None:
        return adapter_fixed(frame)

    cols = ["duration_days", "e", *names_of(frame)]
    data = frame.select(cols).to_pandas()
    if weights is not None:
        data["w"] = weights
    fitter = CoxPHFitter(baseline_estimation_method="breslow")
    fitter.fit(
        data, "duration_days", "e", weights_col="w" if weights is not None else None,
        robust=weights is not None, fit_options=LIFELINES_FIT, batch_mode=BATCH_MODE,
    )  # fmt: skip
    return {"coef": fitter.params_.to_numpy(), "se": fitter.standard_errors_.to_numpy()}


def lifelines_tv(frame: pl.DataFrame) -> Values:
    """CoxTimeVaryingFitter on (start, stop] rows."""
    from lifelines import CoxTimeVaryingFitter

    cols = ["patient_id", "start", "stop", "e", *names_of(frame)]
    data = frame.select(cols).to_pandas()
    fitter = CoxTimeVaryingFitter()
    fitter.fit(
        data, id_col="patient_id", event_col="e", start_col="start", stop_col="stop",
        fit_options=LIFELINES_FIT,
    )  # fmt: skip
    return {"coef": fitter.params_.to_numpy(), "se": fitter.standard_errors_.to_numpy()}


def lifelines_km(frame: pl.DataFrame) -> dict[str, Any]:
    """KaplanMeierFitter per arm (its default CI: exponential Greenwood, i.e. log-log)."""
    from lifelines import KaplanMeierFitter

    if ADAPTER:  # the adapter returns a KaplanMeier; compare it as lifelines' curve
        return {arm: _AsFitter(f) for arm, f in adapter_km(frame).items()}
    data = frame.select("duration_days", "event", "treated").to_pandas()
    treated = data["treated"].astype(bool).to_numpy()
    fits = {}
    for arm, m in {"treated": treated, "untreated": ~treated}.items():
        fits[arm] = KaplanMeierFitter().fit(
            data["duration_days"].to_numpy()[m], data["event"].to_numpy()[m] == 1, alpha=0.05
        )
    return fits


def adapter_km(frame: pl.DataFrame) -> dict[str, km.KaplanMeier]:
    """lifelines_fits.fit_km per arm, as the analysis calls it (--adapter)."""
    d = frame.get_column("duration_days").to_numpy().astype(float)
    e = frame.get_column("event").to_numpy() == 1
    return {arm: lifelines_fits.fit_km(d[m], e[m]) for arm, m in arm_masks(frame).items()}


class _AsFitter:
    """A KaplanMeier seen through km_curve, like a KaplanMeierFitter."""

    def __init__(self, fit: km.KaplanMeier) -> None:
        self.fit = fit


def km_curve(fit: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """times, S, lower, upper of a KaplanMeierFitter (a row per distinct time and 0)."""
    if isinstance(fit, _AsFitter):
        f = fit.fit
        return f.times, f.survival, f.ci_lower, f.ci_upper
    ci = fit.confidence_interval_.to_numpy()
    return (
        fit.survival_function_.index.to_numpy(dtype=float),
        fit.survival_function_.to_numpy()[:, 0],
        ci[:, 0],
        ci[:, 1],
    )


def step_at(times: np.ndarray, curve: np.ndarray, at: np.ndarray) -> np.ndarray:
    """A right-continuous step function at `at`."""
    return curve[np.searchsorted(times, at, side="right") - 1]


def km_values_ours(fits: dict[str, km.KaplanMeier], at: dict[str, np.ndarray]) -> Values:
    """S, lower, upper per arm at the given times of each arm."""
    out = {}
    for arm, f in fits.items():
        for key, curve in zip(("surv", "lower", "upper"), f.at(at[arm]), strict=True):
            out[f"{key}_{arm}"] = curve
    return out


def km_values_lifelines(fits: dict[str, Any], at: dict[str, np.ndarray]) -> Values:
    """The same from lifelines' fits."""
    out = {}
    for arm, f in fits.items():
        times, *curves = km_curve(f)
        for key, curve in zip(("surv", "lower", "upper"), curves, strict=True):
            out[f"{key}_{arm}"] = step_at(times, curve, at[arm])
    return out


# ---- cases ---------------------------------------------------------------------------------


def fixed_frames(frames: Frames) -> dict[str, pl.DataFrame]:
    """The model frames of the fixed-covariate cases."""
    study = frames.study
    return {
        "cox_naive": model_frame(frames.outcomes, study, adjusted=False),
        "cox_naive_adj": model_frame(
            complete(frames.outcomes, adjusted=True), study, adjusted=True
        ),
        "cox_landmark": model_frame(frames.landmark, study, adjusted=False),
        "cox_landmark_adj": model_frame(
            complete(frames.landmark, adjusted=True), study, adjusted=True
        ),
    }


def iptw_weights(frames: Frames) -> tuple[pl.DataFrame, np.ndarray]:
    """The IPTW model frame (landmark, complete rows, treated only) and its weights."""
    rows = complete(frames.landmark, adjusted=True)
    x, names = design_matrix(rows, frames.study.covariates)
    treated = rows.get_column("treated").cast(pl.Boolean).to_numpy()
    weights = fit_propensity(treated, x, names).weights
    return model_frame(rows, frames.study, adjusted=False), weights


def timed_pair(
    case: Case, ours: Callable[[], Any], theirs: Callable[[], Any] | None, repeats: int
) -> tuple[Any, Any]:
    """Time ours and lifelines (if run) in turn, repeat by repeat, so that both see the same
    load on a shared machine; return one result of each."""
    mine = found = None
    for i in range(repeats):
        seconds, mine = time_ours(ours, 1)
        case.ours += seconds
        if theirs is None or (i and case.lifelines[0] >= ONCE_ABOVE):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lifelines' convergence and style hints
            seconds, found = time_ours(theirs, 1)
        case.lifelines += seconds
    shown = f"lifelines {statistics.median(case.lifelines):8.3f} s" if case.lifelines else ""
    print(f"  {case.name:<17} {case.rows:>10,} rows  ours {statistics.median(case.ours):8.3f} s  "
          f"{shown}", flush=True)  # fmt: skip
    return mine, found


def run_cases(frames: Frames, args: argparse.Namespace) -> tuple[list[Case], np.ndarray]:
    """Every case, both engines; returns the cases and the IPTW weights (for R)."""
    cases = []
    out = frames.outcomes
    grid = np.arange(30, frames.study.horizon_days + 1, 30, dtype=float)
    wanted = (lambda name: name in args.only.split(",")) if args.only else (lambda name: True)
    case = Case("km", out.height)
    mine, theirs = timed_pair(case, lambda: ours_km(out), lambda: lifelines_km(out), args.repeats)
    every = {arm: f.times for arm, f in mine.items()}
    case.ours_values = km_values_ours(mine, every)
    case.lifelines_values = km_values_lifelines(theirs, every)
    case.ours_at_r = km_values_ours(mine, {a: grid for a in every})
    case.lifelines_at_r = km_values_lifelines(theirs, {a: grid for a in every})
    cases.append(case)
    for name, frame in fixed_frames(frames).items():
        if not wanted(name):
            continue
        case = Case(name, frame.height)
        case.ours_values, case.lifelines_values = timed_pair(
            case, lambda f=frame: ours_fixed(f), lambda f=frame: lifelines_fixed(f), args.repeats
        )
        cases.append(case)
    frame, weights = iptw_weights(frames)
    if not wanted("cox_iptw"):
        return cases + [c for c in tv_cases(frames, args) if wanted(c.name)], weights
    case = Case("cox_iptw", frame.height)
    skip = "cox_iptw" in args.lifelines_skip
    case.ours_values, found = timed_pair(
        case, lambda: ours_fixed(frame, weights),
        None if skip else (lambda: lifelines_fixed(frame, weights)), args.repeats,
    )  # fmt: skip
    if found is None:
        case.note = "lifelines not run (--lifelines-skip)"
    else:
        case.lifelines_values = found
    cases.append(case)
    return cases + [c for c in tv_cases(frames, args) if wanted(c.name)], weights


def tv_cases(frames: Frames, args: argparse.Namespace) -> list[Case]:
    """The counting-process cases (CoxTimeVaryingFitter only up to --ctv-max-rows rows)."""
    cases = []
    for name, adjusted in (("cox_tv", False), ("cox_tv_adj", True)):
        if args.only and name not in args.only.split(","):
            continue
        rows = complete(frames.counting, adjusted=adjusted)
        frame = model_frame(rows, frames.study, adjusted=adjusted)
        case = Case(name, frame.height)
        theirs_fn = None if frame.height > args.ctv_max_rows else (lambda f=frame: lifelines_tv(f))
        case.ours_values, found = timed_pair(
            case, lambda f=frame: ours_tv(f), theirs_fn, 1 if theirs_fn else args.repeats
        )
        if found is None:
            case.note = f"lifelines not run above {args.ctv_max_rows:,} rows"
        else:
            case.lifelines_values = found
        cases.append(case)
    return cases


def add_r(cases: list[Case], frames: Frames, folder: Path, weights: np.ndarray) -> dict:
    """R's values of every case (one Rscript run); returns R's info lines."""
    weights_file = folder / "lifelines_bench_weights.csv"
    pl.DataFrame({"w": weights}).write_csv(weights_file)
    grid = ",".join(str(d) for d in range(30, frames.study.horizon_days + 1, 30))
    study = frames.study
    argv = ["Rscript", str(R_SCRIPT), str(folder), ",".join(c.name for c in cases), grid,
            study.primary_outcome, ",".join(study.covariates), str(weights_file)]  # fmt: skip
    try:
        info, _, values = run_rscript(argv)
    finally:
        weights_file.unlink(missing_ok=True)
    for case in cases:
        case.r_values = {k: np.asarray(v) for k, v in values.get(case.name, {}).items()}
    return info


def max_abs(a: Values, b: Values) -> float | None:
    """Largest |a - b| over the keys of b (NaN where both are NaN is equal); None if empty."""
    if not a or not b:
        return None
    worst = 0.0
    for key, theirs in b.items():
        x, y = np.asarray(a[key], dtype=float), np.asarray(theirs, dtype=float)
        if x.shape != y.shape or np.any(np.isnan(x) != np.isnan(y)):
            return float("inf")
        ok = ~np.isnan(y)
        worst = max(worst, float(np.max(np.abs(x[ok] - y[ok]), initial=0.0)))
    return worst


def verdict(case: Case, lifelines_r: float | None) -> str:
    """Whether lifelines qualifies for the model, and why not (speed alone without R)."""
    if not case.lifelines:
        return "no (not run: too slow)"
    ratio = statistics.median(case.lifelines) / statistics.median(case.ours)
    why = [] if ratio <= FAST_ENOUGH else [f"{ratio:.1f}x ours"]
    if lifelines_r is None:
        return ("too slow" if why else f"fast enough (within {FAST_ENOUGH:g}x)") + "; R not run"
    if not lifelines_r <= EXACT:
        why.insert(0, f"R diff > {EXACT:g}")
    return "yes" if not why else "no (" + ", ".join(why) + ")"


def number(x: float | None) -> str:
    """A difference in the table."""
    return "—" if x is None else f"{x:.1e}"


def markdown(cases: list[Case], frames: Frames, label: str, preamble: list[str]) -> str:
    """The section: heading, machine, table and method."""
    header = ["case", "rows", "ours s", "lifelines s", "lifelines / ours", "max abs diff "
              "lifelines - ours", "ours - R", "lifelines - R", "lifelines qualifies"]  # fmt: skip
    lines = [f"## lifelines versus the in-house engine: {label}", "", *preamble, ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for c in cases:
        r_ours, r_theirs = c.against_r()
        ratio = statistics.median(c.lifelines) / statistics.median(c.ours) if c.lifelines else None
        lines.append("| " + " | ".join([
            c.name, f"{c.rows:,}", f"{statistics.median(c.ours):.3f}",
            f"{statistics.median(c.lifelines):.3f}" if c.lifelines else "—",
            "—" if ratio is None else f"{ratio:.1f}",
            number(max_abs(c.ours_values, c.lifelines_values)), number(r_ours), number(r_theirs),
            verdict(c, r_theirs) + (f"; {c.note}" if c.note else ""),
        ]) + " |")  # fmt: skip
    study = frames.study
    lines += ["", (
        f"Frames: `registry tte --csv`, outcome `{study.primary_outcome}`: "
        f"{frames.outcomes.height:,} patients, {frames.landmark.height:,} in the landmark "
        f"frame, {frames.counting.height:,} (start, stop] rows; covariates "
        f"{', '.join(study.covariates)}. Generated by `benchmarks/lifelines_vs_inhouse.py` (R: "
        "`benchmarks/lifelines_vs_inhouse.R`). Times are wall seconds, medians of the repeats "
        "shown in the preamble, from the Polars frame (conversion included) to the fitted "
        "numbers. Differences are absolute: Cox coefficients and SEs; Kaplan-Meier S and its "
        "log-log CI limits per arm, at every distinct time between the engines and at every "
        "30th day against R (survfit(..., conf.type = \"log-log\"); coxph(..., ties = "
        "\"efron\")). lifelines' Cox fits use fit_options "
        f"{LIFELINES_FIT} (tighter than its defaults) and batch_mode={BATCH_MODE}. A model "
        "qualifies for lifelines when "
        f"lifelines - R <= {EXACT:g} and lifelines / ours <= {FAST_ENOUGH:g}. Without R the "
        "R columns are empty and nothing qualifies."
    ), ""]  # fmt: skip
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tte", type=Path, required=True, help="`registry tte --csv` folder.")
    parser.add_argument("--study", type=Path, default=DEFAULT_STUDY, help="The study file.")
    parser.add_argument("--label", default="", help="Heading suffix, e.g. the size.")
    parser.add_argument("--out-md", type=Path, required=True, help="Markdown section out.")
    parser.add_argument("--repeats", type=int, default=3, help="Timed runs per case.")
    parser.add_argument("--ctv-max-rows", type=int, default=150_000,
                        help="Run CoxTimeVaryingFitter only up to this many rows.")  # fmt: skip
    parser.add_argument("--lifelines-skip", default="",
                        help="Cases whose lifelines fit is skipped (only cox_iptw).")  # fmt: skip
    parser.add_argument("--only", default="", help="Cases to run besides km, comma-separated.")
    parser.add_argument(
        "--adapter", action="store_true",
        help="Time lifelines' KM and unweighted fixed Cox through registry.models.lifelines_fits.",
    )  # fmt: skip
    parser.add_argument("--no-r", action="store_true", help="Skip R's reference values.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run every case, compare, write the section."""
    args = parse_args(argv)
    global ADAPTER
    ADAPTER = args.adapter
    frames = read_frames(args.tte, load_study(args.study))
    preamble = machine({})
    import lifelines

    preamble[-1] = f"- lifelines {lifelines.__version__}; repeats {args.repeats}"
    cases, weights = run_cases(frames, args)
    why = None if not args.no_r else "--no-r"
    why = why or r_ready()
    if why is None:
        info = add_r(cases, frames, args.tte, weights)
        preamble.append(f"- R {info.get('R', '?')}, survival {info.get('survival', '?')}")
    else:
        preamble.append(f"- R not run: {why}")
    preamble.append(f"- Load average at end {load_average()}")
    text = markdown(cases, frames, args.label, preamble)
    args.out_md.parent.mkdir(parents=True, exist_ok=True)
    args.out_md.write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    try:
        main()
    except subprocess.TimeoutExpired as exc:
        sys.exit(f"Error: R did not finish in {exc.timeout} s")
