"""Rubin's rules (registry/analysis/imputation/pool.py) against R's mice::pool (mice 3.15.0).

Golden numbers: tests/reference/mi_pool_reference.R imputes survival's lung with
mice(m = 5, seed = 20260101), fits
    with(imp, coxph(Surv(time, event) ~ age + female + ph.karno + wt.loss + meal.cal))
and writes the completed datasets (mi_pool/completed.csv), every fit's coefficients and
variances (mi_pool/fits.csv) and summary(pool(fit), conf.int = TRUE, type = "all")
(mi_pool/pooled.csv). Feeding R's per-imputation numbers to `rubin` must give mice's pooled
numbers to 1e-8 (relative; observed ~1e-15), and fit_cox on R's completed datasets must give
R's coefficients and variances to 1e-8 (relative).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.analysis.imputation.pool import (
    Pooled,
    barnard_rubin,
    cox_dfcom,
    pool_cloglog,
    rubin,
    rubin_terms,
)
from registry.models.cox import fit_cox

REFERENCE = Path(__file__).parent / "reference" / "mi_pool"
MODEL = ["age", "female", "ph.karno", "wt.loss", "meal.cal"]
TOL = 1e-8  # relative, the tolerance against R
# Pooled field -> mice's column of summary(pool(fit), conf.int = TRUE, type = "all")
FIELDS = {
    "estimate": "estimate", "within": "ubar", "between": "b", "total": "t", "df": "df",
    "riv": "riv", "lam": "lambda", "fmi": "fmi", "se": "std.error", "p": "p.value",
    "ci_lower": "ci_lower", "ci_upper": "ci_upper",
}  # fmt: skip
# case -> the R call behind its rows of pooled.csv, and the fits it pools
CASES = {
    "lung": ("pool(fit)", "lung"),
    "lung_dfcom_inf": ("pool(fit, dfcom = Inf)", "lung"),
    "identical": ("pool(as.mira(rep(list(fit$analyses[[1]]), 5)))", "identical"),
}


def read(name: str) -> pl.DataFrame:
    """One of the reference CSVs, numbers as Float64 (R writes Inf)."""
    frame = pl.read_csv(REFERENCE / f"{name}.csv", infer_schema_length=0)
    text = {"case", "term"}
    return frame.with_columns(pl.exclude(*text).cast(pl.Float64))


def close(ours: float, theirs: float) -> bool:
    """Equal to TOL relative (exactly equal for zeros and infinities)."""
    if ours == theirs:
        return True
    return abs(ours - theirs) <= TOL * abs(theirs)


@pytest.mark.parametrize("case", list(CASES))
def test_rubin_matches_mice_pool(case: str) -> None:
    """Every pooled quantity equals mice's to 1e-8 relative; R call in CASES."""
    r_call, fits_case = CASES[case]
    fits, pooled = read("fits"), read("pooled").filter(pl.col("case") == case)
    events = int(fits.filter(pl.col("case") == fits_case)["events"][0])
    dfcom = math.inf if case == "lung_dfcom_inf" else cox_dfcom(events, len(MODEL))
    for row in pooled.iter_rows(named=True):
        mine = fits.filter((pl.col("case") == fits_case) & (pl.col("term") == row["term"]))
        got = rubin(mine["coef"], mine["var"], dfcom=dfcom)
        assert got.m == row["m"] == 5
        for field, column in FIELDS.items():
            ours = getattr(got, field)
            assert close(ours, row[column]), (r_call, row["term"], field, ours, row[column])


def test_cox_dfcom_is_events_minus_coefficients_as_mice() -> None:
    """mice 3.15's get.dfcom gives a coxph max(nevent - p, 1): here 165 - 5 = 160."""
    pooled = read("pooled").filter(pl.col("case") == "lung")
    events = read("fits")["events"][0]
    assert cox_dfcom(int(events), len(MODEL)) == pooled["dfcom"][0] == 160
    assert cox_dfcom(3, 5) == 1.0  # never below 1


def test_zero_between_variance_gives_finite_df_as_mice() -> None:
    """b = 0: lambda is floored at 1e-4 (mice:::barnard.rubin), so df and fmi are finite."""
    row = read("pooled").filter(pl.col("case") == "identical").row(0, named=True)
    assert row["b"] == 0
    got = rubin([0.5] * 5, [0.1] * 5, dfcom=160)
    assert got.between == 0 and math.isfinite(got.df) and close(got.df, row["df"])
    assert close(got.fmi, row["fmi"])
    assert barnard_rubin(5, 0.0, 1.0) == pytest.approx(4 / 1e-8)  # dfcom = inf: dfold


def test_rubin_terms_pools_each_column() -> None:
    """The vector version equals `rubin` on each term's column."""
    fits = read("fits").filter(pl.col("case") == "lung")
    coef = fits["coef"].to_numpy().reshape(5, len(MODEL))
    var = fits["var"].to_numpy().reshape(5, len(MODEL))
    pooled = rubin_terms(coef, var, dfcom=160)
    assert pooled == tuple(rubin(coef[:, j], var[:, j], dfcom=160) for j in range(len(MODEL)))


@pytest.mark.parametrize("imputation", range(1, 6))
def test_fit_cox_matches_r_on_each_completed_dataset(imputation: int) -> None:
    """fit_cox on mice's completed dataset j = coxph on it (R call in the module docstring)."""
    data = read("completed").filter(pl.col("imputation") == imputation)
    ref = read("fits").filter((pl.col("case") == "lung") & (pl.col("imputation") == imputation))
    fit = fit_cox(data["time"], data["event"], data.select(MODEL).to_numpy(), names=MODEL)
    assert fit.names == tuple(ref["term"]) and fit.events == ref["events"][0]
    np.testing.assert_allclose(fit.coef, ref["coef"].to_numpy(), rtol=TOL, atol=0)
    np.testing.assert_allclose(np.diag(fit.var), ref["var"].to_numpy(), rtol=TOL, atol=0)


finite = st.floats(-1e6, 1e6, allow_nan=False)
variance = st.floats(1e-8, 1e6, allow_nan=False)


@given(value=finite, variances=st.lists(variance, min_size=2, max_size=40),
       dfcom=st.one_of(st.just(math.inf), st.floats(1, 1e6)))  # fmt: skip
def test_identical_estimates_pool_to_themselves(
    value: float, variances: list[float], dfcom: float
) -> None:
    """m identical estimates: between = 0, pooled = the estimate, se = sqrt(mean variance)."""
    got = rubin([value] * len(variances), variances, dfcom=dfcom)
    assert got.between == 0 and got.riv == 0 and got.lam == 0
    assert got.estimate == pytest.approx(value, rel=1e-12, abs=1e-300)
    assert got.se == pytest.approx(math.sqrt(np.mean(variances)), rel=1e-12)
    assert all(math.isfinite(x) for x in (got.fmi, got.df, got.ci_lower, got.ci_upper, got.p))
    assert 0 <= got.fmi < 1 and 0 <= got.p <= 1
    assert got.ci_lower <= got.estimate <= got.ci_upper


@given(estimates=st.lists(finite, min_size=2, max_size=30), data=st.data(),
       shift=st.floats(-1e3, 1e3))  # fmt: skip
def test_shift_moves_estimate_and_interval_only(
    estimates: list[float], data: st.DataObject, shift: float
) -> None:
    """Adding c to every estimate adds c to qbar and the interval; the variances stay."""
    variances = data.draw(st.lists(variance, min_size=len(estimates), max_size=len(estimates)))
    a = rubin(estimates, variances, dfcom=100)
    b = rubin([e + shift for e in estimates], variances, dfcom=100)
    assert b.estimate == pytest.approx(a.estimate + shift, rel=1e-9, abs=1e-6)
    assert b.between == pytest.approx(a.between, rel=1e-6, abs=1e-6)
    assert b.df == pytest.approx(a.df, rel=1e-6) and 0 <= a.lam <= 1 and 0 <= a.fmi <= 1
    assert a.total >= a.within and a.ci_lower <= a.estimate <= a.ci_upper


def test_all_variance_between_imputations_stays_finite() -> None:
    """ubar = 0 and b > 0: riv is infinite, fmi 1, df 0 floored for the interval (no NaN)."""
    got = rubin([1.0, 2.0, 3.0], [0.0, 0.0, 0.0], dfcom=50)
    assert got.riv == math.inf and got.lam == 1 and got.fmi == 1 and got.df == 0
    assert all(math.isfinite(x) for x in (got.ci_lower, got.ci_upper, got.p))
    zero = rubin([1.0, 1.0], [0.0, 0.0])
    assert (zero.se, zero.ci_lower, zero.ci_upper, zero.p) == (0.0, 1.0, 1.0, 0.0)


@pytest.mark.parametrize(
    ("estimates", "variances", "kwargs"),
    [
        ([1.0], [0.1], {}),  # one imputation
        ([1.0, 2.0], [0.1], {}),  # lengths differ
        ([1.0, float("nan")], [0.1, 0.1], {}),
        ([1.0, 2.0], [0.1, -0.1], {}),
        ([1.0, 2.0], [0.1, 0.1], {"dfcom": 0.5}),
        ([1.0, 2.0], [0.1, 0.1], {"level": 1.0}),
    ],
)
def test_rubin_refuses_bad_input(estimates: list[float], variances: list[float], kwargs: dict[str, float]) -> None:  # fmt: skip
    """Bad input is a ValueError that says what is wrong, never a NaN result."""
    with pytest.raises(ValueError, match=r"imputations|finite|dfcom"):
        rubin(estimates, variances, **kwargs)


def test_pool_cloglog_by_hand() -> None:
    """1 - exp(-exp(mean(log(-log(1 - r))))): R: 1 - exp(-exp(mean(log(-log(1 - c(.1, .2))))))."""
    assert pool_cloglog([0.1, 0.2]) == pytest.approx(0.14215461919486927, rel=1e-14)
    assert pool_cloglog([0.0, 0.0, 0.0]) == 0.0 and pool_cloglog([1.0, 1.0]) == 1.0
    assert 0 < pool_cloglog([0.0, 0.3]) < 0.3 and 0.3 < pool_cloglog([1.0, 0.3]) < 1


@given(st.lists(st.floats(0, 1), min_size=1, max_size=30))
def test_pool_cloglog_lies_between_the_risks(risks: list[float]) -> None:
    """The pooled risk is within [min, max] of the risks, and equal to them when identical."""
    pooled = pool_cloglog(risks)
    assert min(risks) - 1e-12 <= pooled <= max(risks) + 1e-12
    assert pool_cloglog([risks[0]] * 3) == risks[0]


@pytest.mark.parametrize("risks", [[], [0.1, float("nan")], [-0.1, 0.2], [1.5]])
def test_pool_cloglog_refuses_bad_risks(risks: list[float]) -> None:
    """No risks, a NaN or a number outside [0, 1]: ValueError."""
    with pytest.raises(ValueError, match="risks must be"):
        pool_cloglog(risks)


def test_pooled_is_frozen() -> None:
    """Pooled is a frozen dataclass (results are immutable)."""
    got = rubin([1.0, 2.0], [0.1, 0.2])
    assert isinstance(got, Pooled)
    with pytest.raises(AttributeError):
        got.estimate = 3.0  # type: ignore[misc]
