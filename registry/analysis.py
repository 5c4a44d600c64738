"""The analysis stage: time-to-event frames -> every model of the study, as plain results.

Pure: frames in, a JSON-ready dict out (numbers, lists, None). Each model that cannot be
fitted (no events in an arm, a constant covariate) is reported with its reason instead of
stopping the others.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from registry.errors import ModelFitError
from registry.models import competing, cox, km
from registry.models.iptw import design_matrix, fit_propensity
from registry.study import Study

YEARS = {str(i + 1): d for i, d in enumerate(km.YEARS_DAYS)}
Z95 = float(stats.norm.ppf(0.975))
PIECE_DAY = 365  # piecewise hazard ratios: 0-1 year and 1-5 years
Result = dict[str, Any]


def guarded(fit: Callable[[], Result]) -> Result:
    """Run one model; its warnings are kept with it, a failure becomes {'error': reason}."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = fit()
        except (ValueError, ArithmeticError, np.linalg.LinAlgError, NotImplementedError) as exc:
            return {"error": f"{type(exc).__name__}: {exc}"}
        except ModelFitError as exc:
            return {"error": str(exc)}
    notes = sorted({str(w.message) for w in caught if not issubclass(w.category, RuntimeWarning)})
    return {**result, "warnings": notes} if notes else result


def arm_masks(frame: pl.DataFrame) -> dict[str, np.ndarray]:
    """Boolean row masks of the two arms (ever-treated or treated-by-landmark)."""
    treated = frame.get_column("treated").cast(pl.Boolean).to_numpy()
    return {"treated": treated, "untreated": ~treated}


def km_result(fit: km.KaplanMeier) -> Result:
    """A Kaplan-Meier curve as plain lists, with survival at 1-5 years."""
    surv, lower, upper = fit.at(np.array(km.YEARS_DAYS, dtype=float))
    return {
        "times_days": fit.times.tolist(),
        "survival": fit.survival.tolist(),
        "ci_lower": fit.ci_lower.tolist(),
        "ci_upper": fit.ci_upper.tolist(),
        # weighted curves hold sums of weights: rounded, so that they are suppressed like counts
        "at_risk": np.rint(fit.at_risk).astype(int).tolist(),
        "events": np.rint(fit.events).astype(int).tolist(),
        "censored": np.rint(fit.censored).astype(int).tolist(),
        "n": fit.n,
        "total_events": fit.total_events,
        "survival_at_years": _by_year(surv),
        "ci_lower_at_years": _by_year(lower),
        "ci_upper_at_years": _by_year(upper),
        "median_days": fit.median,
        "median_ci": list(fit.median_ci),
    }


def _by_year(values: np.ndarray) -> dict[str, float | None]:
    return {y: (None if np.isnan(v) else float(v)) for y, v in zip(YEARS, values, strict=True)}


def per_arm(frame: pl.DataFrame, threshold: int, fit: Callable[[np.ndarray], Result]) -> Result:
    """One fit per arm; an arm smaller than the small-cell threshold is not estimated, since
    its curve would show individual patients' event days."""
    small = {"error": f"fewer than {threshold} patients in this arm: not shown"}
    return {
        arm: small if 0 < mask.sum() < threshold else guarded(partial(fit, mask))
        for arm, mask in arm_masks(frame).items()
    }


def km_by_arm(frame: pl.DataFrame, threshold: int, *, weights: np.ndarray | None = None) -> Result:
    """Kaplan-Meier per arm for the outcome (death and other censoring as censored)."""
    duration = frame.get_column("duration_days").to_numpy().astype(float)
    event = frame.get_column("event").to_numpy() == 1

    def fit(m: np.ndarray) -> Result:
        return _km(duration[m], event[m], None if weights is None else weights[m])

    return per_arm(frame, threshold, fit)


def _km(duration: np.ndarray, event: np.ndarray, weights: np.ndarray | None) -> Result:
    return km_result(km.fit_km(duration, event, weights=weights))


def wald(coef: float, se: float) -> Result:
    """Hazard ratio with its 95% Wald CI and two-sided p."""
    z = coef / se if se > 0 else float("nan")
    with np.errstate(over="ignore"):  # an infinite bound is written as null
        return {
            "hr": float(np.exp(coef)),
            "ci_lower": float(np.exp(coef - Z95 * se)),
            "ci_upper": float(np.exp(coef + Z95 * se)),
            "p": float(2 * stats.norm.sf(abs(z))),
            "se": float(se),
        }


def cox_result(fit: cox.CoxFit, label: str, term: str = "treated") -> Result:
    """HR, CI and p of the treatment term, the model's size and every term."""
    i = fit.names.index(term)
    return {
        **wald(float(fit.coef[i]), float(fit.se[i])),
        "n": fit.n,
        "events": fit.events,
        "robust": fit.robust,
        "converged": fit.converged,
        "label": label,
        "terms": {
            n: wald(float(c), float(s)) for n, c, s in zip(fit.names, fit.coef, fit.se, strict=True)
        },
    }


def covariate_matrix(
    frame: pl.DataFrame, study: Study, *, adjusted: bool
) -> tuple[np.ndarray, list[str]]:
    """Treatment column, plus the study covariates when adjusted."""
    treated = frame.get_column("treated").cast(pl.Float64).to_numpy()[:, None]
    if not adjusted:
        return treated, ["treated"]
    x, names = design_matrix(frame, study.covariates)
    return np.hstack([treated, x]), ["treated", *names]


def complete(frame: pl.DataFrame, *, adjusted: bool) -> pl.DataFrame:
    """Rows usable by a model: all of them, or those with every covariate when adjusted."""
    return frame.filter(pl.col("has_covariates")) if adjusted else frame


def fit_fixed(frame: pl.DataFrame, study: Study, *, adjusted: bool, label: str) -> Result:
    """Cox model on one row per patient (ever-treated or landmark frame), Efron ties."""
    rows = complete(frame, adjusted=adjusted)
    x, names = covariate_matrix(rows, study, adjusted=adjusted)
    fit = cox.fit_cox(
        rows.get_column("duration_days").to_numpy().astype(float),
        rows.get_column("event").to_numpy() == 1,
        x,
        names=tuple(names),
    )
    return cox_result(fit, label)


def fit_time_varying(
    counting: pl.DataFrame, study: Study, *, adjusted: bool, cause: int = 1
) -> Result:
    """Cox model on (start, stop] rows with treatment as a time-varying exposure; cause 2
    makes death the event (the competing event's cause-specific hazard). The adjusted
    outcome model carries its Schoenfeld-residual test (R's cox.zph) under `ph_test`."""
    rows = complete(counting, adjusted=adjusted)
    x, names = covariate_matrix(rows, study, adjusted=adjusted)
    fit = cox.fit_cox(
        rows.get_column("stop").to_numpy().astype(float),
        rows.get_column("event").to_numpy() == cause,
        x,
        start=rows.get_column("start").to_numpy().astype(float),
        names=tuple(names),
    )
    label = "time-varying treatment (primary)" if cause == 1 else DEATH_LABEL
    result = cox_result(fit, label)
    result |= {"n": rows.get_column("patient_id").n_unique(), "n_rows": rows.height}
    if adjusted and cause == 1:
        result["ph_test"] = guarded(lambda: ph_result(cox.ph_test(fit)) | schoenfeld(fit, study))
    return result


def ph_result(table: pl.DataFrame) -> Result:
    """The cox.zph table; `violated` when the global test is significant at 5 %, in which
    case the piecewise hazard ratios and the RMST difference are the ones to read."""
    global_p = float(table.filter(pl.col("term") == "GLOBAL").get_column("p").item())
    return {"table": table.to_dicts(), "global_p": global_p, "violated": global_p < 0.05}


def schoenfeld(fit: cox.CoxFit, study: Study) -> Result:
    """Binned scaled Schoenfeld residuals of the treatment term (no single patient shown)."""
    smooth = guarded(
        lambda: cox.scaled_schoenfeld_smooth(fit, "treated", min_events=study.min_cell_count)
    )
    return {"smooth": {"treated": smooth}} if "error" not in smooth else {}


def split_at(counting: pl.DataFrame, day: int) -> pl.DataFrame:
    """Split (start, stop] rows at `day`; `period` is 0 before it and 1 after."""
    crossing = (pl.col("start") < day) & (pl.col("stop") > day)
    schema = counting.schema
    early = counting.filter(crossing).with_columns(
        pl.lit(day).cast(schema["stop"]).alias("stop"),
        pl.lit(0).cast(schema["event"]).alias("event"),
    )
    late = counting.with_columns(
        pl.when(crossing)
        .then(pl.lit(day))
        .otherwise(pl.col("start"))
        .cast(schema["start"])
        .alias("start")
    )
    both = pl.concat([early, late])
    return both.with_columns((pl.col("start") >= day).cast(pl.Int8).alias("period"))


def fit_piecewise(counting: pl.DataFrame, study: Study) -> Result:
    """Time-varying adjusted Cox with separate treatment HRs for 0-1 and 1-5 years."""
    rows = complete(split_at(counting, PIECE_DAY), adjusted=True)
    x, names = covariate_matrix(rows, study, adjusted=True)
    period = rows.get_column("period").to_numpy().astype(float)
    early, late = x[:, 0] * (1 - period), x[:, 0] * period
    fit = cox.fit_cox(
        rows.get_column("stop").to_numpy().astype(float),
        rows.get_column("event").to_numpy() == 1,
        np.column_stack([early, late, x[:, 1:]]),
        start=rows.get_column("start").to_numpy().astype(float),
        names=("treated_0_1y", "treated_1_5y", *names[1:]),
    )
    patients = rows.get_column("patient_id").n_unique()
    return {
        "0-1y": {**cox_result(fit, "treated 0-1 year", "treated_0_1y"), "n": patients},
        "1-5y": {**cox_result(fit, "treated 1-5 years", "treated_1_5y"), "n": patients},
    }


def fit_iptw(landmark: pl.DataFrame, study: Study) -> tuple[Result, np.ndarray | None]:
    """Stabilised-IPTW Cox on the landmark frame (no immortal time) with robust variance."""
    rows = complete(landmark, adjusted=True)
    x, names = design_matrix(rows, study.covariates)
    treated = rows.get_column("treated").cast(pl.Boolean).to_numpy()
    ps = fit_propensity(treated, x, names)
    fit = cox.fit_cox(
        rows.get_column("duration_days").to_numpy().astype(float),
        rows.get_column("event").to_numpy() == 1,
        treated.astype(float)[:, None],
        weights=ps.weights,
        robust=True,
        names=("treated",),
    )
    result = cox_result(fit, "IPTW (stabilised weights, landmark cohort, robust SE)")
    result["weights"] = ps.weight_summary
    result["balance"] = ps.balance.to_dicts()
    result["max_abs_smd_after"] = float(np.abs(ps.balance["smd_after"].to_numpy()).max(initial=0.0))
    result["weighted_km"] = km_by_arm(rows, study.min_cell_count, weights=ps.weights)
    cap = float(np.quantile(ps.weights, 0.99)) * 1.5
    result["ps_histogram"] = histogram(ps.score, treated, np.linspace(0, 1, 21), study)
    result["weights_histogram"] = histogram(
        np.minimum(ps.weights, cap), treated, np.linspace(0, cap, 21), study
    )
    return result, ps.weights


def histogram(values: np.ndarray, treated: np.ndarray, edges: np.ndarray, study: Study) -> Result:
    """Counts per bin and arm (small counts suppressed here: these lists have no count key)."""

    def counts(mask: np.ndarray) -> list[int | None]:
        found = np.histogram(values[mask], bins=edges)[0]
        return [None if 0 < c < study.min_cell_count else int(c) for c in found]

    return {"bin_edges": edges.tolist(), "treated": counts(treated), "untreated": counts(~treated)}


def cif_result(fit: competing.CumulativeIncidence) -> Result:
    """A cumulative incidence curve as plain lists, with values at 1-5 years."""
    return {
        "times_days": fit.times.tolist(),
        "cif": fit.cif.tolist(),
        "ci_lower": fit.ci_lower.tolist(),
        "ci_upper": fit.ci_upper.tolist(),
        "at_years": _by_year(np.asarray(fit.at([float(d) for d in km.YEARS_DAYS]))),
    }


def _cif(duration: np.ndarray, status: np.ndarray, cause: int) -> Result:
    return cif_result(competing.cumulative_incidence(duration, status, cause=cause))


def competing_risks(frame: pl.DataFrame, landmark: pl.DataFrame, threshold: int) -> Result:
    """Aalen-Johansen CIF per arm for the outcome and death, Gray's test, Fine-Gray."""
    duration = frame.get_column("duration_days").to_numpy().astype(float)
    status = frame.get_column("event").to_numpy().astype(int)
    out: Result = {
        "cif": per_arm(frame, threshold, lambda m: _cif(duration[m], status[m], 1)),
        "cif_death": per_arm(frame, threshold, lambda m: _cif(duration[m], status[m], 2)),
    }
    group = np.where(arm_masks(frame)["treated"], "treated", "untreated")
    out["gray_test"] = guarded(lambda: _gray(duration, status, group))
    out["fine_gray"] = guarded(lambda: _fine_gray(landmark))
    return out


def _gray(duration: np.ndarray, status: np.ndarray, group: np.ndarray) -> Result:
    statistic, df, p = competing.gray_test(duration, status, group, cause=1)
    return {"statistic": float(statistic), "df": int(df), "p": float(p)}


def _fine_gray(landmark: pl.DataFrame) -> Result:
    """Fine-Gray subdistribution HR of treatment by the landmark (death competing)."""
    fit = competing.fit_fine_gray(
        landmark.get_column("duration_days").to_numpy().astype(float),
        landmark.get_column("event").to_numpy().astype(int),
        landmark.get_column("treated").cast(pl.Float64).to_numpy()[:, None],
        cause=1,
        names=("treated",),
    )
    result = wald(float(fit.coef[0]), float(fit.se[0]))
    return {**result, "n": fit.n, "events": fit.events, "label": "Fine-Gray, landmark cohort"}


def rmst(landmark: pl.DataFrame, study: Study) -> Result:
    """Difference in restricted mean time free of the outcome, landmark to the horizon."""
    tau = float(study.horizon_days - study.landmark_days)
    group = np.where(
        landmark.get_column("treated").cast(pl.Boolean).to_numpy(), "treated", "untreated"
    )
    fit = km.rmst_difference(
        landmark.get_column("duration_days").to_numpy().astype(float),
        landmark.get_column("event").to_numpy() == 1,
        group,
        tau=tau,
    )
    means = {k: float(v) for k, v in fit.rmst_by_group.items()}
    ses = {k: float(v) for k, v in fit.se_by_group.items()}
    # by name, not by the module's sorted group order (which gives untreated minus treated)
    difference = means["treated"] - means["untreated"]
    se = float(np.hypot(ses["treated"], ses["untreated"]))
    return {
        "tau_days": tau,
        "rmst": means,
        "se": ses,
        "difference_days": difference,
        "ci_lower": difference - Z95 * se,
        "ci_upper": difference + Z95 * se,
        "p": float(2 * stats.norm.sf(abs(difference) / se)) if se > 0 else None,
        "label": "treated minus untreated, landmark cohort",
    }


def logrank_result(frame: pl.DataFrame, *, stratified: bool) -> Result:
    """Log-rank test of the arms, optionally stratified by site."""
    group = np.where(arm_masks(frame)["treated"], "treated", "untreated")
    strata = frame.get_column("site_id").fill_null("unknown").to_numpy() if stratified else None
    test = km.logrank(
        frame.get_column("duration_days").to_numpy().astype(float),
        frame.get_column("event").to_numpy() == 1,
        group,
        strata=strata,
    )
    return {"statistic": float(test.statistic), "df": int(test.df), "p": float(test.p)}


def analyse_outcome(name: str, outcomes: pl.DataFrame, counting: pl.DataFrame,
                    landmark: pl.DataFrame, study: Study) -> Result:  # fmt: skip
    """Every estimator of the study for one outcome."""
    out = outcomes.filter(pl.col("outcome") == name)
    cp = counting.filter(pl.col("outcome") == name)
    lm = landmark.filter(pl.col("outcome") == name)
    iptw = guarded(lambda: fit_iptw(lm, study)[0])
    tv_adjusted = guarded(lambda: fit_time_varying(cp, study, adjusted=True))
    cr = competing_risks(out, lm, study.min_cell_count)
    return {
        "n": out.height,
        "events": int((out.get_column("event") == 1).sum()),
        "deaths_first": int((out.get_column("event") == 2).sum()),
        "km": km_by_arm(out, study.min_cell_count),
        "km_landmark": km_by_arm(lm, study.min_cell_count),
        "logrank": guarded(lambda: logrank_result(out, stratified=False)),
        "logrank_stratified_site": guarded(lambda: logrank_result(out, stratified=True)),
        "cox": {
            "unadjusted": guarded(lambda: fit_fixed(out, study, adjusted=False, label=NAIVE)),
            "adjusted": guarded(lambda: fit_fixed(out, study, adjusted=True, label=NAIVE)),
            "time_varying": guarded(lambda: fit_time_varying(cp, study, adjusted=False)),
            "time_varying_adjusted": tv_adjusted,
            "landmark": guarded(lambda: fit_fixed(lm, study, adjusted=False, label=LANDMARK)),
            "iptw": iptw,
            "piecewise": guarded(lambda: fit_piecewise(cp, study)),
            "death_cause_specific": guarded(
                lambda: fit_time_varying(cp, study, adjusted=True, cause=2)
            ),
        },
        "cif": cr["cif"],
        "cif_death": cr["cif_death"],
        "gray_test": cr["gray_test"],
        "fine_gray": cr["fine_gray"],
        "ph_test": tv_adjusted.pop("ph_test", {"error": "the adjusted model was not fitted"}),
        "rmst": guarded(lambda: rmst(lm, study)),
    }


DEATH_LABEL = "death as the event (cause-specific hazard of the competing event), time-varying"
NAIVE = (
    "ever-treated from t0 (prone to immortal-time bias, and counts a procedure after the "
    "outcome as treatment)"
)
LANDMARK = "landmark: treated by the landmark day, time from the landmark"
