"""registry.models.cox against R's survival 3.5-3 (coxph, cox.zph) and lifelines.

The fixed-covariate cases without weights, strata or clusters (LIFELINES_CASES) are also fitted
by lifelines_fits.fit_cox_fixed, lifelines' CoxPHFitter, and held to the same R references.

Golden numbers come from tests/reference/cox_reference.R, which writes the data sets
(tests/data/cox_*.csv) and the results (tests/reference/cox/fits.csv, zph.csv and
schoenfeld_<case>.csv) with 17 significant digits. Each case below carries the R call that produced its row.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.analysis.common import wald
from registry.models import lifelines_fits
from registry.models.cox import (
    CoxInputError,
    build_layout,
    fit_cox,
    fit_layout,
    ph_test,
    scaled_schoenfeld,
    scaled_schoenfeld_smooth,
)

DATA = Path(__file__).parent / "data"
REFERENCE = Path(__file__).parent / "reference" / "cox"

HEART = ["transplant", "age", "year", "surgery"]
BLADDER = ["rx", "number", "size"]
COLON = ["rx_lev", "rx_lev5fu", "extent", "node4"]
LUNG = ["age", "sex", "ph.ecog"]
SIM = ["x1", "x2", "z"]

# case -> (data set, covariates, fit_cox keyword arguments naming columns, R call)
CASES: dict[str, tuple[str, list[str], dict[str, Any], str]] = {
    "heart": (
        "heart", HEART, {"start": "start", "stop": "stop", "event": "event"},
        "coxph(Surv(start, stop, event) ~ transplant + age + year + surgery, data = heart)",
    ),
    "heart_cluster": (
        "heart", HEART, {"start": "start", "stop": "stop", "event": "event", "cluster": "id"},
        "coxph(Surv(start, stop, event) ~ transplant + age + year + surgery + cluster(id), heart)",
    ),
    "jasa_naive": (
        "jasa", ["transplant"], {"stop": "futime", "event": "fustat"},
        "coxph(Surv(futime, fustat) ~ transplant, data = jasa)",
    ),
    "bladder2_ag": (
        "bladder2", BLADDER, {"start": "start", "stop": "stop", "event": "event", "cluster": "id"},
        "coxph(Surv(start, stop, event) ~ rx + number + size + cluster(id), data = bladder2)",
    ),
    "bladder_wlw": (
        "bladder", BLADDER, {"stop": "stop", "event": "event", "strata": "enum", "cluster": "id"},
        "coxph(Surv(stop, event) ~ rx + number + size + strata(enum) + cluster(id), bladder)",
    ),
    "colon_cluster": (
        "colon", COLON, {"stop": "time", "event": "status", "cluster": "id"},
        "coxph(Surv(time, status) ~ rx + extent + node4 + cluster(id), data = colon)",
    ),
    "colon_strata_cluster": (
        "colon", COLON, {"stop": "time", "event": "status", "strata": "etype", "cluster": "id"},
        "coxph(Surv(time, status) ~ rx + extent + node4 + strata(etype) + cluster(id), colon)",
    ),
    "lung": (
        "lung", LUNG, {"stop": "time", "event": "status"},
        "coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung2)",
    ),
    "lung_robust": (
        "lung", LUNG, {"stop": "time", "event": "status", "robust": True},
        "coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung2, robust = TRUE)",
    ),
    "lung_weighted": (
        "lung", LUNG, {"stop": "time", "event": "status", "weights": "w"},
        "coxph(Surv(time, status) ~ age + sex + ph.ecog, lung2, weights = w, robust = FALSE)",
    ),
    "lung_weighted_robust": (
        "lung", LUNG, {"stop": "time", "event": "status", "weights": "w", "robust": True},
        "coxph(Surv(time, status) ~ age + sex + ph.ecog, lung2, weights = w, robust = TRUE)",
    ),
    "lung_strata": (
        "lung", ["age", "ph.ecog"], {"stop": "time", "event": "status", "strata": "sex"},
        "coxph(Surv(time, status) ~ age + ph.ecog + strata(sex), data = lung2)",
    ),
    "veteran": (
        "veteran", ["trt", "karno", "age"], {"stop": "time", "event": "status"},
        "coxph(Surv(time, status) ~ trt + karno + age, data = veteran)",
    ),
    "sim_cluster": (
        "sim", SIM, {"start": "start", "stop": "stop", "event": "event", "cluster": "id"},
        "coxph(Surv(start, stop, event) ~ x1 + x2 + z + cluster(id), data = sim)",
    ),
    "sim_weighted_strata": (
        "sim", SIM,
        {"start": "start", "stop": "stop", "event": "event", "cluster": "id", "weights": "w",
         "strata": "site"},
        "coxph(Surv(start, stop, event) ~ x1 + x2 + z + strata(site) + cluster(id), sim, weights = w)",
    ),
}  # fmt: skip

# cox.zph(fit) with R's defaults (transform = "km", terms = TRUE); fit = the case's model
# without cluster(); "sim" is coxph(Surv(start, stop, event) ~ x1 + x2 + z, data = sim).
ZPH_CASES = [
    "heart",
    "lung",
    "lung_weighted",
    "lung_strata",
    "veteran",
    "sim",
    "sim_weighted_strata",
]


# what lifelines_fits.fit_cox_fixed fits: one row per subject, no weights, strata or clusters
LIFELINES_CASES = ("jasa_naive", "lung", "veteran")
ENGINE_CASES = [(c, "in-house") for c in CASES] + [(c, "lifelines") for c in LIFELINES_CASES]


def load(name: str) -> pl.DataFrame:
    """One of the data sets written by cox_reference.R."""
    return pl.read_csv(DATA / f"cox_{name}.csv")


def fit_case(case: str, **overrides: Any) -> Any:
    """Fit a CASES entry with fit_cox."""
    if case == "sim":
        spec = ("sim", SIM, {"start": "start", "stop": "stop", "event": "event"}, "")
    else:
        spec = CASES[case]
    data, covariates, columns, _ = spec
    df = load(data)
    kwargs = {k: (df[v] if isinstance(v, str) else v) for k, v in columns.items()}
    kwargs.pop("cluster", None) if overrides.pop("no_cluster", False) else None
    kwargs.update(overrides)
    stop, event = kwargs.pop("stop"), kwargs.pop("event")
    return fit_cox(stop, event, df.select(covariates).to_numpy(), names=covariates, **kwargs)


def fit_engine(case: str, engine: str) -> Any:
    """A CASES entry fitted by fit_cox or, for LIFELINES_CASES, by lifelines."""
    if engine == "in-house":
        return fit_case(case)
    data, covariates, columns, _ = CASES[case]
    df = load(data)
    x = df.select(covariates).to_numpy()
    return lifelines_fits.fit_cox_fixed(
        df[columns["stop"]], df[columns["event"]], x, names=covariates
    )


def reference(case: str) -> pl.DataFrame:
    """R's rows for one case."""
    fits = pl.read_csv(REFERENCE / "fits.csv", null_values="NA")
    return fits.filter(pl.col("case") == case)


def rel(ours: Any, theirs: Any) -> float:
    """Largest relative difference."""
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    return float(np.max(np.abs(ours - theirs) / np.abs(theirs)))


@pytest.mark.parametrize(("case", "engine"), ENGINE_CASES)
def test_coefficients_and_loglik_match_r(case: str, engine: str) -> None:
    """Coefficients and log-likelihoods to 1e-6 relative (observed ~1e-13); R call in CASES."""
    fit, ref, r_call = fit_engine(case, engine), reference(case), CASES[case][3]
    assert fit.names == tuple(ref["term"])
    assert rel(fit.coef, ref["coef"]) < 1e-6, r_call
    assert rel(fit.loglik, ref["loglik"][0]) < 1e-6
    assert rel(fit.loglik_null, ref["loglik_null"][0]) < 1e-6
    assert fit.events == ref["events"][0]
    if engine == "in-house":  # lifelines does not report its iterations
        assert fit.iterations == ref["iter"][0]  # same Newton path as R's agfit4/coxfit6
    assert fit.converged


@pytest.mark.parametrize(("case", "engine"), ENGINE_CASES)
def test_standard_errors_match_r(case: str, engine: str) -> None:
    """Model-based and robust (sandwich, clustered) SEs to 1e-4 relative (observed ~1e-14)."""
    fit, ref, r_call = fit_engine(case, engine), reference(case), CASES[case][3]
    assert rel(fit.se_model, ref["se_model"]) < 1e-4, r_call
    if ref["se_robust"].null_count() == 0:
        assert fit.robust
        assert rel(fit.se, ref["se_robust"]) < 1e-4, r_call
    else:
        assert not fit.robust
        np.testing.assert_array_equal(fit.se, fit.se_model)


def test_n_counts_clusters_not_rows() -> None:
    """heart has 172 rows for 103 patients; with cluster the fit counts patients."""
    assert fit_case("heart").n == 172
    assert fit_case("heart_cluster").n == 103


def test_time_varying_transplant_removes_immortal_time_bias() -> None:
    """HR of transplant: ~0.27 counted from day one (jasa), ~0.99 as time-varying (heart)."""
    # coxph(Surv(futime, fustat) ~ transplant, data = jasa)             -> coef -1.3234448
    # coxph(Surv(start, stop, event) ~ transplant + ..., data = heart)  -> coef -0.0102508
    naive, tv = fit_case("jasa_naive"), fit_case("heart")
    naive_hr, tv_hr = wald(naive.coef[0], naive.se[0]), wald(tv.coef[0], tv.se[0])
    assert naive_hr["hr"] == pytest.approx(math.exp(-1.3234448481842183), rel=1e-9)
    assert tv_hr["hr"] == pytest.approx(math.exp(-0.010250772409083765), rel=1e-9)
    assert naive_hr["p"] < 1e-6 < 0.9 < tv_hr["p"]


@pytest.mark.parametrize("case", ZPH_CASES)
def test_ph_test_matches_cox_zph(case: str) -> None:
    """cox.zph(fit) chi-squares and p-values to 1e-4 relative (observed ~1e-12)."""
    table = ph_test(fit_case(case, no_cluster=True))
    zph = pl.read_csv(REFERENCE / "zph.csv").filter(pl.col("case") == case)
    assert table["term"].to_list() == zph["term"].to_list()
    assert rel(table["chisq"], zph["chisq"]) < 1e-4
    assert rel(table["p"], zph["p"]) < 1e-4
    assert table["df"].to_list() == zph["df"].to_list()


def test_ph_test_flags_karnofsky_in_veteran() -> None:
    """cox.zph(coxph(Surv(time, status) ~ trt + karno + age, veteran)): karno p = 0.00053."""
    table = ph_test(fit_case("veteran"))
    p = dict(zip(table["term"], table["p"], strict=True))
    assert p["karno"] < 0.001 < 0.1 < p["trt"]


@pytest.mark.parametrize("case", ZPH_CASES)
def test_scaled_schoenfeld_matches_cox_zph(case: str) -> None:
    """cox.zph(fit)$time, $x and $y row for row; $y to 1e-8 relative (observed ~1e-11)."""
    # R: z <- cox.zph(fit); z$time, z$x, z$y  (fit as in ZPH_CASES; lung and veteran are
    # coxph(Surv(time, status) ~ age + sex + ph.ecog, lung2) and ~ trt + karno + age, veteran)
    fit = fit_case(case, no_cluster=True)
    time, km, resid = scaled_schoenfeld(fit)
    ref = pl.read_csv(REFERENCE / f"schoenfeld_{case}.csv")
    assert resid.shape == (ref.height, len(fit.names)) == (fit.events, len(fit.names))
    np.testing.assert_array_equal(time, ref["time"].to_numpy())
    np.testing.assert_allclose(km, ref["km"].to_numpy(), rtol=0, atol=1e-12)
    assert rel(resid, ref.select(fit.names).to_numpy()) < 1e-8


def tiny_fit() -> Any:
    """14 rows, 11 events (a tie at days 3 and 8), one covariate."""
    time = [2, 3, 3, 5, 6, 7, 8, 8, 9, 11, 12, 13, 15, 16]
    event = [1, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 0, 1, 1]
    x = [0.5, 1.2, -0.3, 0.8, -1.0, 0.1, 2.0, -0.7, 0.4, -0.2, 1.5, 0.9, -1.3, 0.6]
    return fit_cox(np.array(time, float), np.array(event), np.array(x), names=["x"])


def test_schoenfeld_smooth_bins_by_time_rank() -> None:
    """11 events in 3 bins by time rank: 4, 4 and 3 events; mean +/- 1.96 SE within each."""
    fit = tiny_fit()
    times, _, resid = scaled_schoenfeld(fit)
    np.testing.assert_array_equal(times, [2, 3, 3, 6, 7, 8, 8, 11, 12, 15, 16])
    smooth = scaled_schoenfeld_smooth(fit, "x", bins=3, min_events=3)
    assert smooth["n"] == [4, 4, 3]
    np.testing.assert_allclose(smooth["time_days"], [3.5, 8.5, 43 / 3])
    for k, part in enumerate((slice(0, 4), slice(4, 8), slice(8, 11))):
        r = resid[part, 0]
        half = 1.959963984540054 * r.std(ddof=1) / math.sqrt(r.size)
        assert smooth["residual_mean"][k] == pytest.approx(r.mean(), rel=1e-12)
        assert smooth["residual_lower"][k] == pytest.approx(r.mean() - half, rel=1e-12)
        assert smooth["residual_upper"][k] == pytest.approx(r.mean() + half, rel=1e-12)
    assert smooth["beta"] == fit.coef[0]


def test_schoenfeld_smooth_keeps_bins_above_min_events() -> None:
    """Fewer bins rather than a bin under min_events; too few events at all is refused."""
    fit = tiny_fit()
    smooth = scaled_schoenfeld_smooth(fit, "x")  # bins=10, min_events=5 -> 2 bins
    assert smooth["n"] == [6, 5]
    assert set(smooth) == {
        "time_days", "residual_mean", "residual_lower", "residual_upper", "n", "beta"
    }  # fmt: skip
    with pytest.raises(CoxInputError, match="fewer than min_events"):
        scaled_schoenfeld_smooth(fit, "x", min_events=12)
    with pytest.raises(CoxInputError, match="not in the model"):
        scaled_schoenfeld_smooth(fit, "age")


def test_schoenfeld_smooth_shows_karnofsky_trend_in_veteran() -> None:
    """karno's effect wanes (cox.zph p = 0.00053): binned residuals rise from below beta."""
    smooth = scaled_schoenfeld_smooth(fit_case("veteran"), "karno", bins=4)
    assert sum(smooth["n"]) == 128
    means = smooth["residual_mean"]
    assert means[0] < smooth["beta"] < means[-1]
    assert smooth["time_days"] == sorted(smooth["time_days"])


def test_matches_lifelines_on_lung() -> None:
    """Same estimates as lifelines' CoxPHFitter (Efron) fitted to tight tolerance."""
    from lifelines import CoxPHFitter

    # With fit_options precision=1e-10 lifelines stops on its Newton decrement 3.6e-6 (relative)
    # short of the maximum (fit_cox with tol=1e-15 and R both agree with the value below), so
    # ask it for precision=1e-14 and full Newton steps.
    lung = load("lung")
    cph = CoxPHFitter().fit(
        lung.select("time", "status", *LUNG).to_pandas(), "time", "status",
        fit_options={"precision": 1e-14, "r_precision": 1e-14, "step_size": 1.0},
    )  # fmt: skip
    fit = fit_case("lung")
    assert rel(fit.coef, cph.params_[LUNG].to_numpy()) < 1e-6
    assert rel(fit.se, cph.standard_errors_[LUNG].to_numpy()) < 1e-6
    assert rel(fit.loglik, cph.log_likelihood_) < 1e-6


def test_confidence_interval_and_wald_p() -> None:
    """The report's HR, CI and p (analysis.common.wald): exp(coef -/+ z se) and the two-sided
    Wald test, as R's summary(fit)."""
    fit = fit_case("lung")
    for coef, se in zip(fit.coef, fit.se, strict=True):
        result = wald(float(coef), float(se))
        assert result["hr"] == pytest.approx(math.exp(coef), rel=1e-12)
        assert result["ci_lower"] == pytest.approx(math.exp(coef - 1.959963984540054 * se))
        assert result["ci_upper"] == pytest.approx(math.exp(coef + 1.959963984540054 * se))
        # summary(coxph(Surv(time, status) ~ age + sex + ph.ecog, lung2))$coefficients[, 5]
        assert result["p"] == pytest.approx(math.erfc(abs(coef / se) / math.sqrt(2)), rel=1e-9)


def test_row_order_does_not_matter() -> None:
    """Shuffling rows changes nothing (the design sorts once, internally)."""
    df = load("sim").sample(fraction=1.0, shuffle=True, seed=7)
    fit = fit_cox(
        df["stop"], df["event"], df.select(SIM).to_numpy(), start=df["start"],
        cluster=df["id"], weights=df["w"], strata=df["site"],
    )  # fmt: skip
    ref = reference("sim_weighted_strata")
    assert rel(fit.coef, ref["coef"]) < 1e-6
    assert rel(fit.se, ref["se_robust"]) < 1e-4


# --- bad input ----------------------------------------------------------------------------------


def lung_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """lung's time, status and covariates."""
    lung = load("lung")
    time, status = lung["time"].to_numpy(), lung["status"].to_numpy()
    return time.astype(float), status.astype(float), lung.select(LUNG).to_numpy().astype(float)


def test_no_events_raises() -> None:
    """A Cox model needs at least one event."""
    time, _, x = lung_arrays()
    with pytest.raises(ValueError, match="no events"):
        fit_cox(time, np.zeros_like(time), x)


def test_zero_rows_raise() -> None:
    """Zero rows: no events."""
    with pytest.raises(ValueError, match="no events among 0 rows"):
        fit_cox(np.array([]), np.array([]), np.empty((0, 2)))


def test_nan_raises() -> None:
    """NaN in a covariate is refused with a count."""
    time, status, x = lung_arrays()
    x[3, 1] = np.nan
    with pytest.raises(ValueError, match="1 value"):
        fit_cox(time, status, x)


def test_negative_duration_raises() -> None:
    """stop < 0, or stop <= start, is refused."""
    time, status, x = lung_arrays()
    time[0] = -1
    with pytest.raises(ValueError, match="negative duration"):
        fit_cox(time, status, x)
    with pytest.raises(ValueError, match="stop <= start"):
        fit_cox(np.abs(time), status, x, start=np.full(time.size, 5.0))


def test_constant_covariate_raises() -> None:
    """A constant column makes the information singular; the message names it."""
    time, status, x = lung_arrays()
    x[:, 1] = 1.0
    with pytest.raises(CoxInputError, match="sex"):
        fit_cox(time, status, x, names=LUNG)


def test_collinear_covariates_raise() -> None:
    """Exact collinearity is a singular information matrix."""
    time, status, x = lung_arrays()
    x = np.column_stack([x, x[:, 0] + 2 * x[:, 2]])
    with pytest.raises(ValueError, match="singular"):
        fit_cox(time, status, x)


def test_other_bad_inputs_raise() -> None:
    """Events must be 0/1, weights >= 0, and every input one entry per row."""
    time, status, x = lung_arrays()
    with pytest.raises(ValueError, match="0/1"):
        fit_cox(time, status * 2, x)
    with pytest.raises(ValueError, match="negative"):
        fit_cox(time, status, x, weights=np.full(time.size, -1.0))
    with pytest.raises(ValueError, match="rows like stop"):
        fit_cox(time, status[:-1], x)


def test_monotone_likelihood_warns() -> None:
    """All events in one group: the coefficient runs to infinity, as R warns."""
    time = np.arange(1.0, 21.0)
    group = (time <= 10).astype(float)
    event = np.r_[np.ones(10), np.zeros(10)]
    with pytest.warns(UserWarning, match="may be infinite"):
        fit_cox(time, event, group)


def test_non_convergence_warns() -> None:
    """Running out of iterations warns and marks the fit not converged."""
    time, status, x = lung_arrays()
    with pytest.warns(UserWarning, match="did not converge"):
        fit = fit_cox(time, status, x, max_iter=1)
    assert not fit.converged


def test_converged_fit_is_silent() -> None:
    """No warnings on a well-posed model."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit_case("veteran")


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(8, 60), counting=st.booleans(),
       weighted=st.booleans(), robust=st.booleans())  # fmt: skip
def test_fit_layout_is_fit_cox_on_the_same_rows(
    seed: int, n: int, counting: bool, weighted: bool, robust: bool
) -> None:
    """One layout, two sets of covariate columns (as two completed datasets): each fit is
    fit_cox's on the same rows, bit for bit, with tied times, delayed entry and weights."""
    rng = np.random.default_rng(seed)
    start = rng.integers(0, 5, n).astype(float) if counting else None
    stop = (start if start is not None else 0) + rng.integers(1, 12, n).astype(float)
    event = rng.random(n) < 0.5
    event[0] = True
    w = rng.uniform(0.2, 3, n) if weighted else None
    layout = build_layout(stop, event, start, None)
    for _ in range(2):
        x = np.column_stack([rng.integers(0, 2, n), rng.normal(size=n)]).astype(float)
        x[:2, 0] = (0, 1)  # neither column constant
        try:
            want = fit_cox(stop, event, x, start=start, weights=w, robust=robust)
        except (CoxInputError, ArithmeticError) as exc:  # e.g. a singular information
            with pytest.raises(type(exc), match=re.escape(str(exc))):
                fit_layout(layout, x, weights=w, robust=robust)
            continue
        got = fit_layout(layout, x, weights=w, robust=robust)
        for field in ("coef", "se", "se_model", "var", "var_model"):
            assert np.array_equal(getattr(got, field), getattr(want, field)), field
        scalars = ("loglik", "loglik_null", "n", "events", "iterations", "converged")
        assert [getattr(got, f) for f in scalars] == [getattr(want, f) for f in scalars]


def test_fit_layout_checks_the_new_columns() -> None:
    """A NaN or a constant column in the replacement covariates is refused as fit_cox does."""
    layout = build_layout(np.arange(1.0, 7.0), np.array([1, 0, 1, 1, 0, 1], bool), None, None)
    with pytest.raises(CoxInputError, match="NaN"):
        fit_layout(layout, np.array([1.0, np.nan, 2, 3, 4, 5]))
    with pytest.raises(CoxInputError, match="constant"):
        fit_layout(layout, np.ones(6))
    with pytest.raises(CoxInputError, match="rows like stop"):
        fit_layout(layout, np.arange(5.0))
