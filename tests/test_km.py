"""Kaplan-Meier, log-rank, reverse-KM follow-up and RMST against R's survival package.

Golden values come from tests/reference/km_reference.R (R 4.2, survival 3.5-3), written to
tests/reference/km/ with sprintf("%.17g"); the input data sets are tests/data/km_*.csv.
Survival is compared to 1e-9 absolute; CIs, statistics and SEs to 1e-6 relative.
Curve tests run for both engines (the `fit` fixture): the in-house km.fit_km and
lifelines_fits.fit_km, lifelines' KaplanMeierFitter, which fits the report's unweighted curves.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from registry.errors import ModelFitError
from registry.models import lifelines_fits
from registry.models.km import (
    YEARS_DAYS,
    KaplanMeier,
    fit_km,
    logrank,
    median_follow_up,
    restricted_mean,
    rmst_difference,
)

HERE = Path(__file__).parent
DATASETS = ("lung", "synthetic")
RTOL = 1e-6
KmFit = Callable[..., KaplanMeier]
ENGINES: dict[str, KmFit] = {"in-house": fit_km, "lifelines": lifelines_fits.fit_km}


@pytest.fixture(params=sorted(ENGINES))
def fit(request: pytest.FixtureRequest) -> KmFit:
    """fit_km of each engine: both are held to the same R references."""
    return ENGINES[request.param]


def _data(name: str) -> pl.DataFrame:
    """An input data set: time, status (1 = event), group, stratum, weight."""
    return pl.read_csv(
        HERE / "data" / f"km_{name}.csv",
        null_values=["", "NA"],
        schema_overrides={"group": pl.String, "stratum": pl.String},
    )


def _ref(name: str) -> pl.DataFrame:
    """An R output file; every column but `group` / `test` is numeric (NA -> NaN)."""
    frame = pl.read_csv(HERE / "reference" / "km" / name, infer_schema_length=0)
    labels = {"group", "test"}
    return frame.with_columns(
        pl.col(c).replace("NA", "NaN").cast(pl.Float64) for c in frame.columns if c not in labels
    )


def _groups(data: pl.DataFrame) -> list[str]:
    return sorted(data["group"].unique().to_list())


def _close_where_r_defined(ours: np.ndarray, r: np.ndarray) -> None:
    """CIs to 1e-6 relative where R gives a number; R has NA at S = 1 and S = 0."""
    defined = ~np.isnan(r)
    np.testing.assert_allclose(ours[defined], r[defined], rtol=RTOL, atol=0)


def _check_curve(km_rows: slice, km: KaplanMeier, r: pl.DataFrame) -> None:
    """Compare a fitted curve (without its day-0 row) with one group of an R survfit."""
    np.testing.assert_array_equal(km.times[km_rows], r["time"].to_numpy())
    np.testing.assert_allclose(km.at_risk[km_rows], r["n_risk"].to_numpy(), atol=1e-9)
    np.testing.assert_allclose(km.events[km_rows], r["n_event"].to_numpy(), atol=1e-9)
    np.testing.assert_allclose(km.censored[km_rows], r["n_censor"].to_numpy(), atol=1e-9)
    np.testing.assert_allclose(km.survival[km_rows], r["surv"].to_numpy(), rtol=0, atol=1e-9)
    _close_where_r_defined(km.ci_lower[km_rows], r["lower"].to_numpy())
    _close_where_r_defined(km.ci_upper[km_rows], r["upper"].to_numpy())


@pytest.mark.parametrize("name", DATASETS)
def test_curves_by_group_match_r(name: str, fit: KmFit) -> None:
    # survfit(Surv(time, status) ~ group, conf.type = "log-log"): time, n.risk, n.event,
    # n.censor, surv, lower, upper
    data, ref = _data(name), _ref(f"{name}_survfit.csv")
    for group in _groups(data):
        sub = data.filter(pl.col("group") == group)
        km = fit(sub["time"], sub["status"])
        assert km.times[0] == 0 and km.survival[0] == 1 and km.at_risk[0] == sub.height
        _check_curve(slice(1, None), km, ref.filter(pl.col("group") == group))


@pytest.mark.parametrize("name", DATASETS)
def test_pooled_curve_matches_r(name: str, fit: KmFit) -> None:
    # survfit(Surv(time, status) ~ 1, conf.type = "log-log")
    data = _data(name)
    _check_curve(slice(1, None), fit(data["time"], data["status"]), _ref(f"{name}_pooled.csv"))


@pytest.mark.parametrize("name", DATASETS)
def test_survival_at_one_and_two_years_matches_r(name: str, fit: KmFit) -> None:
    # summary(survfit(Surv(time, status) ~ group, conf.type = "log-log"), times = c(365, 730))
    data, ref = _data(name), _ref(f"{name}_at.csv")
    for group in _groups(data):
        sub, r = data.filter(pl.col("group") == group), ref.filter(pl.col("group") == group)
        survival, lower, upper = fit(sub["time"], sub["status"]).at(YEARS_DAYS[:2])
        np.testing.assert_allclose(survival, r["surv"].to_numpy(), rtol=0, atol=1e-9)
        np.testing.assert_allclose(lower, r["lower"].to_numpy(), rtol=RTOL)
        np.testing.assert_allclose(upper, r["upper"].to_numpy(), rtol=RTOL)


@pytest.mark.parametrize("name", DATASETS)
def test_median_and_ci_match_r(name: str, fit: KmFit) -> None:
    # summary(survfit(Surv(time, status) ~ group, conf.type = "log-log"))$table:
    # median, 0.95LCL, 0.95UCL (as print(survfit))
    data, ref = _data(name), _ref(f"{name}_table.csv")
    for group in _groups(data):
        sub, r = data.filter(pl.col("group") == group), ref.filter(pl.col("group") == group)
        km = fit(sub["time"], sub["status"])
        assert (km.n, km.total_events) == (r["records"][0], r["events"][0])
        assert km.median == r["median"][0]
        assert km.median_ci == (r["lcl"][0], r["ucl"][0])


@pytest.mark.parametrize("name", DATASETS)
def test_pooled_median_and_restricted_mean_match_r(name: str) -> None:
    # summary(survfit(Surv(time, status) ~ 1, conf.type = "log-log"), rmean = 730)$table:
    # records, events, median and its CI to the day, rmean and se(rmean) to RTOL (1e-6)
    data, r = _data(name), _ref(f"{name}_pooled_table.csv")
    km = fit_km(data["time"], data["status"])
    assert (km.n, km.total_events) == (r["records"][0], r["events"][0])
    assert (km.median, km.median_ci) == (r["median"][0], (r["lcl"][0], r["ucl"][0]))
    mean, se = restricted_mean(km, 730)
    assert (mean, se) == pytest.approx((r["rmean"][0], r["se_rmean"][0]), rel=RTOL)


def test_median_exactly_at_half_takes_the_midpoint_like_r(fit: KmFit) -> None:
    # print(survfit(Surv(c(1, 2, 3, 4, 5, 6), c(1, 1, 1, 0, 1, 1)) ~ 1, conf.type = "log-log"))
    # -> median 4 (S = 0.5 from day 3 to day 5), 0.95LCL 1, 0.95UCL NA
    ref = _ref("tiny_table.csv")
    km = fit([1, 2, 3, 4, 5, 6], [1, 1, 1, 0, 1, 1])
    assert km.median == ref["median"][0] == 4.0
    assert km.median_ci == (ref["lcl"][0], None)
    mean, se = restricted_mean(km, 6)  # summary(..., rmean = 6)$table
    assert mean == pytest.approx(ref["rmean"][0], rel=RTOL)
    assert se == pytest.approx(ref["se_rmean"][0], rel=RTOL)


@pytest.mark.parametrize("name", DATASETS)
def test_logrank_matches_survdiff(name: str) -> None:
    # plain:      survdiff(Surv(time, status) ~ group)
    # stratified: survdiff(Surv(time, status) ~ group + strata(stratum)), stratum NA dropped
    # by_stratum: survdiff(Surv(time, status) ~ stratum), a 3- or 4-group test
    # p: pchisq(chisq, df, lower.tail = FALSE)
    data, ref = _data(name), _ref(f"{name}_logrank.csv")
    known = data.drop_nulls("stratum")
    results = {
        "plain": logrank(data["time"], data["status"], data["group"]),
        "stratified": logrank(
            known["time"], known["status"], known["group"], strata=known["stratum"]
        ),
        "by_stratum": logrank(known["time"], known["status"], known["stratum"]),
    }
    for row in ref.iter_rows(named=True):
        result = results[row["test"]]
        assert result.statistic == pytest.approx(row["chisq"], rel=RTOL)
        assert result.df == row["df"]
        assert result.p == pytest.approx(row["p"], rel=RTOL)


@pytest.mark.parametrize("name", DATASETS)
def test_median_follow_up_matches_reverse_km(name: str) -> None:
    # summary(survfit(Surv(time, 1 - status) ~ 1, conf.type = "log-log"))$table: median, CI
    data, r = _data(name), _ref(f"{name}_follow_up.csv")
    assert median_follow_up(data["time"], data["status"]) == (
        r["median"][0],
        r["lcl"][0],
        r["ucl"][0],
    )


@pytest.mark.parametrize("name", DATASETS)
def test_rmst_matches_r_rmean(name: str) -> None:
    # summary(survfit(Surv(time, status) ~ group), rmean = 730)$table: rmean, se(rmean);
    # the difference (second group minus first) and its normal CI are computed from them here.
    data, ref = _data(name), _ref(f"{name}_table.csv")
    result = rmst_difference(data["time"], data["status"], data["group"], tau=730)
    first, second = _groups(data)
    for group in (first, second):
        r = ref.filter(pl.col("group") == group)
        assert result.rmst_by_group[group] == pytest.approx(r["rmean"][0], rel=RTOL)
        assert result.se_by_group[group] == pytest.approx(r["se_rmean"][0], rel=RTOL)
    rmean, se = ref["rmean"].to_numpy(), ref["se_rmean"].to_numpy()
    diff, half = rmean[1] - rmean[0], 1.959963984540054 * np.hypot(*se)
    assert result.difference == pytest.approx(diff, rel=RTOL)
    assert (result.ci_lower, result.ci_upper) == pytest.approx((diff - half, diff + half), rel=RTOL)
    assert 0 < result.p < 0.01


@pytest.mark.parametrize("name", DATASETS)
def test_weighted_curves_match_r(name: str) -> None:
    # survfit(Surv(time, status) ~ group, weights = weight, conf.type = "log-log"): with
    # non-integer weights R uses the infinitesimal-jackknife (robust) variance, as fit_km does.
    data, ref = _data(name), _ref(f"{name}_weighted.csv")
    for group in _groups(data):
        sub = data.filter(pl.col("group") == group)
        km = fit_km(sub["time"], sub["status"], weights=sub["weight"])
        assert km.at_risk[0] == pytest.approx(sub["weight"].sum())
        _check_curve(slice(1, None), km, ref.filter(pl.col("group") == group))


def test_events_come_before_censorings_at_a_tied_time(fit: KmFit) -> None:
    km = fit([1, 1, 2, 3], [True, False, True, False])
    np.testing.assert_array_equal(km.times, [0, 1, 2, 3])
    np.testing.assert_array_equal(km.at_risk, [4, 4, 2, 1])
    np.testing.assert_array_equal(km.events, [0, 1, 1, 0])
    np.testing.assert_array_equal(km.censored, [0, 1, 0, 1])
    np.testing.assert_allclose(km.survival, [1, 0.75, 0.375, 0.375])


def test_at_is_a_right_continuous_step(fit: KmFit) -> None:
    km = fit([10, 20, 30], [1, 1, 0])
    survival, lower, upper = km.at([-1, 0, 9.9, 10, 15, 20, 30, 1000])
    np.testing.assert_allclose(survival, [1, 1, 1, 2 / 3, 2 / 3, 1 / 3, 1 / 3, np.nan])
    assert lower[0] == upper[0] == 1
    assert (lower[3:-1] < survival[3:-1]).all() and (upper[3:-1] > survival[3:-1]).all()
    assert np.isnan(lower[-1]) and np.isnan(upper[-1])  # past the last observed time


def test_all_censored_has_no_median_and_full_survival(fit: KmFit) -> None:
    km = fit([5, 6, 7], [0, 0, 0])
    assert km.median is None and km.median_ci == (None, None)
    np.testing.assert_array_equal(km.survival, 1.0)
    np.testing.assert_array_equal(km.ci_lower, 1.0)


def test_zero_rows(fit: KmFit) -> None:
    km = fit([], [])
    assert (km.n, km.total_events, km.median) == (0, 0, None)
    np.testing.assert_array_equal(km.times, [0.0])
    assert np.isnan(logrank([], [], []).p)
    assert median_follow_up([], []) == (None, None, None)


def test_day_zero_events_are_not_hidden_behind_an_extra_origin(fit: KmFit) -> None:
    km = fit([0, 0, 1], [1, 0, 1])
    np.testing.assert_array_equal(km.times, [0, 1])
    assert km.survival[0] == pytest.approx(2 / 3)
    assert km.at([-1])[0][0] == 1.0


def test_bad_input_is_refused_with_a_message(fit: KmFit) -> None:
    with pytest.raises(ModelFitError, match="durations are missing or < 0"):
        fit([1, -2], [1, 0])
    with pytest.raises(ModelFitError, match="differ in length"):
        fit([1, 2], [1])
    with pytest.raises(ModelFitError, match="exactly 2 groups"):
        rmst_difference([1, 2, 3], [1, 1, 1], ["a", "b", "c"], tau=2)


@pytest.mark.slow
def test_a_million_subjects_fit_well_under_a_second() -> None:
    rng = np.random.default_rng(7)
    n = 1_000_000
    event_time, censor_time = rng.exponential(800, n), rng.uniform(0, 1826, n)
    duration, event = np.ceil(np.minimum(event_time, censor_time)), event_time <= censor_time
    group, strata = rng.integers(0, 2, n), rng.integers(0, 3, n)
    start = time.perf_counter()
    fit_km(duration, event)
    km_seconds = time.perf_counter() - start
    start = time.perf_counter()
    logrank(duration, event, group, strata=strata)
    logrank_seconds = time.perf_counter() - start
    assert km_seconds < 1.0 and logrank_seconds < 1.0


@pytest.mark.parametrize("name", DATASETS)
def test_survival_at_years_is_missing_past_the_last_follow_up_as_in_r(
    name: str, fit: KmFit
) -> None:
    # summary(survfit(Surv(time, status) ~ group, conf.type = "log-log"),
    #         times = c(365, 730, 1096, 1461, 1826), extend = FALSE)
    # (tests/reference/km_years_reference.R): no row past the group's last observed time
    data, ref = _data(name), _ref(f"{name}_years.csv")
    for group in _groups(data):
        sub, r = data.filter(pl.col("group") == group), ref.filter(pl.col("group") == group)
        survival, lower, upper = fit(sub["time"], sub["status"]).at(YEARS_DAYS)
        shown = ~np.isnan(survival)
        np.testing.assert_array_equal(np.asarray(YEARS_DAYS)[shown], r["time"].to_numpy())
        np.testing.assert_allclose(survival[shown], r["surv"].to_numpy(), rtol=0, atol=1e-9)
        np.testing.assert_allclose(lower[shown], r["lower"].to_numpy(), rtol=RTOL)
        np.testing.assert_allclose(upper[shown], r["upper"].to_numpy(), rtol=RTOL)
        assert np.isnan(lower[~shown]).all() and np.isnan(upper[~shown]).all()


def test_survival_at_the_last_observed_time_is_kept_and_missing_after(fit: KmFit) -> None:
    # summary(survfit(Surv(c(100, 200, 300), c(1, 0, 0)) ~ 1), times = c(300, 301),
    #         extend = FALSE): one row, time 300, surv 0.6666667
    survival, _, _ = fit([100, 200, 300], [1, 0, 0]).at([0, 50, 300, 301])
    np.testing.assert_allclose(survival[:3], [1.0, 1.0, 2 / 3])
    assert np.isnan(survival[3])
    assert np.isnan(fit([], []).at([1])[0]).all()
