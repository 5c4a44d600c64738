"""Scenario tv-confounding: early pain drives treatment and risk; truth.json's target trial."""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.cli import main
from registry.synth import SCENARIOS, SynthCohort, generate_cohort
from registry.synth import tv as tv_module
from registry.synth.latent import draw_patients
from registry.synth.params import (
    CENTRE,
    TV_GRACE_DAYS,
    TV_LATE_FACTOR,
    TV_LATE_LAST_DAY,
    TV_TREAT_COEF,
    TV_TREAT_RATE,
    TV_TREAT_REF,
    TV_VISIT_DAYS,
)
from registry.synth.tv import draw_tv_times, natural_day, strategy_risks, treatment_hazard

TV = "tv-confounding"
CUTOFF = datetime.date(2026, 1, 1)
YEARS = ("1", "2", "5")


@pytest.fixture(scope="module")
def cohort() -> SynthCohort:
    """Enough patients to see the confounding, small enough to be quick."""
    return generate_cohort(patients=20_000, seed=13, scenario=TV, treatment_hr=0.6)


def days_from_t0(frame: pl.DataFrame, column: str, latent: pl.DataFrame) -> pl.DataFrame:
    """The frame with `day`: days from the patient's t0 to `column`."""
    return frame.join(latent.select("patient_id", "t0"), on="patient_id").with_columns(
        day=(pl.col(column) - pl.col("t0")).dt.total_days()
    )


def test_cli_lists_every_scenario() -> None:
    option = next(p for p in main.commands["synth"].params if p.name == "scenario")
    assert tuple(option.type.choices) == SCENARIOS  # type: ignore[attr-defined]


def test_synth_then_ingest_through_the_cli_quarantines_nothing(tmp_path: Path) -> None:
    runner, db, folder = CliRunner(), str(tmp_path / "r.duckdb"), tmp_path / "tv"
    args = ["synth", "--out", str(folder), "--patients", "600", "--scenario", TV]
    made = runner.invoke(main, [*args, "--treatment-hr", "0.6"])
    assert made.exit_code == 0, made.output
    assert runner.invoke(main, ["init", "--db", db]).exit_code == 0
    loaded = runner.invoke(main, ["ingest", str(folder), "--db", db, "--as-of", "2026-01-01"])
    assert loaded.exit_code == 0, loaded.output
    with duckdb.connect(db) as con:
        assert con.sql("SELECT count(*) FROM quarantine").fetchall() == [(0,)]
        assert con.sql("SELECT count(*) FROM patients").fetchall() == [(600,)]
    truth = json.loads((folder / "truth.json").read_text())
    assert truth["scenario"] == TV and truth["treatment_hr"] == 0.6


def test_early_vas_and_odi_for_everyone_followed_and_before_any_procedure(
    cohort: SynthCohort,
) -> None:
    latent = cohort.latent
    scores = days_from_t0(cohort.tables["assessments"], "assessed_on", latent)
    early = scores.filter(pl.col("day") <= 14)
    assert early["day"].is_between(2, 14).all()
    per_patient = early.group_by("patient_id", "instrument").agg(
        pl.col("day").filter(pl.col("day") <= 4).len().alias("near3"),
        pl.col("day").filter(pl.col("day") >= 12).len().alias("near14"),
    )
    followed = latent.filter(
        (pl.min_horizontal("t_death", "t_loss", "t_withdraw") > 15) & (pl.col("cutoff_day") > 15)
    )
    seen = per_patient.filter((pl.col("near3") == 1) & (pl.col("near14") == 1))
    for instrument in ("VAS", "ODI"):
        ids = seen.filter(pl.col("instrument") == instrument)["patient_id"]
        assert followed["patient_id"].is_in(ids.implode()).all(), instrument
    procedures = days_from_t0(cohort.tables["procedures"], "performed_on", latent)
    assert procedures.height > 1000 and procedures["day"].min() >= 15  # type: ignore[operator]
    last_early = early.group_by("patient_id").agg(last=pl.col("day").max())
    both = procedures.join(last_early, on="patient_id")
    assert both.height == procedures.height and (both["day"] > both["last"]).all()


def test_recorded_day14_vas_tracks_severity_and_predicts_treatment_in_grace(
    cohort: SynthCohort,
) -> None:
    latent = cohort.latent
    assert np.corrcoef(latent["severity"], latent["vas_day14"])[0, 1] > 0.7
    vas14 = days_from_t0(cohort.tables["assessments"], "assessed_on", latent).filter(
        (pl.col("instrument") == "VAS") & pl.col("day").is_between(12, 14)
    )
    procedures = days_from_t0(cohort.tables["procedures"], "performed_on", latent)
    early_ids = procedures.filter(pl.col("day") <= 56)["patient_id"].unique().implode()
    frame = vas14.with_columns(in_grace=pl.col("patient_id").is_in(early_ids))
    low, high = (
        frame.filter(cond)["in_grace"].mean()
        for cond in (
            pl.col("score") <= frame["score"].quantile(0.25),
            pl.col("score") >= frame["score"].quantile(0.75),
        )
    )
    assert high > low + 0.3  # type: ignore[operator]
    later = procedures.filter(pl.col("day") > 56)
    assert later.height > 0 and later["day"].max() <= 365  # type: ignore[operator]
    assert 0.3 < latent["natural_day"].is_null().mean() < 0.6  # many never treated


def test_naive_arms_are_confounded_by_severity() -> None:
    latent = generate_cohort(patients=20_000, seed=2, scenario=TV, treatment_hr=1.0).latent
    five_year = (pl.col("t_adjacent") <= 1826) & (pl.col("t_adjacent") < pl.col("t_death"))
    risk = latent.group_by("treated").agg(five_year.mean().alias("risk"), pl.col("severity").mean())
    by_arm = {row["treated"]: row for row in risk.iter_rows(named=True)}
    assert by_arm[True]["severity"] > by_arm[False]["severity"] + 0.5
    assert by_arm[True]["risk"] > by_arm[False]["risk"] + 0.03  # with no treatment effect


def test_truth_holds_the_target_trial(cohort: SynthCohort) -> None:
    trial = cohort.truth["target_trial"]
    assert trial["grace_days"] == 56 and "internal draw of 200,000" in trial["basis"]
    for block in (trial, trial["cohort"]):
        treat, no_treat = (block["strategies"][s]["risk"] for s in ("treat", "no_treat"))
        assert tuple(treat) == tuple(no_treat) == YEARS == tuple(block["risk_difference"])
        for year in YEARS:
            assert 0.0 < treat[year] < no_treat[year] < 1.0
            assert block["risk_difference"][year] == pytest.approx(treat[year] - no_treat[year])
        assert [no_treat[y] for y in YEARS] == sorted(no_treat[y] for y in YEARS)
    assert json.loads(json.dumps(cohort.truth)) == cohort.truth


def test_hr_one_gives_equal_risks_and_hr_06_a_lower_treat_risk() -> None:
    null, protective = (
        generate_cohort(patients=300, seed=8, scenario=TV, treatment_hr=hr).truth["target_trial"]
        for hr in (1.0, 0.6)
    )
    for year in YEARS:
        for block in (null, null["cohort"]):
            assert (
                block["strategies"]["treat"]["risk"][year]
                == (block["strategies"]["no_treat"]["risk"][year])
            )
            assert block["risk_difference"][year] == 0.0
        assert protective["risk_difference"][year] < -0.01
    assert null["strategies"]["no_treat"] == protective["strategies"]["no_treat"]


def test_no_treat_truth_on_the_cohort_equals_its_latent_incidence_when_hr_is_one() -> None:
    cohort = generate_cohort(patients=2000, seed=5, scenario=TV, treatment_hr=1.0)
    latent = cohort.latent
    for year in YEARS:
        seen = (latent["t_adjacent"] <= int(year) * 365.25) & (
            latent["t_adjacent"] < latent["t_death"]
        )
        risk = cohort.truth["target_trial"]["cohort"]["strategies"]["no_treat"]["risk"][year]
        assert risk == pytest.approx(seen.mean(), abs=1e-12)


def test_a_big_cohort_is_its_own_truth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tv_module, "TV_TRUTH_PATIENTS", 200)
    trial = generate_cohort(patients=200, seed=1, scenario=TV, treatment_hr=0.6).truth
    assert trial["target_trial"]["basis"] == "the cohort's own latent draws"
    assert trial["target_trial"]["strategies"] == trial["target_trial"]["cohort"]["strategies"]


@given(seed=st.integers(0, 2**31), hr=st.floats(0.2, 5.0), n=st.integers(0, 400))
@settings(max_examples=25, deadline=None)
def test_strategy_risks_order_follows_the_hazard_ratio(seed: int, hr: float, n: int) -> None:
    pat = draw_patients(seed, n, CUTOFF)
    draw_tv_times(pat, seed, hr)
    result = strategy_risks(pat, hr)
    treat, no_treat = (result["strategies"][s]["risk"] for s in ("treat", "no_treat"))
    same = strategy_risks(pat, 1.0)["strategies"]
    assert same["treat"] == same["no_treat"]
    for year in YEARS:
        assert 0.0 <= treat[year] <= 1.0 and 0.0 <= no_treat[year] <= 1.0
        if hr < 1.0:  # the same draws: nobody's fracture comes earlier under treatment
            assert treat[year] <= no_treat[year]
        else:
            assert treat[year] >= no_treat[year]


@given(seed=st.integers(0, 2**31), n=st.integers(0, 60))
@settings(max_examples=20, deadline=None)
def test_no_procedure_before_day_15_and_early_scores_in_range(seed: int, n: int) -> None:
    pat = draw_patients(seed, n, CUTOFF)
    draw_tv_times(pat, seed, 0.6)
    assert (pat["natural_day"] >= 15).all()
    assert (pat["visit_vas"] >= 0).all() and (pat["visit_vas"] <= 10).all()
    assert (pat["visit_odi"] >= 0).all() and (pat["visit_odi"] <= 100).all()
    treated = pat["treated"]
    assert (pat["treat_day"][treated] <= 365).all()


def test_zero_patients_give_empty_tables_and_a_truth() -> None:
    empty = generate_cohort(patients=0, scenario=TV)
    assert all(frame.is_empty() for frame in empty.tables.values())
    assert set(empty.truth["target_trial"]["strategies"]) == {"treat", "no_treat"}


def test_default_scenario_has_no_target_trial_and_four_visits() -> None:
    default = generate_cohort(patients=200, seed=3)
    assert "target_trial" not in default.truth and "severity" not in default.latent.columns
    visits = default.tables["assessments"].group_by("patient_id", "instrument").len()
    assert visits["len"].max() <= 4  # type: ignore[operator]


def recorded_scores(cohort: SynthCohort) -> pl.DataFrame:
    """Assessments with day from t0, severity and the procedure day (null if untreated)."""
    latent = cohort.latent
    procedures = days_from_t0(cohort.tables["procedures"], "performed_on", latent)
    first = procedures.group_by("patient_id").agg(procedure_day=pl.col("day").min())
    return (
        days_from_t0(cohort.tables["assessments"], "assessed_on", latent)
        .join(latent.select("patient_id", "severity"), on="patient_id")
        .join(first, on="patient_id", how="left")
    )


@pytest.mark.parametrize("visit", range(len(TV_VISIT_DAYS)))
def test_every_visit_before_treatment_follows_severity(cohort: SynthCohort, visit: int) -> None:
    lo, hi = TV_VISIT_DAYS[visit]
    before = pl.col("procedure_day").is_null() | (pl.col("day") <= pl.col("procedure_day"))
    scores = recorded_scores(cohort).filter(pl.col("day").is_between(lo, hi) & before)
    for instrument in ("VAS", "ODI"):
        rows = scores.filter(pl.col("instrument") == instrument)
        assert rows.height > 1000, (visit, instrument)
        assert np.corrcoef(rows["severity"], rows["score"])[0, 1] > 0.75, (visit, instrument)


def test_visits_after_the_procedure_follow_the_treated_course(cohort: SynthCohort) -> None:
    scores = recorded_scores(cohort).filter(pl.col("procedure_day").is_not_null())
    after = scores.filter(pl.col("day") > pl.col("procedure_day"))
    assert (after["day"] - after["procedure_day"]).min() >= 21  # type: ignore[operator]
    vas = after.filter(pl.col("instrument") == "VAS")
    assert vas.height > 1000 and vas["score"].mean() < 2.5  # type: ignore[operator]
    assert abs(np.corrcoef(vas["severity"], vas["score"])[0, 1]) < 0.1  # beta draws
    last_before = scores.filter(pl.col("day") <= pl.col("procedure_day"))
    assert last_before["patient_id"].n_unique() == scores["patient_id"].n_unique()


def day_by_day(pat: dict[str, np.ndarray], i: int, e: float) -> int | None:
    """The first day whose summed daily treatment hazard reaches e (None: not by day 365),
    the hazard of day d reading the latest visit on or before day d - 1."""
    lp = sum(TV_TREAT_COEF[k] * (pat[k][i] - CENTRE[k]) for k in ("age", "bmd", "n_levels"))
    total = 0.0
    for day in range(15, TV_LATE_LAST_DAY + 1):  # no procedure before day 15
        latest = int(np.flatnonzero(pat["visit_day"][i] <= day - 1)[-1])
        scores = sum(
            TV_TREAT_COEF[k] * (pat[f"visit_{k}"][i, latest] - TV_TREAT_REF[k])
            for k in ("vas", "odi")
        )
        factor = 1.0 if day <= TV_GRACE_DAYS else TV_LATE_FACTOR
        total += TV_TREAT_RATE * factor * np.exp(lp + scores)
        if total >= e:
            return day
    return None


@given(
    seed=st.integers(0, 2**31),
    n=st.integers(1, 6),
    e=st.lists(st.floats(1e-3, 6.0), min_size=6, max_size=6),
)
@settings(max_examples=30, deadline=None)
def test_natural_day_matches_a_day_by_day_simulation(seed: int, n: int, e: list[float]) -> None:
    pat = draw_patients(seed, n, CUTOFF)
    draw_tv_times(pat, seed, 1.0)
    draws = np.array(e[:n])
    got = natural_day(pat, draws)
    for i in range(n):
        expected = day_by_day(pat, i, float(draws[i]))
        if expected is None:
            assert got[i] > TV_LATE_LAST_DAY
        else:
            assert got[i] == expected


def test_a_worse_latest_score_raises_the_hazard_from_the_day_after_the_visit() -> None:
    pat = draw_patients(4, 2, CUTOFF)
    draw_tv_times(pat, 4, 1.0)
    for key in ("age", "bmd", "n_levels"):
        pat[key] = np.full(2, pat[key][0])
    pat["visit_day"] = np.array([[3, 14, 40, 180, 360]] * 2)
    pat["visit_vas"] = np.array([[6.0, 5.5, 5.5, 3.0, 3.0], [6.0, 5.5, 9.5, 3.0, 3.0]])
    pat["visit_odi"] = np.full((2, 5), 52.0)
    bounds, rate = treatment_hazard(pat)
    assert bounds[0].tolist()[:5] == [14, 14, 14, 40, 56]
    at = [list(bounds[0]).index(40), list(bounds[0]).index(56)]
    assert rate[1, at[0]] / rate[0, at[0]] == pytest.approx(np.exp(TV_TREAT_COEF["vas"] * 4))
    assert rate[0, at[1]] == pytest.approx(rate[0, at[0]] * TV_LATE_FACTOR)
    assert rate[1, at[0] - 1] == pytest.approx(rate[0, at[0] - 1])  # the same until day 40


# sha256 of the tables (CSV) and truth of generate_cohort(patients=300, seed=11,
# treatment_hr=0.7, dirty=0.05), computed before the tv-confounding visit schedule was added.
UNCHANGED = {
    "default": "864f352bce001d3ed90cec05c9c8d03a1ceca9be1fbcf5a59e0bafe7e34ed12d",
    "early-adjacent": "a0ddb84e1510d278b9efce6b464933ba64277e69e32547995a45e56e3582ac75",
}


@pytest.mark.parametrize("scenario", sorted(UNCHANGED))
def test_other_scenarios_do_not_change_by_a_byte(scenario: str) -> None:
    made = generate_cohort(patients=300, seed=11, treatment_hr=0.7, scenario=scenario, dirty=0.05)
    digest = hashlib.sha256()
    for frame in made.tables.values():
        digest.update(frame.write_csv().encode())
    digest.update(json.dumps(made.truth, sort_keys=True).encode())
    assert digest.hexdigest() == UNCHANGED[scenario], (
        f"the {scenario} cohort changed; if that is intended, update UNCHANGED with its digest"
    )
