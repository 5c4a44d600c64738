"""Tests of the synthetic cohort generator: contract shape, determinism, calibration, dirt."""

from __future__ import annotations

import datetime
import json
import math
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.ingest.contract import BOOL_FALSE, BOOL_TRUE, SPECS
from registry.levels import POSITION
from registry.synth import SCENARIOS, TABLES, SynthCohort, generate_cohort, write_cohort

DTYPES = {"date": pl.Date, "int": pl.Int64, "float": pl.Float64, "bool": pl.Boolean}
DAYS = (365, 730, 1826)
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@pytest.fixture(scope="module")
def small() -> SynthCohort:
    """The default-size cohort."""
    return generate_cohort()


@pytest.fixture(scope="module")
def medium() -> SynthCohort:
    """Enough patients for every kind of fracture to occur many times."""
    return generate_cohort(patients=20_000, seed=3)


@pytest.fixture(scope="module")
def large() -> SynthCohort:
    """A large sample for calibration checks."""
    return generate_cohort(patients=200_000, seed=11)


def cif(latent: pl.DataFrame, column: str, days: tuple[int, ...] = DAYS) -> list[float]:
    """Cumulative incidence with death competing, from uncensored latent times."""
    t, death = latent[column].to_numpy(), latent["t_death"].to_numpy()
    return [float(((t <= d) & (t < death)).mean()) for d in days]


def any_new(latent: pl.DataFrame) -> pl.DataFrame:
    """Latent frame with the time of the first new fracture of any kind."""
    return latent.with_columns(t_any=pl.min_horizontal("t_adjacent", "t_remote", "t_same"))


def test_columns_and_dtypes_match_contract(small: SynthCohort) -> None:
    assert tuple(small.tables) == TABLES
    for name, frame in small.tables.items():
        spec = SPECS[name]
        assert frame.columns == list(spec.column_names)
        for column in spec.columns:
            assert frame.schema[column.name] == DTYPES.get(column.kind, pl.String), column.name
        assert frame.height > 0


def test_zero_patients_gives_empty_typed_tables() -> None:
    cohort = generate_cohort(patients=0)
    for name, frame in cohort.tables.items():
        assert frame.height == 0
        assert frame.columns == list(SPECS[name].column_names)
    assert cohort.tables["follow_up"].schema["contact_on"] == pl.Date
    assert cohort.latent.height == 0
    json.dumps(cohort.truth)


def test_same_seed_gives_identical_output() -> None:
    a, b = generate_cohort(patients=300, seed=5), generate_cohort(patients=300, seed=5)
    assert all(a.tables[n].equals(b.tables[n]) for n in TABLES)
    assert a.latent.equals(b.latent)
    assert a.truth == b.truth


def test_different_seed_gives_different_output() -> None:
    a, b = generate_cohort(patients=300, seed=5), generate_cohort(patients=300, seed=6)
    assert not a.tables["patients"].equals(b.tables["patients"])
    assert not a.latent.equals(b.latent)


@pytest.mark.parametrize(
    "options",
    [
        {"patients": -1},
        {"patients": 2.5},
        {"scenario": "late-adjacent"},
        {"dirty": -0.01},
        {"dirty": 0.51},
        {"treatment_hr": 0.0},
        {"treatment_hr": -2.0},
        {"seed": -1},
        {"cutoff": datetime.date(2018, 12, 31)},
    ],
)
def test_bad_options_raise_value_error(options: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(options))):
        generate_cohort(**options)  # type: ignore[arg-type]


def test_latent_has_one_row_per_patient_and_null_treat_day_when_untreated(
    small: SynthCohort,
) -> None:
    latent = small.latent
    assert latent["patient_id"].to_list() == small.tables["patients"]["patient_id"].to_list()
    assert latent.filter(pl.col("treated"))["treat_day"].null_count() == 0
    assert (
        latent.filter(~pl.col("treated"))["treat_day"].null_count()
        == latent.filter(~pl.col("treated")).height
    )


def test_t0_is_the_first_diagnosis_within_the_enrolment_window(small: SynthCohort) -> None:
    first = small.tables["index_fractures"].group_by("patient_id").agg(pl.col("diagnosed_on").min())
    joined = small.latent.join(first, on="patient_id")
    assert joined.height == small.latent.height
    assert (joined["t0"] == joined["diagnosed_on"]).all()
    assert joined["t0"].min() >= datetime.date(2019, 1, 1)  # type: ignore[operator]
    assert joined["t0"].max() <= datetime.date(2024, 12, 31)  # type: ignore[operator]


def test_natural_keys_are_unique_in_clean_data(medium: SynthCohort) -> None:
    for name, frame in medium.tables.items():
        assert frame.select(SPECS[name].key).is_duplicated().sum() == 0, name


def test_scenarios_both_run() -> None:
    for scenario in SCENARIOS:
        assert generate_cohort(patients=50, scenario=scenario).truth["scenario"] == scenario


def test_write_cohort_csv_round_trip(small: SynthCohort, tmp_path: Path) -> None:
    paths = write_cohort(small, tmp_path)
    assert {p.name for p in paths} == {f"{n}.csv" for n in TABLES} | {"truth.json"}
    for name in TABLES:
        back = pl.read_csv(tmp_path / f"{name}.csv", try_parse_dates=True)
        assert back.columns == list(SPECS[name].column_names)
        assert back.height == small.tables[name].height
    text = (tmp_path / "patients.csv").read_text()
    assert ",true," in text or ",false," in text
    assert ",," in text  # blank optional covariates
    assert json.loads((tmp_path / "truth.json").read_text()) == small.truth


def test_write_cohort_csv_dates_are_iso(small: SynthCohort, tmp_path: Path) -> None:
    write_cohort(small, tmp_path)
    back = pl.read_csv(tmp_path / "follow_up.csv", infer_schema=False)
    assert back["contact_on"].str.contains(r"^\d{4}-\d{2}-\d{2}$").all()


def test_write_cohort_parquet_round_trip(small: SynthCohort, tmp_path: Path) -> None:
    paths = write_cohort(small, tmp_path, fmt="parquet")
    assert len(paths) == len(TABLES) + 1
    for name in TABLES:
        assert pl.read_parquet(tmp_path / f"{name}.parquet").equals(small.tables[name])
    json.loads((tmp_path / "truth.json").read_text())


def test_write_cohort_rejects_unknown_format(small: SynthCohort, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fmt"):
        write_cohort(small, tmp_path, fmt="xlsx")


def _fracture_kinds(cohort: SynthCohort) -> list[tuple[set[str], int]]:
    """For each fracture: the latent kinds that occurred that day, and its index distance."""
    index = cohort.tables["index_fractures"].group_by("patient_id").agg("level")
    rows = (
        cohort.tables["fractures"]
        .join(index, on="patient_id", suffix="_index")
        .join(cohort.latent, on="patient_id")
        .with_columns(day=(pl.col("detected_on") - pl.col("t0")).dt.total_days())
    )
    out = []
    for r in rows.iter_rows(named=True):
        kinds = {k for k in ("adjacent", "remote", "same") if math.ceil(r[f"t_{k}"]) == r["day"]}
        nearest = min(abs(POSITION[r["level"]] - POSITION[ref]) for ref in r["level_index"])
        out.append((kinds, nearest))
    return out


def test_fracture_levels_match_their_kind(medium: SynthCohort) -> None:
    rule = {"adjacent": lambda d: d == 1, "remote": lambda d: d >= 2, "same": lambda d: d == 0}
    kinds = _fracture_kinds(medium)
    assert len(kinds) > 1000
    for occurred, distance in kinds:
        assert occurred, "fracture without a latent event on its day"
        assert any(rule[k](distance) for k in occurred), (occurred, distance)
    assert {d for _, d in kinds if d == 0} and {d for _, d in kinds if d >= 2}


def _row_days(cohort: SynthCohort) -> pl.DataFrame:
    """Every dated follow-up, assessment, procedure and fracture row as (patient, day)."""
    parts = [
        cohort.tables[name].select("patient_id", pl.col(column).alias("on"))
        for name, column in (
            ("follow_up", "contact_on"),
            ("assessments", "assessed_on"),
            ("procedures", "performed_on"),
            ("fractures", "detected_on"),
        )
    ]
    return (
        pl.concat(parts)
        .join(cohort.latent.select("patient_id", "t0", "cutoff_day"), on="patient_id")
        .with_columns(day=(pl.col("on") - pl.col("t0")).dt.total_days())
    )


def test_no_row_after_five_years_or_the_cutoff(medium: SynthCohort) -> None:
    rows = _row_days(medium)
    assert rows["day"].max() <= 1826  # type: ignore[operator]
    assert (rows["day"] <= rows["cutoff_day"]).all()
    assert rows["on"].max() <= datetime.date(2025, 12, 31)  # type: ignore[operator]


def test_no_row_after_a_death(medium: SynthCohort) -> None:
    deaths = medium.tables["follow_up"].filter(pl.col("status") == "dead")
    rows = _row_days(medium).join(deaths.rename({"contact_on": "died_on"}), on="patient_id")
    assert deaths.height > 100
    assert (rows["on"] <= rows["died_on"]).all()


def test_final_status_row_is_the_last_contact(medium: SynthCohort) -> None:
    fu = medium.tables["follow_up"]
    last = fu.group_by("patient_id").agg(pl.col("contact_on").max().alias("last"))
    ended = fu.filter(pl.col("status") != "alive").join(last, on="patient_id")
    assert (ended["contact_on"] == ended["last"]).all()
    assert ended["patient_id"].is_duplicated().sum() == 0


def test_procedures_happen_14_to_56_days_after_t0(medium: SynthCohort) -> None:
    proc = medium.tables["procedures"].join(medium.latent, on="patient_id")
    day = (proc["performed_on"] - proc["t0"]).dt.total_days()
    assert day.min() >= 14 and day.max() <= 56  # type: ignore[operator]
    assert proc["treated"].all()


@settings(max_examples=20, deadline=None)
@given(
    patients=st.integers(0, 60),
    seed=st.integers(0, 2**32 - 1),
    cutoff=st.dates(datetime.date(2019, 3, 1), datetime.date(2027, 12, 31)),
)
def test_every_row_belongs_to_a_patient_and_lies_in_follow_up(
    patients: int, seed: int, cutoff: datetime.date
) -> None:
    cohort = generate_cohort(patients=patients, seed=seed, cutoff=cutoff)
    ids = set(cohort.tables["patients"]["patient_id"])
    for name in TABLES[1:]:
        assert set(cohort.tables[name]["patient_id"]) <= ids
    rows = _row_days(cohort)
    assert ((rows["day"] >= 0) & (rows["day"] <= 1826)).all()
    assert (rows["on"] <= cutoff).all()


# --- dirty data ---------------------------------------------------------------------------


def _is_date(value: str) -> bool:
    """A strict ISO calendar date."""
    if not ISO.match(value):
        return False
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _parses(kind: str, value: str) -> bool:
    """Whether a value parses as the contract type."""
    if kind == "int":
        return re.fullmatch(r"-?\d+", value) is not None
    if kind == "float":
        return re.fullmatch(r"-?\d+(\.\d+)?", value) is not None
    return value in BOOL_TRUE + BOOL_FALSE


def _row_rules(name: str, row: dict[str, str | None], known: set[str]) -> set[str]:
    """The rules one all-string row breaks."""
    spec, broken = SPECS[name], set()
    for col in spec.columns:
        value = row[col.name]
        if value is None or value == "":
            broken |= {"missing_value"} if col.required else set()
        elif col.kind in ("int", "float", "bool") and not _parses(col.kind, value):
            broken.add("bad_type")
        elif col.kind == "date" and not _is_date(value):
            broken.add("bad_date")
        elif col.kind == "date" and value > "2100-01-01":
            broken.add("future_date")
        elif col.kind == "enum" and value not in col.values:
            broken.add("bad_enum")
        elif col.kind in ("int", "float") and not col.low <= float(value) <= col.high:  # type: ignore[operator]
            broken.add("out_of_range")
    vas = name == "assessments" and row["instrument"] == "VAS" and row["score"]
    if vas and "bad_type" not in broken and float(row["score"]) > 10:  # type: ignore[arg-type]
        broken.add("out_of_range")
    if spec.needs_patient and row["patient_id"] not in known:
        broken.add("unknown_patient")
    return broken


@pytest.fixture(scope="module")
def dirty() -> SynthCohort:
    """A cohort with 5% of the rows of every file corrupted."""
    return generate_cohort(patients=600, seed=9, dirty=0.05)


@pytest.mark.parametrize("patients", [0, 1, 7, 40])
def test_dirty_works_on_tiny_cohorts(patients: int) -> None:
    cohort = generate_cohort(patients=patients, dirty=0.5, seed=patients)
    assert cohort.tables["patients"].height == patients + cohort.truth["dirty"]["patients"].get(
        "duplicate_key_conflict", 0
    )
    json.dumps(cohort.truth)


def test_dirty_tables_are_all_strings(dirty: SynthCohort) -> None:
    for name, frame in dirty.tables.items():
        assert frame.columns == list(SPECS[name].column_names)
        assert set(frame.dtypes) == {pl.String}


def test_dirty_counts_are_recorded_per_file_and_rule(dirty: SynthCohort) -> None:
    clean = generate_cohort(patients=600, seed=9)
    assert set(dirty.truth["dirty"]) == set(TABLES)
    for name in TABLES:
        counts = dirty.truth["dirty"][name]
        assert sum(counts.values()) == round(0.05 * clean.tables[name].height)
        assert "unknown_patient" not in counts if name == "patients" else True
        extra = dirty.tables[name].height - clean.tables[name].height
        assert extra == counts.get("duplicate_key_conflict", 0)


def test_dirty_rows_break_exactly_their_rule(dirty: SynthCohort) -> None:
    known = set(dirty.tables["patients"]["patient_id"])
    for name in TABLES:
        rows = dirty.tables[name].to_dicts()
        rules = [_row_rules(name, row, known) for row in rows]
        assert all(len(r) <= 1 for r in rules), name
        found = {rule: sum(rule in r for r in rules) for rule in set().union(*rules)}
        expected = {
            k: v for k, v in dirty.truth["dirty"][name].items() if k != "duplicate_key_conflict"
        }
        assert found == {k: v for k, v in expected.items() if v}, name


def test_dirty_duplicates_conflict_on_a_value(dirty: SynthCohort) -> None:
    known = set(dirty.tables["patients"]["patient_id"])
    for name in TABLES:
        spec, frame = SPECS[name], dirty.tables[name]
        ok = pl.Series([not _row_rules(name, r, known) for r in frame.to_dicts()])
        valid = frame.filter(ok)
        dups = valid.filter(valid.select(spec.key).is_duplicated())
        assert (
            dups.select(spec.key).unique().height
            == dirty.truth["dirty"][name]["duplicate_key_conflict"]
        ), name
        assert dups.unique().height == dups.height, name  # the copies differ in a value


# --- large-sample calibration -------------------------------------------------------------


@pytest.mark.slow
def test_arms_are_about_equal(large: SynthCohort) -> None:
    assert large.latent["treated"].mean() == pytest.approx(0.5, abs=0.01)


@pytest.mark.slow
def test_age_distribution(large: SynthCohort) -> None:
    age = large.latent["age"]
    assert age.mean() == pytest.approx(73, abs=0.2)
    assert age.std() == pytest.approx(8, abs=0.2)
    assert age.min() >= 50 and age.max() <= 95  # type: ignore[operator]
    patients = large.tables["patients"].join(large.latent, on="patient_id")
    assert (patients["t0"].dt.year() - patients["birth_year"] == patients["age"]).all()


@pytest.mark.slow
def test_sex_bmd_steroids_and_prior_fractures(large: SynthCohort) -> None:
    p = large.tables["patients"]
    assert (p["sex"] == "F").mean() == pytest.approx(0.78, abs=0.01)
    bmd = p["bmd_t_score"].drop_nulls()
    assert bmd.mean() == pytest.approx(-2.8, abs=0.05)
    assert bmd.min() >= -5.5 and bmd.max() <= -1.0  # type: ignore[operator]
    assert p["glucocorticoids"].drop_nulls().mean() == pytest.approx(0.10, abs=0.005)
    assert (p["prior_vertebral_fractures"] >= 1).mean() == pytest.approx(0.45, abs=0.01)
    for column in ("bmd_t_score", "glucocorticoids"):
        assert p[column].null_count() / p.height == pytest.approx(0.02, abs=0.003)


@pytest.mark.slow
def test_levels_per_patient_and_sandwiches(large: SynthCohort) -> None:
    per = (
        large.tables["index_fractures"]
        .group_by("patient_id")
        .agg(
            n=pl.len(),
            span=pl.col("level").replace_strict(_positions()).max()
            - pl.col("level").replace_strict(_positions()).min(),
        )
    )
    shares = per["n"].value_counts(normalize=True).sort("n")["proportion"].to_list()
    assert shares == pytest.approx([0.65, 0.22, 0.09, 0.04], abs=0.01)
    two = per.filter(pl.col("n") == 2)
    assert (two["span"] == 2).mean() == pytest.approx(0.15, abs=0.01)


def _positions() -> dict[str, int]:
    """Level name to spine position."""
    return POSITION


def _visits(cohort: SynthCohort) -> pl.DataFrame:
    """Assessments with arm and visit number (0 baseline, 1 one month) per patient."""
    arm = cohort.latent.select("patient_id", "treated")
    return (
        cohort.tables["assessments"]
        .join(arm, on="patient_id")
        .sort("patient_id", "assessed_on")
        .with_columns(visit=pl.col("assessed_on").rank("dense").over("patient_id") - 1)
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("instrument", "visit", "mean", "sd", "tol"),
    [
        ("VAS", 0, 7.9, 1.5, 0.1),
        ("VAS", 1, 1.3, 1.8, 0.1),
        ("ODI", 0, 69.3, 13.5, 0.5),
        ("ODI", 1, 18.8, 6.9, 0.5),
    ],
)
def test_treated_pain_and_disability_match_the_press_release(
    large: SynthCohort, instrument: str, visit: int, mean: float, sd: float, tol: float
) -> None:
    scores = _visits(large).filter(
        pl.col("treated") & (pl.col("instrument") == instrument) & (pl.col("visit") == visit)
    )["score"]
    assert scores.mean() == pytest.approx(mean, abs=tol)
    assert scores.std() == pytest.approx(sd, abs=tol)


@pytest.mark.slow
def test_treated_baseline_precedes_the_procedure(large: SynthCohort) -> None:
    first = large.tables["procedures"].group_by("patient_id").agg(pl.col("performed_on").min())
    base = _visits(large).filter(pl.col("visit") == 0).join(first, on="patient_id")
    gap = (base["performed_on"] - base["assessed_on"]).dt.total_days()
    assert gap.min() >= 1 and gap.max() <= 7  # type: ignore[operator]


@pytest.mark.slow
def test_conservative_patients_improve_less(large: SynthCohort) -> None:
    means = (
        _visits(large)
        .filter(pl.col("visit") <= 1)
        .group_by("treated", "instrument", "visit")
        .agg(pl.col("score").mean())
    )
    m = {
        (r["treated"], r["instrument"], r["visit"]): r["score"] for r in means.iter_rows(named=True)
    }
    for instrument, expect in (("VAS", (7.2, 4.5)), ("ODI", (62.0, 45.0))):
        drop = {arm: m[(arm, instrument, 0)] - m[(arm, instrument, 1)] for arm in (True, False)}
        assert drop[False] < drop[True]
        assert m[(False, instrument, 0)] == pytest.approx(expect[0], rel=0.03)
        assert m[(False, instrument, 1)] == pytest.approx(expect[1], rel=0.03)


@pytest.mark.slow
def test_adjacent_cumulative_incidence_in_each_arm(large: SynthCohort) -> None:
    for arm in (True, False):
        got = cif(large.latent.filter(pl.col("treated") == arm), "t_adjacent")
        assert got == pytest.approx([0.09, 0.12, 0.16], abs=0.015), arm


@pytest.mark.slow
def test_any_new_fracture_cumulative_incidence(large: SynthCohort) -> None:
    assert cif(any_new(large.latent), "t_any") == pytest.approx([0.16, 0.22, 0.32], abs=0.02)
    assert cif(large.latent, "t_same")[2] == pytest.approx(0.03, abs=0.01)


@pytest.mark.slow
def test_treatment_hr_lowers_treated_adjacent_incidence() -> None:
    def treated_cif(hr: float) -> list[float]:
        latent = generate_cohort(patients=100_000, seed=4, treatment_hr=hr).latent
        return cif(latent.filter(pl.col("treated")), "t_adjacent")

    null, protective = treated_cif(1.0), treated_cif(0.5)
    assert all(p < n - 0.02 for p, n in zip(protective[1:], null[1:], strict=True))


@pytest.mark.slow
def test_early_adjacent_front_loads_the_treated_hazard() -> None:
    latent = generate_cohort(patients=200_000, seed=4, scenario="early-adjacent").latent
    t, c = (cif(latent.filter(pl.col("treated") == arm), "t_adjacent") for arm in (True, False))
    assert t[0] > c[0] + 0.005  # more early events in the treated ...
    assert t[2] == pytest.approx(c[2], abs=0.01)  # ... and the same five-year incidence


@pytest.mark.slow
def test_death_rates_per_arm(large: SynthCohort) -> None:
    for arm, rate in ((True, 0.06), (False, 0.07)):
        latent = large.latent.filter(pl.col("treated") == arm)
        died = (latent["t_death"] <= 1826).sum()
        years = float(latent["t_death"].clip(upper_bound=1826).sum()) / 365.25
        assert float(died) / years == pytest.approx(rate, abs=0.004), arm


@pytest.mark.slow
def test_men_die_more_and_loss_is_a_few_percent_a_year(large: SynthCohort) -> None:
    latent = large.latent
    dead = latent.group_by("sex").agg((pl.col("t_death") <= 365).mean().alias("p"))
    p = dict(dead.iter_rows())
    assert 1.3 < p["M"] / p["F"] < 1.9
    assert (latent["t_loss"] <= 365.25).mean() == pytest.approx(0.035, abs=0.003)
    assert (latent["t_withdraw"] <= 365.25).mean() == pytest.approx(0.01, abs=0.002)


def test_sites_are_unequal_and_etiology_mostly_osteoporotic(medium: SynthCohort) -> None:
    sites = medium.tables["patients"]["site_id"].value_counts().sort("site_id")
    assert sites["site_id"].to_list() == [f"S{i:02d}" for i in range(1, 9)]
    assert sites["count"][0] > 3 * sites["count"][7]
    per = medium.tables["index_fractures"].unique(["patient_id", "etiology"])
    assert per["patient_id"].is_duplicated().sum() == 0  # one etiology per patient
    assert (per["etiology"] == "osteoporotic").mean() == pytest.approx(0.97, abs=0.005)


def test_scores_within_their_scales(medium: SynthCohort) -> None:
    a = medium.tables["assessments"]
    vas, odi = (a.filter(pl.col("instrument") == i)["score"] for i in ("VAS", "ODI"))
    assert vas.min() >= 0 and vas.max() <= 10  # type: ignore[operator]
    assert odi.min() >= 0 and odi.max() <= 100  # type: ignore[operator]
    assert (odi == odi.round(0)).all()
    assert np.allclose(vas.to_numpy() * 10, np.round(vas.to_numpy() * 10))
