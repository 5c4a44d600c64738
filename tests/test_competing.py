"""registry.models.competing against R's cmprsk 2.2-11 (cuminc, timepoints, crr).

Golden values come from tests/reference/competing_reference.R (run it from the repository
root); its data sets are tests/data/cr_*.csv with columns time, status (0 censored, 1 event of
interest, 2 competing), group, x1, x2.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from registry.analysis.common import wald
from registry.errors import ModelFitError
from registry.models.competing import (
    Z95,
    cumulative_incidence,
    fit_fine_gray,
    gray_test,
)

DATA = Path(__file__).parent / "data"
REFERENCE = Path(__file__).parent / "reference" / "competing"
DATASETS = ("tiny", "mgus2", "synthetic")

# The 10-row hand example (also tests/data/cr_tiny.csv): ties between both causes and a
# censoring at day 2, and between an event and a censoring at day 4.
TINY_TIME = [2, 2, 2, 3, 4, 4, 5, 5, 6, 7]
TINY_STATUS = [1, 2, 0, 1, 0, 1, 2, 2, 1, 0]


def load(name: str) -> pl.DataFrame:
    """One of the R-written data sets."""
    return pl.read_csv(DATA / f"cr_{name}.csv", schema_overrides={"group": pl.String})


def reference(name: str) -> pl.DataFrame:
    """One R result file, numbers parsed from %.17g text."""
    return pl.read_csv(REFERENCE / name, schema_overrides={"group": pl.String}, null_values="NA")


def arrays(d: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """time, status, group and the (x1, x2) matrix."""
    x = d.select("x1", "x2").to_numpy()
    return d["time"].to_numpy(), d["status"].to_numpy(), d["group"].to_numpy(), x


def right_limits(curve: pl.DataFrame) -> pl.DataFrame:
    """cuminc's corner layout (each time twice) reduced to the value from each time on."""
    return curve.with_row_index().sort("index").group_by("time", maintain_order=True).last()


def test_tiny_example_by_hand() -> None:
    # n(t), events by cause, censored; S = overall KM; CIF_k += S(t-) d_k / n
    # t=2: n=10, d1=1, d2=1, c=1: CIF1 = 1/10 = 0.1,       CIF2 = 0.1,  S = 8/10
    # t=3: n=7,  d1=1:            CIF1 += (8/10)/7  = 3/14,             S = 24/35
    # t=4: n=6,  d1=1, c=1:       CIF1 += (24/35)/6 = 23/70,            S = 4/7
    # t=5: n=4,  d2=2:                              CIF2 += (4/7)(2/4) = 27/70, S = 2/7
    # t=6: n=2,  d1=1:            CIF1 += (2/7)/2   = 33/70,            S = 1/7
    # t=7: censored. Check: 33/70 + 27/70 + 1/7 = 1.
    progression = cumulative_incidence(TINY_TIME, TINY_STATUS, cause=1)
    death = cumulative_incidence(TINY_TIME, TINY_STATUS, cause=2)
    np.testing.assert_array_equal(progression.times, [0, 2, 3, 4, 6])
    np.testing.assert_allclose(progression.cif, [0, 0.1, 3 / 14, 23 / 70, 33 / 70], atol=1e-15)
    np.testing.assert_array_equal(death.times, [0, 2, 5])
    np.testing.assert_allclose(death.cif, [0, 0.1, 27 / 70], atol=1e-15)
    # timepoints(cuminc(time, status), c(1, 2, 4.5, 7, 8)): NA after the last follow-up (7)
    np.testing.assert_allclose(
        progression.at([1, 2, 4.5, 7, 8]), [0, 0.1, 23 / 70, 33 / 70, np.nan], atol=1e-15
    )


@pytest.mark.parametrize("name", DATASETS)
def test_cuminc_curves_match_r(name: str) -> None:
    # cuminc(d$time, d$status, d$group): est and var of every group and cause, at every time
    time, status, group, _ = arrays(load(name))
    curves = reference(f"{name}_cuminc.csv")
    for (label, cause), curve in curves.group_by("group", "cause", maintain_order=True):
        rows = group == label
        fit = cumulative_incidence(time[rows], status[rows], cause=int(cause))
        steps = right_limits(curve)
        days = steps["time"].to_numpy()
        assert set(fit.times) <= set(days)
        assert fit.max_time == days.max()
        np.testing.assert_allclose(fit.at(days), steps["est"].to_numpy(), rtol=0, atol=1e-9)
        np.testing.assert_allclose(fit.variance_at(days), steps["var"].to_numpy(), rtol=1e-6)


@pytest.mark.parametrize("name", DATASETS)
def test_pooled_curves_match_r(name: str) -> None:
    # cuminc(d$time, d$status) without groups: the call the report makes on each arm's rows
    # (analysis.curves.competing_risks); est to 1e-9 absolute, var to 1e-6 relative
    time, status, _, _ = arrays(load(name))
    curves = reference(f"{name}_pooled.csv")
    assert curves["group"].unique().to_list() == ["1"]  # cuminc's label for "no groups"
    for (cause,), curve in curves.group_by("cause", maintain_order=True):
        fit = cumulative_incidence(time, status, cause=int(cause))
        steps = right_limits(curve)
        days = steps["time"].to_numpy()
        assert set(fit.times) <= set(days) and fit.max_time == days.max()
        np.testing.assert_allclose(fit.at(days), steps["est"].to_numpy(), rtol=0, atol=1e-9)
        np.testing.assert_allclose(fit.variance_at(days), steps["var"].to_numpy(), rtol=1e-6)


@pytest.mark.parametrize("name", DATASETS)
def test_pooled_timepoints_match_r(name: str) -> None:
    # timepoints(cuminc(d$time, d$status), times)   (no groups)
    time, status, _, _ = arrays(load(name))
    expected = reference(f"{name}_pooled_timepoints.csv")
    for (cause,), part in expected.group_by("cause", maintain_order=True):
        fit = cumulative_incidence(time, status, cause=int(cause))
        days = part["time"].to_numpy()
        np.testing.assert_allclose(fit.at(days), part["est"].to_numpy(), atol=1e-9)
        # NA in R (after the last follow-up time) is NaN here, and compares equal.
        np.testing.assert_allclose(fit.variance_at(days), part["var"].to_numpy(), rtol=1e-6)


def test_mgus2_progression_matches_the_issue() -> None:
    # round(timepoints(cuminc(etime, event), c(60, 120, 240))$est, 5)  ->  0.03410 0.06372 0.09981
    time, status, _, _ = arrays(load("mgus2"))
    fit = cumulative_incidence(time, status, cause=1)
    np.testing.assert_array_equal(np.round(fit.at([60, 120, 240]), 5), [0.0341, 0.06372, 0.09981])


@pytest.mark.parametrize("name", DATASETS)
def test_timepoints_by_group_match_r(name: str) -> None:
    # timepoints(cuminc(d$time, d$status, d$group), times)
    time, status, group, _ = arrays(load(name))
    expected = reference(f"{name}_timepoints.csv")
    for (label, cause), part in expected.group_by("group", "cause", maintain_order=True):
        rows = group == label
        fit = cumulative_incidence(time[rows], status[rows], cause=int(cause))
        days = part["time"].to_numpy()
        np.testing.assert_allclose(fit.at(days), part["est"].to_numpy(), atol=1e-9)


@pytest.mark.parametrize("name", DATASETS)
def test_gray_test_matches_r(name: str) -> None:
    # cuminc(d$time, d$status, d$group)$Tests   (rho = 0)
    time, status, group, _ = arrays(load(name))
    for row in reference(f"{name}_tests.csv").iter_rows(named=True):
        stat, df, p = gray_test(time, status, group, cause=int(row["cause"]))
        assert df == row["df"]
        assert stat == pytest.approx(row["stat"], rel=1e-6)
        # R's 1 - pchisq() loses digits for small p; scipy's sf does not.
        assert p == pytest.approx(row["pv"], rel=1e-6)


@pytest.mark.parametrize("name", DATASETS)
def test_fine_gray_matches_crr(name: str) -> None:
    # crr(d$time, d$status, cbind(x1 = d$x1, x2 = d$x2), failcode = k, cencode = 0)
    time, status, _, x = arrays(load(name))
    expected = reference(f"{name}_crr.csv")
    variances = reference(f"{name}_crr_var.csv")
    for (cause,), part in expected.group_by("cause", maintain_order=True):
        fit = fit_fine_gray(time, status, x, cause=int(cause), names=["x1", "x2"])
        np.testing.assert_allclose(fit.coef, part["coef"].to_numpy(), rtol=1e-6)
        np.testing.assert_allclose(fit.se, part["se"].to_numpy(), rtol=1e-4)
        var = variances.filter(pl.col("cause") == cause)["var"].to_numpy().reshape(2, 2)
        np.testing.assert_allclose(fit.var, var, rtol=1e-4)
        assert fit.loglik == pytest.approx(part["loglik"][0], rel=1e-9)
        assert fit.converged == part["converged"][0]
        assert fit.n == part["n"][0]
        assert fit.events == int(np.sum(status == cause))


def test_fine_gray_summary() -> None:
    # summary(crr(...)): exp(coef), exp(coef -/+ 1.96 se), p = 2 (1 - pnorm(|coef / se|))
    d = load("mgus2")
    covariates = d.select(age="x1", male="x2")
    fit = fit_fine_gray(d["time"].to_numpy(), d["status"].to_numpy(), covariates)
    assert fit.names == ("age", "male")
    male = wald(float(fit.coef[1]), float(fit.se[1]))  # the report's HR, CI and p
    assert male["ci_lower"] == pytest.approx(math.exp(fit.coef[1] - Z95 * fit.se[1]))
    assert male["p"] == pytest.approx(fit.p[1], rel=1e-12)
    assert 0.05 < fit.p[1] < 0.5  # male: HR 0.77, not significant (R: p = 0.16)


def test_same_input_gives_identical_results() -> None:
    time, status, group, x = arrays(load("synthetic"))
    first = cumulative_incidence(time, status)
    second = cumulative_incidence(time.copy(), status.copy())
    for field in ("times", "cif", "variance", "ci_lower", "ci_upper"):
        np.testing.assert_array_equal(getattr(first, field), getattr(second, field))
    assert gray_test(time, status, group) == gray_test(time, status, group)
    np.testing.assert_array_equal(
        fit_fine_gray(time, status, x).var, fit_fine_gray(time, status, x).var
    )


def test_row_order_does_not_change_results() -> None:
    time, status, group, x = arrays(load("synthetic"))
    weights = 0.5 + (np.arange(time.size) % 3) / 2
    order = np.random.default_rng(7).permutation(time.size)
    a = cumulative_incidence(time, status, weights=weights)
    b = cumulative_incidence(time[order], status[order], weights=weights[order])
    for field in ("times", "cif", "variance"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert gray_test(time, status, group) == gray_test(time[order], status[order], group[order])
    fit, shuffled = (
        fit_fine_gray(time, status, x),
        fit_fine_gray(time[order], status[order], x[order]),
    )
    np.testing.assert_array_equal(fit.coef, shuffled.coef)
    np.testing.assert_array_equal(fit.var, shuffled.var)


def test_integer_weights_equal_repeated_rows() -> None:
    # Weights are frequency weights: weight 2 is the row twice (variance included).
    weights = np.array([1, 2, 1, 3, 1, 1, 2, 1, 1, 2])
    repeated = np.repeat(np.arange(10), weights)
    weighted = cumulative_incidence(TINY_TIME, TINY_STATUS, weights=weights)
    expanded = cumulative_incidence(np.array(TINY_TIME)[repeated], np.array(TINY_STATUS)[repeated])
    np.testing.assert_array_equal(weighted.times, expanded.times)
    np.testing.assert_allclose(weighted.cif, expanded.cif, rtol=1e-14)
    np.testing.assert_allclose(weighted.variance, expanded.variance, rtol=1e-12)


def test_confidence_limits_are_log_minus_log() -> None:
    fit = cumulative_incidence(TINY_TIME, TINY_STATUS)
    f, se = fit.cif[2], np.sqrt(fit.variance[2])
    assert fit.ci_lower[2] == pytest.approx(f ** np.exp(Z95 * se / (f * abs(np.log(f)))))
    assert fit.ci_upper[2] == pytest.approx(f ** np.exp(-Z95 * se / (f * abs(np.log(f)))))
    assert np.all((fit.ci_lower <= fit.cif) & (fit.cif <= fit.ci_upper))
    assert fit.ci_lower[0] == fit.ci_upper[0] == 0


def test_no_events_of_the_cause() -> None:
    # cuminc(c(3, 5, 5, 8), c(0, 2, 0, 0)): cause 1 stays 0 (x = 0, 8; est = var = 0)
    time, status = [3, 5, 5, 8], [0, 2, 0, 0]
    fit = cumulative_incidence(time, status, cause=1)
    np.testing.assert_array_equal(fit.times, [0])
    np.testing.assert_array_equal(fit.at([0, 8, 9]), [0, 0, np.nan])
    stat, df, p = gray_test(time, status, ["a", "b", "a", "b"], cause=1)
    assert np.isnan(stat) and df == 1 and np.isnan(p)
    with pytest.raises(ModelFitError, match="No events of cause 1"):
        fit_fine_gray(time, status, np.ones((4, 1)))


def test_zero_rows() -> None:
    fit = cumulative_incidence([], [])
    np.testing.assert_array_equal(fit.cif, [0])
    assert np.isnan(fit.at([1])[0])
    with pytest.raises(ModelFitError, match="No events"):
        fit_fine_gray([], [], np.empty((0, 2)))


def test_bad_input_is_explained() -> None:
    with pytest.raises(ModelFitError, match=r"time must be finite and > 0: 1 of 3 rows"):
        cumulative_incidence([1, 0, 2], [1, 1, 0])
    with pytest.raises(ModelFitError, match="status must be"):
        cumulative_incidence([1, 2], [1, -1])
    with pytest.raises(ModelFitError, match="two groups"):
        gray_test([1, 2], [1, 0], ["a", "a"])
    with pytest.raises(ModelFitError, match="singular"):
        fit_fine_gray([1, 2, 3], [1, 1, 0], np.ones((3, 1)))


def test_lifelines_agrees_without_ties() -> None:
    # lifelines jitters tied times; with distinct times its point estimates must equal ours.
    from lifelines import AalenJohansenFitter

    rng = np.random.default_rng(3)
    time = rng.permutation(np.arange(1, 301)) + rng.uniform(0, 0.5, 300)
    status = rng.choice([0, 1, 2], 300, p=[0.3, 0.4, 0.3])
    ours = cumulative_incidence(time, status, cause=1)
    theirs = AalenJohansenFitter(calculate_variance=False).fit(time, status, event_of_interest=1)
    curve = theirs.cumulative_density_.iloc[:, 0]
    np.testing.assert_allclose(ours.at(curve.index.to_numpy()), curve.to_numpy(), atol=1e-12)


EDGE = reference("edge_crr.csv")  # tests/reference/fine_gray_edge_reference.R


def _edge(case: str) -> dict[str, object]:
    return EDGE.filter(pl.col("case") == case).row(0, named=True)


def test_fine_gray_without_events_in_one_arm_does_not_converge_as_crr() -> None:
    # crr(time, status, cbind(treated = arm), failcode = 1, cencode = 0), the vertebroplasty
    # arm's cause-1 events made censorings: converged FALSE, coef -11.1 after 10 iterations
    d = load("synthetic")
    arm = (d["group"] == "vertebroplasty").cast(pl.Float64).to_numpy()
    status = d["status"].to_numpy().copy()
    status[(arm == 1) & (status == 1)] = 0
    fit = fit_fine_gray(d["time"].to_numpy(), status, arm[:, None], names=["treated"])
    expected = _edge("no_events_in_one_arm")
    assert fit.converged is False and expected["converged"] is False
    assert fit.coef[0] == pytest.approx(expected["coef"], rel=1e-6)
    assert fit.se[0] == pytest.approx(expected["se"], rel=1e-4)


@pytest.mark.parametrize("value", [0.1, 1 / 3, 7.0, -2.5])
def test_fine_gray_refuses_a_constant_covariate(value: float) -> None:
    # crr(time, status, cbind(c = rep(0.1, n)), ...) "converges" at coef 0, se 8.8e12; before
    # the check ours returned coef 1.85e15 "converged". Refused, as fit_cox refuses it.
    assert _edge("constant_0.1")["se"] > 1e12  # type: ignore[operator]
    time, status, _, x = arrays(load("synthetic"))
    with pytest.raises(ModelFitError, match=r"c are constant: .* singular"):
        fit_fine_gray(time, status, np.full((time.size, 1), value), names=["c"])
    beside = np.column_stack([x[:, 0], np.full(time.size, value)])
    with pytest.raises(ModelFitError, match="c are constant"):
        fit_fine_gray(time, status, beside, names=["x1", "c"])


def test_fine_gray_refuses_collinear_covariates() -> None:
    time, status, _, x = arrays(load("synthetic"))
    collinear = np.column_stack([x[:, 0], 0.1 * x[:, 0]])
    with pytest.raises(ModelFitError, match="singular"):
        fit_fine_gray(time, status, collinear)
