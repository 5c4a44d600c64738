"""Curves and tests by arm: Kaplan-Meier, log-rank, cumulative incidence, Gray, Fine-Gray, RMST."""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import stats

from registry import catalogue
from registry.analysis import publish
from registry.analysis.common import (
    ARM_NAMES,
    YEARS,
    arm_codes,
    guarded,
    per_arm,
    wald,
)
from registry.constants import DAYS_PER_YEAR, Z95
from registry.errors import ModelFitError
from registry.models import competing, km, lifelines_fits
from registry.result_types import (
    RMST,
    Arm,
    ChiSquare,
    CIFCurve,
    CompetingRisks,
    FineGray,
    KMCurve,
    ModelError,
    Num,
    Year,
)
from registry.study import Study


def km_result(fit: km.KaplanMeier, withheld: list[Year] | None = None) -> KMCurve:
    """A Kaplan-Meier curve as plain lists, thinned to the rows the step function needs (see
    curve_rows), with the censorings as their own lists, survival at 1-5 years and the years
    to withhold on publishing."""
    surv, lower, upper = fit.at(np.array(km.YEARS_DAYS, dtype=float))
    rows = curve_rows(fit)
    # weighted curves hold sums of weights: rounded, so that they are suppressed like counts
    censored = np.rint(fit.censored).astype(int)
    marks = np.flatnonzero(censored > 0)
    return {
        "times_days": fit.times[rows].tolist(),
        "survival": fit.survival[rows].tolist(),
        "ci_lower": fit.ci_lower[rows].tolist(),
        "ci_upper": fit.ci_upper[rows].tolist(),
        "at_risk": np.rint(fit.at_risk[rows]).astype(int).tolist(),
        "events": np.rint(fit.events[rows]).astype(int).tolist(),
        "censored_times_days": fit.times[marks].tolist(),
        "censored": censored[marks].tolist(),
        "n": fit.n,
        "total_events": fit.total_events,
        "survival_at_years": _by_year(surv),
        "ci_lower_at_years": _by_year(lower),
        "ci_upper_at_years": _by_year(upper),
        "median_days": fit.median,
        "median_ci": list(fit.median_ci),
        "withheld_years": withheld or [],
    }


def curve_rows(fit: km.KaplanMeier) -> np.ndarray:
    """The rows a plot needs to draw the curve and its band as exact step functions: the
    first, every row where the survival or a CI limit changes, and the last; plus, for the
    numbers at risk under the plot, the first row on or after each whole year (the number
    at risk there counts everyone whose duration is at least that day).

    A row with only censorings changes nothing (with Greenwood CIs; the jackknife CIs of
    weighted curves change there, so those rows stay); at a million patients this drops a
    tenth of the rows, at a hundred thousand three quarters.
    """
    size = fit.times.size
    if size == 0:
        return np.arange(0)
    values = np.column_stack([fit.survival, fit.ci_lower, fit.ci_upper])
    # a NaN limit (where S = 0) compares unequal to itself: such rows are kept, never lost
    changed = 1 + np.flatnonzero(np.any(values[1:] != values[:-1], axis=1))
    whole_years = np.round(np.arange(fit.times[-1] / DAYS_PER_YEAR + 1) * DAYS_PER_YEAR)
    year_rows = np.searchsorted(fit.times, whole_years, side="left")
    return np.unique(np.concatenate([[0, size - 1], changed, year_rows[year_rows < size]]))


def _by_year(values: np.ndarray) -> dict[Year, Num]:
    return {y: (None if np.isnan(v) else float(v)) for y, v in zip(YEARS, values, strict=True)}


def km_by_arm(
    frame: pl.DataFrame, threshold: int, *, weights: np.ndarray | None = None
) -> dict[Arm, KMCurve | ModelError]:
    """Kaplan-Meier per arm for the outcome (death and other censoring as censored)."""
    duration = frame.get_column("duration_days").to_numpy().astype(float)
    event = frame.get_column("event").to_numpy() == 1

    def fit(m: np.ndarray) -> KMCurve:
        return _km(duration[m], event[m], None if weights is None else weights[m], threshold)

    return per_arm(frame, threshold, fit)


def _km(duration: np.ndarray, event: np.ndarray, weights: np.ndarray | None, k: int) -> KMCurve:
    """The published curve (rounded counts, see analysis/publish.py) with the exact fit's
    n, events, median and survival at 1-5 years; `withheld_years` names the years whose
    values the published results.json leaves out (registry/privacy/protect.py). lifelines fits the
    unweighted exact curves, the in-house engine the weighted ones and the published refit
    (its rounded counts enter as frequency weights)."""
    fit = lifelines_fits.fit_km(duration, event, weights=weights)
    w = np.ones_like(duration) if weights is None else weights
    hide = publish.withheld_years(duration[event], w[event], km.YEARS_DAYS, k)
    exact = km_result(fit, [y for y, h in zip(YEARS, hide, strict=True) if h])
    shown = km_result(publish.published_km(fit, k))
    return exact | {  # the curve's rows from the published fit
        "times_days": shown["times_days"],
        "survival": shown["survival"],
        "ci_lower": shown["ci_lower"],
        "ci_upper": shown["ci_upper"],
        "at_risk": shown["at_risk"],
        "events": shown["events"],
        "censored_times_days": shown["censored_times_days"],
        "censored": shown["censored"],
    }


def cif_result(fit: competing.CumulativeIncidence, withheld: list[Year] | None = None) -> CIFCurve:
    """A cumulative incidence curve as plain lists, with values at 1-5 years and the years
    to withhold on publishing."""
    return {
        "times_days": fit.times.tolist(),
        "cif": fit.cif.tolist(),
        "ci_lower": fit.ci_lower.tolist(),
        "ci_upper": fit.ci_upper.tolist(),
        "at_years": _by_year(np.asarray(fit.at([float(d) for d in km.YEARS_DAYS]))),
        "withheld_years": withheld or [],
    }


def _cif(duration: np.ndarray, status: np.ndarray, cause: int, k: int) -> CIFCurve:
    """The curve drawn from rounded counts; the values at 1-5 years exact, with the years
    to withhold on publishing (fewer than k events of the cause since the last one shown)."""
    exact = cif_result(competing.cumulative_incidence(duration, status, cause=cause))
    shown = cif_result(publish.published_cif(duration, status, cause, k))
    own = status == cause
    hide = publish.withheld_years(duration[own], np.ones(int(own.sum())), km.YEARS_DAYS, k)
    withheld = [y for y, h in zip(YEARS, hide, strict=True) if h]
    return shown | {"at_years": exact["at_years"], "withheld_years": withheld}


def competing_risks(frame: pl.DataFrame, landmark: pl.DataFrame, threshold: int) -> CompetingRisks:
    """Aalen-Johansen CIF per arm for the outcome and death, Gray's test, Fine-Gray."""
    duration = frame.get_column("duration_days").to_numpy().astype(float)
    status = frame.get_column("event").to_numpy().astype(int)
    group = arm_codes(frame)
    return {
        "cif": per_arm(frame, threshold, lambda m: _cif(duration[m], status[m], 1, threshold)),
        "cif_death": per_arm(
            frame, threshold, lambda m: _cif(duration[m], status[m], 2, threshold)
        ),
        "gray_test": guarded(lambda: _gray(duration, status, group)),
        "fine_gray": guarded(lambda: _fine_gray(landmark)),
    }


def _gray(duration: np.ndarray, status: np.ndarray, group: np.ndarray) -> ChiSquare:
    statistic, df, p = competing.gray_test(duration, status, group, cause=1)
    return {"statistic": float(statistic), "df": int(df), "p": float(p)}


def _fine_gray(landmark: pl.DataFrame) -> FineGray:
    """Fine-Gray subdistribution HR of treatment by the landmark (death competing); a fit
    that cannot give a finite estimate raises ModelFitError, written as {"error": reason}."""
    status = landmark.get_column("event").to_numpy().astype(int)
    treated = landmark.get_column("treated").cast(pl.Float64).to_numpy()
    for arm, rows in (("treated", treated == 1), ("untreated", treated == 0)):
        if rows.any() and np.any(status == 1) and not np.any(status[rows] == 1):
            raise ModelFitError(
                f"no events in the {arm} arm of the landmark cohort: the subdistribution "
                "hazard ratio runs to 0 or infinity (monotone likelihood); not estimable"
            )
    fit = competing.fit_fine_gray(
        landmark.get_column("duration_days").to_numpy().astype(float),
        status,
        treated[:, None],
        cause=1,
        names=("treated",),
    )
    if not fit.converged:
        raise ModelFitError(
            f"the Fine-Gray fit did not converge (log subdistribution HR {fit.coef[0]:.3g} "
            "after cmprsk::crr's 10 Newton steps); not estimable"
        )
    result = wald(float(fit.coef[0]), float(fit.se[0]))
    return {
        **result,
        "n": fit.n,
        "events": fit.events,
        "converged": fit.converged,
        "label": catalogue.model("fine_gray").description,
    }


def rmst(landmark: pl.DataFrame, study: Study) -> RMST:
    """Difference in restricted mean time free of the outcome, landmark to the horizon."""
    tau = float(study.horizon_days - study.landmark_days)
    group = arm_codes(landmark)
    fit = km.rmst_difference(
        landmark.get_column("duration_days").to_numpy().astype(float),
        landmark.get_column("event").to_numpy() == 1,
        group,
        tau=tau,
    )
    means = {ARM_NAMES[k]: float(v) for k, v in fit.rmst_by_group.items()}
    ses = {ARM_NAMES[k]: float(v) for k, v in fit.se_by_group.items()}
    # by name, not by the module's sorted group order (which gives untreated minus treated)
    difference = means["treated"] - means["untreated"]
    se = float(np.hypot(ses["treated"], ses["untreated"]))
    result: RMST = {
        "tau_days": tau,
        "rmst": means,
        "se": ses,
        "difference_days": difference,
        "ci_lower": difference - Z95 * se,
        "ci_upper": difference + Z95 * se,
        "p": float(2 * stats.norm.sf(abs(difference) / se)) if se > 0 else None,
        "label": "treated minus untreated, landmark cohort",
    }
    notes = short_follow_up(landmark, tau)
    if notes:
        result["warnings"] = notes
    return result


def short_follow_up(landmark: pl.DataFrame, tau: float) -> list[str]:
    """Warnings for each arm whose follow-up ends before tau (its curve is carried flat)."""
    by_arm = landmark.group_by("treated").agg(pl.col("duration_days").max())
    last = by_arm.sort("treated", descending=True).rows()  # treated first, every run
    short = [("treated" if arm else "untreated", d) for arm, d in last if d < tau]
    return [f"{arm} follow-up ends at day {d} before tau = {tau:.0f}" for arm, d in short]


def site_codes(frame: pl.DataFrame) -> np.ndarray:
    """Sites as the dense ranks of their names (the order np.unique gives the names), since
    np.unique on a million Python strings takes a second."""
    return frame.get_column("site_id").fill_null("unknown").rank("dense").to_numpy()


def logrank_result(frame: pl.DataFrame, *, stratified: bool) -> ChiSquare:
    """Log-rank test of the arms, optionally stratified by site."""
    group = arm_codes(frame)
    strata = site_codes(frame) if stratified else None
    test = km.logrank(
        frame.get_column("duration_days").to_numpy().astype(float),
        frame.get_column("event").to_numpy() == 1,
        group,
        strata=strata,
    )
    return {"statistic": float(test.statistic), "df": int(test.df), "p": float(test.p)}
