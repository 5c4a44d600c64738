"""Table 1 value by value on six hand-built patients (three per arm).

Every expected number below is worked out by hand from the table in the comments. Means
and SDs are the usual sample ones (SD with n - 1). The SMD is the report's: treated minus
untreated over the pooled SD of the arms, each arm's variance with denominator n,

    smd = (mean_t - mean_u) / sqrt((var_t + var_u) / 2),   var = mean((x - mean)^2),

on the patients with a value (complete cases). The SMD after weighting is the IPTW
balance's, passed in by covariate name (women: the sign of `male`'s, flipped).
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl
import pytest

from registry.analysis.pro import baseline_of
from registry.analysis.table_one import table_one
from registry.cohort import Cohort
from registry.levels import POSITION

#  patient  arm  age  bmd    prior  levels       gluco  sex  VAS   ODI
#  T1       tr   70   -3.0   0      T12, L1      yes    F    8     60
#  T2       tr   80   -2.0   1      L3           no     F    6     50
#  T3       tr   90   --     2      T7           no     M    --    --
#  U1       un   60   -1.0   0      T12          yes    F    7     40
#  U2       un   70   -2.0   0      L1           yes    M    5     30
#  U3       un   80   -3.0   0      C5           --     M    6     --
PATIENTS = pl.DataFrame(
    {
        "patient_id": ["T1", "T2", "T3", "U1", "U2", "U3"],
        "treated": [True, True, True, False, False, False],
        "age": [70, 80, 90, 60, 70, 80],
        "bmd_t_score": [-3.0, -2.0, None, -1.0, -2.0, -3.0],
        "prior_vertebral_fractures": [0, 1, 2, 0, 0, 0],
        "n_index_levels": [2, 1, 1, 1, 1, 1],
        "glucocorticoids": [True, False, False, True, True, None],
        "sex": ["F", "F", "M", "F", "M", "M"],
    }
)
LEVELS = [("T1", "T12"), ("T1", "L1"), ("T2", "L3"), ("T3", "T7")]
LEVELS += [("U1", "T12"), ("U2", "L1"), ("U3", "C5")]
SCORES = [("T1", "VAS", 8.0), ("T2", "VAS", 6.0), ("U1", "VAS", 7.0), ("U2", "VAS", 5.0)]
SCORES += [("U3", "VAS", 6.0), ("T1", "ODI", 60.0), ("T2", "ODI", 50.0), ("U1", "ODI", 40.0)]
SCORES += [("U2", "ODI", 30.0)]
# the IPTW balance's smd_after, by covariate of the propensity model
WEIGHTED = {
    "age": 0.05,
    "male": 0.02,
    "bmd_t_score": -0.01,
    "glucocorticoids": 0.03,
    "prior_vertebral_fractures": 0.0,
    "n_index_levels": -0.04,
}


def cohort() -> Cohort:
    levels = pl.DataFrame(
        {
            "patient_id": [p for p, _ in LEVELS],
            "position": [POSITION[level] for _, level in LEVELS],
        }
    )
    empty = pl.DataFrame()
    return Cohort(patients=PATIENTS, attrition=empty, policy=empty, reference_levels=levels)


def scores() -> pl.DataFrame:
    """SCORES as the pipeline passes them (analysis.pro.baseline_of: patient row index)."""
    long = pl.DataFrame(SCORES, schema=["patient_id", "instrument", "score"], orient="row")
    return baseline_of(long.with_columns(visit=pl.lit("baseline")), cohort())


def rows(threshold: int = 1) -> dict[str, dict[str, Any]]:
    table = table_one(cohort(), scores(), WEIGHTED, threshold)
    return {row["variable"]: row for row in table}


def smd(mean_t: float, var_t: float, mean_u: float, var_u: float) -> float:
    """The formula of the module docstring, fed with hand-computed means and variances."""
    return (mean_t - mean_u) / math.sqrt((var_t + var_u) / 2)


# variable -> (treated n, mean, SD, missing), (untreated ...), SMD before, SMD after
CONTINUOUS = {
    # 70, 80, 90: mean 80, SD 10; 60, 70, 80: mean 70, SD 10; var (n) 200/3 each
    "age": ((3, 80.0, 10.0, 0), (3, 70.0, 10.0, 0), smd(80, 200 / 3, 70, 200 / 3), 0.05),
    # -3, -2: mean -2.5, SD sqrt(0.5), var (n) 0.25; -1, -2, -3: mean -2, SD 1, var 2/3
    "bmd_t_score": (
        (2, -2.5, math.sqrt(0.5), 1),
        (3, -2.0, 1.0, 0),
        smd(-2.5, 0.25, -2.0, 2 / 3),
        -0.01,
    ),
    # 0, 1, 2: mean 1, SD 1, var 2/3; 0, 0, 0: mean 0, SD 0
    "prior_vertebral_fractures": ((3, 1.0, 1.0, 0), (3, 0.0, 0.0, 0), smd(1, 2 / 3, 0, 0), 0.0),
    # 2, 1, 1: mean 4/3, SD sqrt(1/3), var 2/9; 1, 1, 1
    "n_index_levels": (
        (3, 4 / 3, math.sqrt(1 / 3), 0),
        (3, 1.0, 0.0, 0),
        smd(4 / 3, 2 / 9, 1, 0),
        -0.04,
    ),
    # 8, 6: mean 7, SD sqrt(2), var 1; 7, 5, 6: mean 6, SD 1, var 2/3; not in the PS model
    "baseline_vas": ((2, 7.0, math.sqrt(2), 1), (3, 6.0, 1.0, 0), smd(7, 1, 6, 2 / 3), None),
    # 60, 50: mean 55, SD sqrt(50), var 25; 40, 30: mean 35, SD sqrt(50), var 25
    "baseline_odi": (
        (2, 55.0, math.sqrt(50), 1),
        (2, 35.0, math.sqrt(50), 1),
        smd(55, 25, 35, 25),
        None,
    ),
}
# variable -> (treated n, count, %, missing), (untreated ...), SMD before, SMD after
BINARY = {
    # F, F, M: 2 of 3; F, M, M: 1 of 3; var 2/9 each; after: minus the SMD of `male`
    "female": ((3, 2, 200 / 3, 0), (3, 1, 100 / 3, 0), smd(2 / 3, 2 / 9, 1 / 3, 2 / 9), -0.02),
    # yes, no, no: 1 of 3, var 2/9; yes, yes, (missing): 2 of 2, var 0
    "glucocorticoids": ((3, 1, 100 / 3, 0), (2, 2, 100.0, 1), smd(1 / 3, 2 / 9, 1, 0), 0.03),
    # prior 0, 1, 2: 2 of 3; 0, 0, 0: none; not a PS covariate (prior count is)
    "any_prior_fracture": ((3, 2, 200 / 3, 0), (3, 0, 0.0, 0), smd(2 / 3, 2 / 9, 0, 0), None),
    # regions of the reference levels; a patient counts once per region (T1: T12 and L1)
    "cervical (C1-C7)": ((3, 0, 0.0, 0), (3, 1, 100 / 3, 0), smd(0, 0, 1 / 3, 2 / 9), None),
    "thoracic (T1-T10)": ((3, 1, 100 / 3, 0), (3, 0, 0.0, 0), smd(1 / 3, 2 / 9, 0, 0), None),
    "thoracolumbar (T11-L2)": (
        (3, 1, 100 / 3, 0),
        (3, 2, 200 / 3, 0),
        smd(1 / 3, 2 / 9, 2 / 3, 2 / 9),
        None,
    ),
    "lumbar (L3-L5)": ((3, 1, 100 / 3, 0), (3, 0, 0.0, 0), smd(1 / 3, 2 / 9, 0, 0), None),
}


def test_every_row_is_there_in_order() -> None:
    assert list(rows()) == [*CONTINUOUS, *BINARY]


@pytest.mark.parametrize("variable", list(CONTINUOUS))
def test_continuous_rows_by_hand(variable: str) -> None:
    row = rows()[variable]
    treated, untreated, before, after = CONTINUOUS[variable]
    assert row["binary"] is False
    for arm, (n, mean, sd, missing) in (("treated", treated), ("untreated", untreated)):
        got = row[arm]
        assert (got["n"], got["missing"]) == (n, missing), arm
        assert (got["mean"], got["sd"]) == pytest.approx((mean, sd), rel=1e-12, abs=1e-12), arm
    assert row["smd_before"] == pytest.approx(before, rel=1e-12)
    assert row["smd_after"] == after


@pytest.mark.parametrize("variable", list(BINARY))
def test_binary_rows_by_hand(variable: str) -> None:
    row = rows()[variable]
    treated, untreated, before, after = BINARY[variable]
    assert row["binary"] is True
    for arm, (n, count, percent, missing) in (("treated", treated), ("untreated", untreated)):
        got = row[arm]
        assert (got["n"], got["count"], got["missing"]) == (n, count, missing), arm
        assert got["percent"] == pytest.approx(percent, rel=1e-12), arm
    assert row["smd_before"] == pytest.approx(before, rel=1e-12)
    assert row["smd_after"] == after


def test_the_smds_worked_out() -> None:
    # the formula above, evaluated once more by hand for a few rows
    table = rows()
    assert table["age"]["smd_before"] == pytest.approx(math.sqrt(1.5))  # 10 / sqrt(200/3)
    assert table["prior_vertebral_fractures"]["smd_before"] == pytest.approx(math.sqrt(3))
    assert table["n_index_levels"]["smd_before"] == pytest.approx(1.0)  # (1/3) / (1/3)
    assert table["glucocorticoids"]["smd_before"] == pytest.approx(-2.0)  # (-2/3) / (1/3)
    assert table["female"]["smd_before"] == pytest.approx(1 / math.sqrt(2))
    assert table["baseline_odi"]["smd_before"] == pytest.approx(4.0)  # 20 / 5


def test_small_counts_withhold_means_and_percentages() -> None:
    # threshold 3: two bmd values in the treated arm are too few for a mean and SD; a count
    # of 1 or 2 (or its complement) withholds the percentage; n, counts and missing stay
    table = rows(threshold=3)
    bmd = table["bmd_t_score"]["treated"]
    assert (bmd["n"], bmd["mean"], bmd["sd"], bmd["missing"]) == (2, None, None, 1)
    assert table["age"]["treated"]["mean"] == pytest.approx(80.0)
    gluco = table["glucocorticoids"]
    assert (gluco["treated"]["count"], gluco["treated"]["percent"]) == (1, None)
    assert (gluco["untreated"]["count"], gluco["untreated"]["percent"]) == (2, None)
    women = table["female"]
    assert (women["treated"]["percent"], women["untreated"]["percent"]) == (None, None)  # 2, 1
    # none of 3 untreated has a prior fracture: 0 and 3 are not small, so 0 % is shown
    assert table["any_prior_fracture"]["untreated"]["percent"] == 0.0


def test_zero_patients() -> None:
    empty = Cohort(
        patients=PATIENTS.clear(),
        attrition=pl.DataFrame(),
        policy=pl.DataFrame(),
        reference_levels=pl.DataFrame(schema={"patient_id": pl.String, "position": pl.Int64}),
    )
    table = table_one(empty, scores().clear(), {}, 5)
    assert len(table) == len(CONTINUOUS) + len(BINARY)
    for row in table:
        assert row["smd_before"] is None and row["treated"]["n"] == 0
