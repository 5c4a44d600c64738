"""Eligibility and follow-up: registry frames -> (cohort, attrition, data policy). Pure."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from registry.db import query
from registry.levels import POSITION
from registry.quality import run_check
from registry.study import Study

ATTRITION_SCHEMA = {
    "step": pl.Int64,
    "rule": pl.String,
    "excluded": pl.Int64,
    "remaining": pl.Int64,
    "remaining_treated": pl.Int64,
    "remaining_conservative": pl.Int64,
    "applies_to": pl.String,
}
REFERENCE_WINDOW_DAYS = 30  # docs/design.md: the index episode, "within 30 days of t0"
POLICY_SCHEMA = {"rule": pl.String, "rows": pl.Int64, "patients": pl.Int64, "action": pl.String}
POLICY_ACTIONS = {
    "fracture_on_or_before_t0": "not a new fracture: left out of the outcomes",
    "fracture_after_end_of_follow_up": "after death, withdrawal, loss or the horizon: not an event",
    "procedure_not_treatment": "not at an index level, not a study procedure, or after the "
    "end of follow-up: not treatment",
    "conflicting_death_dates": "the earliest death date is used",
    "contact_after_death": "ignored: follow-up ends at death",
    "assessment_after_death": "ignored: follow-up ends at death",
}


@dataclass(frozen=True)
class RegistryFrames:
    """What the cohort stage reads from the registry, once."""

    facts: pl.DataFrame  # sql/queries/cohort/patient_facts.sql
    index_levels: pl.DataFrame
    procedures: pl.DataFrame
    fractures: pl.DataFrame
    after_death: pl.DataFrame  # rule, rows, patients (contacts/assessments after death)


@dataclass(frozen=True)
class Cohort:
    """Eligible patients (one row each), the attrition table and the data-policy counts."""

    patients: pl.DataFrame
    attrition: pl.DataFrame
    policy: pl.DataFrame
    reference_levels: pl.DataFrame  # patient_id, position, diagnosed_on (see reference_levels)


def read_registry(con: duckdb.DuckDBPyConnection) -> RegistryFrames:
    """Read the cohort stage's inputs from the registry in one pass per table."""
    return RegistryFrames(
        facts=query(con, "queries/cohort/patient_facts"),
        index_levels=query(con, "queries/cohort/index_levels"),
        procedures=query(con, "queries/cohort/procedures"),
        fractures=query(con, "queries/cohort/fractures"),
        after_death=after_death_counts(con),
    )


def after_death_counts(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Rows and patients of the checks the cohort resolves by ignoring them (after death)."""
    found = {
        name: run_check(con, name) for name in ("contact_after_death", "assessment_after_death")
    }
    rows = [(name, f.height, f["patient_id"].drop_nulls().n_unique()) for name, f in found.items()]
    return pl.DataFrame(rows, schema=["rule", "rows", "patients"], orient="row")


def level_position(column: str) -> pl.Expr:
    """Position (0-23) of a vertebral level column."""
    return pl.col(column).replace_strict(POSITION, return_dtype=pl.Int16)


def follow_up_end(facts: pl.DataFrame, *, horizon_days: int) -> pl.DataFrame:
    """End of follow-up: the earliest of death and withdrawal/loss; else last contact; capped.

    A death recorded after a withdrawal or loss is not the end (nothing is ascertained after
    it); a death on the day of the withdrawal is (the competing event is known).
    """
    cap = pl.col("t0") + pl.duration(days=horizon_days)
    raw_end = pl.coalesce(pl.min_horizontal("death_on", "ended_on"), "last_contact_on")
    death_first = pl.col("death_on").is_not_null() & (
        pl.col("ended_on").is_null() | (pl.col("death_on") <= pl.col("ended_on"))
    )
    reason = (
        pl.when(death_first)
        .then(pl.lit("death"))
        .when(pl.col("ended_on").is_not_null())
        .then(pl.col("ended_status"))
        .when(pl.col("last_contact_on").is_not_null())
        .then(pl.lit("last_contact"))
    )
    capped = raw_end.is_not_null() & (raw_end > cap)
    return facts.with_columns(
        pl.when(raw_end.is_not_null()).then(pl.min_horizontal(raw_end, cap)).alias("end_on"),
        pl.when(capped).then(pl.lit("administrative")).otherwise(reason).alias("end_reason"),
    ).with_columns(
        (pl.col("end_on") - pl.col("t0")).dt.total_days().alias("duration_days"),
        (pl.col("end_reason") == "death").fill_null(False).alias("died"),
    )


def treatment(
    facts: pl.DataFrame, procedures: pl.DataFrame, index_levels: pl.DataFrame, study: Study
) -> pl.DataFrame:
    """First study procedure at an index level, on or after t0 and before the end: treat_on."""
    at_index = procedures.join(
        index_levels.select("patient_id", "level"), on=["patient_id", "level"], how="semi"
    )
    window = facts.select("patient_id", "t0", "end_on")
    eligible = (
        at_index.filter(pl.col("procedure").is_in(study.treatment_procedures))
        .join(window, on="patient_id")
        .filter(
            (pl.col("performed_on") >= pl.col("t0")) & (pl.col("performed_on") < pl.col("end_on"))
        )
    )
    first = eligible.group_by("patient_id").agg(pl.col("performed_on").min().alias("treat_on"))
    return facts.join(first, on="patient_id", how="left").with_columns(
        pl.col("treat_on").is_not_null().alias("treated"),
        (pl.col("treat_on") - pl.col("t0")).dt.total_days().alias("treat_day"),
    )


def covariates(facts: pl.DataFrame, study: Study) -> pl.DataFrame:
    """Age at t0 and the complete-covariate flag of the study's adjusted models."""
    with_age = facts.with_columns((pl.col("t0").dt.year() - pl.col("birth_year")).alias("age"))
    complete = (
        pl.all_horizontal(pl.col(c).is_not_null() for c in study.covariates)
        if study.covariates
        else pl.lit(True)
    )
    return with_age.with_columns(complete.alias("has_covariates"))


# docs/design.md's rules; malignant/traumatic comes first so that a patient whose only index
# fractures are malignant is counted under that reason, not as "no osteoporotic fracture".
RULES: tuple[tuple[str, str], ...] = (
    ("non_osteoporotic_index_fracture", "malignant or traumatic index fracture"),
    ("no_osteoporotic_index_fracture", "no osteoporotic index fracture"),
    ("procedure_before_t0", "procedure before t0"),
    ("no_follow_up_after_t0", "no follow-up after t0"),
)


def exclusion_reasons() -> dict[str, pl.Expr]:
    """Each eligibility rule as an expression that is true for the excluded patients."""
    return {
        "no_osteoporotic_index_fracture": pl.col("t0").is_null(),
        "non_osteoporotic_index_fracture": pl.col("n_other_etiology") > 0,
        "procedure_before_t0": pl.col("first_procedure_on") < pl.col("t0"),
        "no_follow_up_after_t0": pl.col("duration_days").is_null() | (pl.col("duration_days") <= 0),
    }


COMPLETE_CASE_STEP = ("missing covariates for adjusted models", "adjusted models")


def apply_rules(
    patients: pl.DataFrame, *, imputed: bool = False
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Apply the eligibility rules in order; return (eligible, attrition). The last row,
    patients missing a covariate, applies to the adjusted models; with multiple imputation
    (`imputed`) only to their complete-case twins, the pooled models keep those patients."""
    steps = [_attrition_row(0, "registered patients", 0, patients, "all")]
    remaining = patients
    for step, (key, label) in enumerate(RULES, start=1):
        excluded = remaining.filter(exclusion_reasons()[key].fill_null(False))
        remaining = remaining.join(excluded.select("patient_id"), on="patient_id", how="anti")
        steps.append(_attrition_row(step, label, excluded.height, remaining, "all"))
    no_cov = remaining.filter(~pl.col("has_covariates"))
    adjusted = remaining.filter(pl.col("has_covariates"))
    label, applies = COMPLETE_CASE_STEP
    if imputed:
        label, applies = (
            "missing covariates, imputed for the adjusted models",
            "complete-case analyses",
        )
    steps.append(_attrition_row(len(RULES) + 1, label, no_cov.height, adjusted, applies))
    return remaining, pl.DataFrame(steps, schema=ATTRITION_SCHEMA, orient="row")


def complete_case_attrition(attrition: pl.DataFrame) -> pl.DataFrame:
    """The attrition table with its missing-covariate step labelled for complete-case
    adjusted models: what it says when imputation was asked for and nothing was imputed."""
    last = pl.int_range(pl.len()) == pl.len() - 1
    return attrition.with_columns(
        pl.when(last).then(pl.lit(COMPLETE_CASE_STEP[0])).otherwise(pl.col("rule")).alias("rule"),
        pl.when(last)
        .then(pl.lit(COMPLETE_CASE_STEP[1]))
        .otherwise(pl.col("applies_to"))
        .alias("applies_to"),
    )


def _attrition_row(
    step: int, rule: str, excluded: int, remaining: pl.DataFrame, applies: str
) -> tuple[object, ...]:
    treated = remaining.get_column("treated").sum() if "treated" in remaining.columns else None
    conservative = remaining.height - treated if treated is not None else None
    return (step, rule, excluded, remaining.height, treated, conservative, applies)


def policy_counts(frames: RegistryFrames, eligible: pl.DataFrame) -> pl.DataFrame:
    """How many rows of each kind the documented data policy set aside, for eligible patients."""
    window = eligible.select("patient_id", "t0", "end_on", "treat_on")
    fractures = frames.fractures.join(window, on="patient_id")
    early = fractures.filter(pl.col("detected_on") <= pl.col("t0"))
    late = fractures.filter(pl.col("detected_on") > pl.col("end_on"))
    procedures = frames.procedures.join(window, on="patient_id")
    not_treatment = procedures.filter(
        pl.col("treat_on").is_null() | (pl.col("performed_on") != pl.col("treat_on"))
    )
    deaths = eligible.filter(pl.col("n_death_dates") > 1)
    rows = [
        ("fracture_on_or_before_t0", early),
        ("fracture_after_end_of_follow_up", late),
        ("procedure_not_treatment", not_treatment),
        ("conflicting_death_dates", deaths),
    ]
    counted = [(rule, f.height, f.get_column("patient_id").n_unique()) for rule, f in rows]
    raw = [tuple(r) for r in frames.after_death.select("rule", "rows", "patients").iter_rows()]
    return pl.DataFrame(
        [(rule, n, p, POLICY_ACTIONS[rule]) for rule, n, p in [*counted, *raw]],
        schema=POLICY_SCHEMA,
        orient="row",
    )


def build_cohort(frames: RegistryFrames, study: Study) -> Cohort:
    """Apply the study's definitions: t0, end of follow-up, treatment, eligibility."""
    facts = follow_up_end(frames.facts, horizon_days=study.horizon_days)
    facts = treatment(facts, frames.procedures, frames.index_levels, study)
    facts = covariates(facts, study)
    eligible, attrition = apply_rules(
        facts, imputed=study.missing_data.method == "multiple_imputation"
    )
    eligible = eligible.drop("first_procedure_on", "n_other_etiology", "ended_status").sort(
        "patient_id"
    )
    return Cohort(
        patients=eligible,
        attrition=attrition,
        policy=policy_counts(frames, eligible),
        reference_levels=reference_levels(frames.index_levels, eligible),
    )


def reference_levels(index_levels: pl.DataFrame, eligible: pl.DataFrame) -> pl.DataFrame:
    """Osteoporotic index levels diagnosed within REFERENCE_WINDOW_DAYS of t0 (the index
    episode), with their diagnosis date: a fracture is classified only against those
    diagnosed on or before it."""
    window = pl.col("t0") + pl.duration(days=REFERENCE_WINDOW_DAYS)
    return (
        index_levels.join(eligible.select("patient_id", "t0"), on="patient_id")
        .filter((pl.col("etiology") == "osteoporotic") & (pl.col("diagnosed_on") <= window))
        .select("patient_id", level_position("level").alias("position"), "diagnosed_on")
    )
