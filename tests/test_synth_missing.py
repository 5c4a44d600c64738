"""Missing covariates in the synthetic cohort (issue 14): mcar, mar and mnar on BMD and
glucocorticoids, each from its own random stream, recorded in truth.json."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import chi2_contingency

from registry.cli import main
from registry.db import connect
from registry.errors import RegistryError
from registry.ingest import IngestResult, ingest_paths
from registry.migrate import apply_migrations
from registry.pipeline import synthesise
from registry.synth import MECHANISMS, TABLES, SynthCohort, generate_cohort, write_cohort
from registry.synth.missing import calibrate, probability
from registry.synth.params import MISSING_MAR_COEF, MISSING_MNAR_COEF
from tests.conftest import AS_OF

COVARIATES = ("bmd_t_score", "glucocorticoids")
N = 20_000
SEED = 3


@pytest.fixture(scope="module")
def cohorts() -> dict[str, SynthCohort]:
    """The same 20,000-patient cohort under every mechanism, at a 30 % rate."""
    return {m: generate_cohort(patients=N, seed=SEED, treatment_hr=0.6, missing=m)
            for m in MECHANISMS}  # fmt: skip


def missing_frame(cohort: SynthCohort) -> pl.DataFrame:
    """One row per patient: which covariates are null, treated, new fracture, true values."""
    tables = cohort.tables
    ids = tables["patients"].get_column("patient_id")
    return pl.DataFrame(
        {
            **{f"{c}_missing": tables["patients"].get_column(c).is_null() for c in COVARIATES},
            "treated": ids.is_in(tables["procedures"].get_column("patient_id").implode()),
            "new_fracture": ids.is_in(tables["fractures"].get_column("patient_id").implode()),
            "bmd": cohort.latent.get_column("bmd"),
            "steroids": cohort.latent.get_column("glucocorticoids"),
        }
    )


def shares(frame: pl.DataFrame, by: str, column: str = "bmd_t_score_missing") -> dict[bool, float]:
    """Missing share of a covariate per value of `by`."""
    grouped = frame.group_by(by).agg(pl.col(column).mean())
    return dict(zip(grouped[by].to_list(), grouped[column].to_list(), strict=True))


def chi_square_p(frame: pl.DataFrame, by: str) -> float:
    """p of the chi-square test of BMD missingness against `by`."""
    table = (
        frame.group_by(by, "bmd_t_score_missing")
        .len()
        .pivot(on="bmd_t_score_missing", index=by, values="len")
    )
    return float(chi2_contingency(table.select(pl.exclude(by)).to_numpy()).pvalue)


def test_default_cohort_has_no_missing_block_and_two_percent_blanks(
    cohorts: dict[str, SynthCohort],
) -> None:
    none = cohorts["none"]
    assert "missing" not in none.truth
    frame = missing_frame(none)
    for column in COVARIATES:
        assert frame.get_column(f"{column}_missing").mean() == pytest.approx(0.02, abs=0.005)


@pytest.mark.parametrize("mechanism", ["mcar", "mar", "mnar"])
def test_a_mechanism_changes_nothing_but_the_nulls(
    cohorts: dict[str, SynthCohort], mechanism: str
) -> None:
    base, other = cohorts["none"], cohorts[mechanism]
    assert other.latent.equals(base.latent)
    for name in TABLES[1:]:
        assert other.tables[name].equals(base.tables[name]), name
    a, b = base.tables["patients"], other.tables["patients"]
    assert a.drop(*COVARIATES).equals(b.drop(*COVARIATES))
    for column in COVARIATES:
        both = a.get_column(column).is_not_null() & b.get_column(column).is_not_null()
        assert a.filter(both).get_column(column).equals(b.filter(both).get_column(column))
        # and every observed value is the patient's true one
        true = base.latent.get_column("bmd" if column == "bmd_t_score" else "glucocorticoids")
        seen = b.get_column(column).is_not_null()
        assert b.filter(seen).get_column(column).equals(true.filter(seen).alias(column))
    untouched = {k: v for k, v in other.truth.items() if k != "missing"}
    assert untouched == base.truth


@pytest.mark.parametrize("mechanism", ["mcar", "mar", "mnar"])
def test_realised_rates_are_near_the_target(
    cohorts: dict[str, SynthCohort], mechanism: str
) -> None:
    frame = missing_frame(cohorts[mechanism])
    block = cohorts[mechanism].truth["missing"]
    for column, target in (("bmd_t_score", 0.3), ("glucocorticoids", 0.15)):
        realised = frame.get_column(f"{column}_missing").mean()
        assert realised == pytest.approx(target, abs=0.015), column
        assert block["variables"][column]["realised"] == pytest.approx(realised)
        assert block["variables"][column]["target"] == pytest.approx(target)


def test_truth_records_the_mechanism_and_its_model(cohorts: dict[str, SynthCohort]) -> None:
    block = cohorts["mar"].truth["missing"]
    assert (block["mechanism"], block["rate"]) == ("mar", 0.3)
    assert set(block["predictors"]) == {"treated", "new_fracture"}
    bmd = block["variables"]["bmd_t_score"]
    assert bmd["coefficients"] == MISSING_MAR_COEF
    assert isinstance(bmd["intercept"], float)
    groups = {(g["treated"], g["new_fracture"]): g for g in bmd["by_group"]}
    assert sum(g["patients"] for g in groups.values()) == N
    mnar = cohorts["mnar"].truth["missing"]["variables"]
    assert mnar["bmd_t_score"]["coefficients"] == {"bmd": MISSING_MNAR_COEF["bmd"]}
    assert mnar["glucocorticoids"]["coefficients"] == {"steroids": MISSING_MNAR_COEF["steroids"]}
    json.dumps(cohorts["mnar"].truth, allow_nan=False)


def test_mar_depends_on_treatment_and_new_fracture_as_designed(
    cohorts: dict[str, SynthCohort],
) -> None:
    frame = missing_frame(cohorts["mar"])
    by_treated, by_fracture = shares(frame, "treated"), shares(frame, "new_fracture")
    assert by_treated[False] - by_treated[True] > 0.25
    assert by_fracture[False] - by_fracture[True] > 0.2
    neither = frame.filter(~pl.col("treated") & ~pl.col("new_fracture"))
    assert neither.get_column("bmd_t_score_missing").mean() > 0.5  # mostly lacking a DXA
    assert shares(frame, "treated", "glucocorticoids_missing")[True] < 0.1
    assert chi_square_p(frame, "treated") < 1e-12
    assert chi_square_p(frame, "new_fracture") < 1e-12


def test_mcar_does_not_depend_on_treatment_outcome_or_value(
    cohorts: dict[str, SynthCohort],
) -> None:
    frame = missing_frame(cohorts["mcar"])
    for by in ("treated", "new_fracture"):
        by_group = shares(frame, by)
        assert abs(by_group[True] - by_group[False]) < 0.03, by
        assert chi_square_p(frame, by) > 0.001, by
    bmd = frame.group_by("bmd_t_score_missing").agg(pl.col("bmd").mean())
    assert abs(bmd["bmd"][0] - bmd["bmd"][1]) < 0.05


def test_mnar_depends_on_the_true_value(cohorts: dict[str, SynthCohort]) -> None:
    frame = missing_frame(cohorts["mnar"])
    low = frame.get_column("bmd") < -2.8
    missing = frame.get_column("bmd_t_score_missing")
    assert missing.filter(low).mean() - missing.filter(~low).mean() > 0.15  # worse bone
    mean_bmd = dict(frame.group_by("bmd_t_score_missing").agg(pl.col("bmd").mean()).iter_rows())
    assert mean_bmd[True] < mean_bmd[False] - 0.4
    steroid = shares(frame, "steroids", "glucocorticoids_missing")
    assert steroid[False] - steroid[True] > 0.1  # use is written down when present
    # within treatment groups the dependence stays: it is the value, not the treatment
    treated = frame.filter(pl.col("treated"))
    t_low = treated.get_column("bmd") < -2.8
    t_missing = treated.get_column("bmd_t_score_missing")
    assert t_missing.filter(t_low).mean() > t_missing.filter(~t_low).mean() + 0.1


@pytest.mark.parametrize("mechanism", ["mcar", "mar", "mnar"])
def test_rates_zero_and_one_blank_nothing_and_everything(mechanism: str) -> None:
    for rate, nulls in ((0.0, 0), (1.0, 200)):
        cohort = generate_cohort(patients=200, seed=1, missing=mechanism, missing_rate=rate)
        patients = cohort.tables["patients"]
        assert patients.get_column("bmd_t_score").null_count() == nulls
        intercept = cohort.truth["missing"]["variables"]["bmd_t_score"]["intercept"]
        assert intercept is None
        json.dumps(cohort.truth, allow_nan=False)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_zero_patients_under_every_mechanism(mechanism: str) -> None:
    cohort = generate_cohort(patients=0, missing=mechanism)
    assert cohort.tables["patients"].height == 0
    assert cohort.tables["patients"].schema["bmd_t_score"] == pl.Float64
    json.dumps(cohort.truth, allow_nan=False)


def test_calibration_hits_the_target_mean_probability() -> None:
    x = {"a": np.repeat([0.0, 1.0], 500), "b": np.tile([0.0, 1.0], 500)}
    coef = {"a": -2.0, "b": -1.0}
    for target in (0.01, 0.3, 0.9):
        intercept = calibrate(x, coef, target)
        assert float(np.mean(probability(x, coef, intercept))) == pytest.approx(target, abs=1e-8)
    assert calibrate({}, {}, 0.25) == pytest.approx(np.log(0.25 / 0.75))


@pytest.mark.parametrize(
    ("options", "word"),
    [({"missing": "sometimes"}, "missing"), ({"missing": "mar", "missing_rate": 1.5}, "rate"),
     ({"missing": "mcar", "missing_rate": -0.1}, "rate")],
)  # fmt: skip
def test_bad_missing_options_raise_value_error(options: dict[str, object], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        generate_cohort(patients=10, **options)  # type: ignore[arg-type]


def test_synthesise_names_a_bad_mechanism(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="synth: unknown missing 'often'"):
        synthesise(tmp_path, patients=10, missing="often")


def test_cli_writes_the_mechanism_into_truth_json(tmp_path: Path) -> None:
    args = ["synth", "--out", str(tmp_path), "--patients", "300", "--missing", "mnar",
            "--missing-rate", "0.4"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    block = json.loads((tmp_path / "truth.json").read_text())["missing"]
    assert (block["mechanism"], block["rate"]) == ("mnar", 0.4)
    patients = pl.read_csv(tmp_path / "patients.csv")
    assert patients.get_column("bmd_t_score").null_count() == pytest.approx(120, abs=40)


def test_cli_refuses_a_rate_outside_zero_to_one(tmp_path: Path) -> None:
    args = ["synth", "--out", str(tmp_path), "--missing", "mar", "--missing-rate", "2"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "--missing-rate" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "truth.json").exists()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mechanism=st.sampled_from(["mcar", "mar", "mnar"]),
    rate=st.floats(0.0, 0.9),
    patients=st.integers(1, 150),
    seed=st.integers(0, 10_000),
)
def test_any_rate_gives_a_contract_folder_that_ingests_without_quarantine(
    mechanism: str, rate: float, patients: int, seed: int
) -> None:
    cohort = generate_cohort(patients=patients, seed=seed, missing=mechanism, missing_rate=rate)
    con = connect()
    try:
        apply_migrations(con)
        with tempfile.TemporaryDirectory() as tmp:
            write_cohort(cohort, Path(tmp))
            outcomes = ingest_paths(con, [Path(tmp)], as_of=AS_OF)
        stored = {o.table: o for o in outcomes if isinstance(o, IngestResult)}
        for name, frame in cohort.tables.items():
            if frame.height == 0:  # a header without rows is refused whole, as ever
                continue
            assert (stored[name].inserted, stored[name].quarantined) == (frame.height, 0), name
        nulls = con.sql("SELECT count(*) FILTER (WHERE bmd_t_score IS NULL) FROM patients")
        assert nulls.fetchall() == [(cohort.tables["patients"]["bmd_t_score"].null_count(),)]
    finally:
        con.close()
