"""The pandas baseline's cohort: read the tables, per-patient facts, eligibility, data policy.

What registry.cohort (read_registry, build_cohort) does, written with pandas alone: plain
SELECTs into pandas, then merges, groupby aggregations and boolean masks.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pandas as pd

from registry.cohort import RULES
from registry.study import Study

# Only the columns the build uses; the analyst's SELECTs, no aggregation in SQL.
COLUMNS = {
    "patients": "patient_id, site_id, sex, birth_year, bmd_t_score, glucocorticoids, "
    "prior_vertebral_fractures",
    "index_fractures": "patient_id, level, diagnosed_on, etiology",
    "procedures": "patient_id, level, performed_on, procedure",
    "fractures": "patient_id, level, detected_on",
    "follow_up": "patient_id, contact_on, status",
    "assessments": "patient_id, assessed_on",
}


def read_tables(con: duckdb.DuckDBPyConnection) -> dict[str, pd.DataFrame]:
    """The registry tables the build needs, as pandas frames."""
    return {name: con.sql(f"SELECT {cols} FROM {name}").df() for name, cols in COLUMNS.items()}


def patient_facts(t: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per registered patient (index patient_id): t0, counts, death, loss, last contact."""
    idx, proc, fu = t["index_fractures"], t["procedures"], t["follow_up"]
    osteo = idx["etiology"] == "osteoporotic"
    index_facts = (
        idx.assign(osteo_on=idx["diagnosed_on"].where(osteo), other=~osteo)
        .groupby("patient_id")
        .agg(
            t0=("osteo_on", "min"),
            n_other_etiology=("other", "sum"),
            n_index_levels=("level", "size"),
        )
    )
    first_procedure = proc.groupby("patient_id")["performed_on"].min().rename("first_procedure_on")
    deaths = (
        fu[fu["status"] == "dead"]
        .groupby("patient_id")["contact_on"]
        .agg(death_on="min", n_death_dates="nunique")
    )
    ended = (
        fu[fu["status"].isin(["withdrawn", "lost"])]
        .sort_values("contact_on")
        .drop_duplicates("patient_id")
        .set_index("patient_id")
        .rename(columns={"contact_on": "ended_on", "status": "ended_status"})
    )
    latest = [
        fu.groupby("patient_id")["contact_on"].max(),
        t["assessments"].groupby("patient_id")["assessed_on"].max(),
        proc.groupby("patient_id")["performed_on"].max(),
        t["fractures"].groupby("patient_id")["detected_on"].max(),
    ]
    last_contact = pd.concat(latest, axis=1).max(axis=1).rename("last_contact_on")
    facts = t["patients"].set_index("patient_id")
    facts = facts.join([index_facts, first_procedure, deaths, ended, last_contact], how="left")
    counts = ["n_other_etiology", "n_index_levels", "n_death_dates"]
    facts[counts] = facts[counts].fillna(0).astype("int64")
    return facts


def follow_up_end(facts: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
    """End of follow-up: the earliest of death and withdrawal/loss; else last contact; capped."""
    cap = facts["t0"] + pd.Timedelta(days=horizon_days)
    stopped = facts[["death_on", "ended_on"]].min(axis=1)  # NaT only when both are
    raw_end = stopped.fillna(facts["last_contact_on"])
    capped = raw_end > cap  # False where either side is NaT (no t0: never capped)
    death_first = facts["death_on"].notna() & ~(facts["death_on"] > facts["ended_on"])
    facts["end_on"] = raw_end.mask(capped, cap)
    facts["end_reason"] = np.select(
        [capped, death_first, facts["ended_on"].notna(), raw_end.notna()],
        ["administrative", "death", facts["ended_status"], "last_contact"],
        default=np.array(None, dtype=object),  # None where no end is known
    )
    facts["duration_days"] = (facts["end_on"] - facts["t0"]).dt.days
    facts["died"] = facts["end_reason"] == "death"
    return facts


def add_treatment(facts: pd.DataFrame, t: dict[str, pd.DataFrame], study: Study) -> pd.DataFrame:
    """First study procedure at an index level with t0 <= performed_on < end_on."""
    proc = t["procedures"]
    at_index = proc[proc["procedure"].isin(study.treatment_procedures)].merge(
        t["index_fractures"][["patient_id", "level"]], on=["patient_id", "level"]
    )
    at_index = at_index.merge(facts[["t0", "end_on"]], left_on="patient_id", right_index=True)
    inside = (at_index["performed_on"] >= at_index["t0"]) & (
        at_index["performed_on"] < at_index["end_on"]
    )
    facts["treat_on"] = at_index[inside].groupby("patient_id")["performed_on"].min()
    facts["treated"] = facts["treat_on"].notna()
    facts["treat_day"] = (facts["treat_on"] - facts["t0"]).dt.days
    facts["age"] = facts["t0"].dt.year - facts["birth_year"]
    facts["has_covariates"] = facts[list(study.covariates)].notna().all(axis=1)
    return facts


def eligibility(facts: pd.DataFrame, *, imputed: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Apply the rules in order; (eligible patients sorted by id, attrition table). With
    multiple imputation (`imputed`) the missing-covariate step applies to the complete-case
    analyses only."""
    breaks = {
        "non_osteoporotic_index_fracture": facts["n_other_etiology"] > 0,
        "no_osteoporotic_index_fracture": facts["t0"].isna(),
        "procedure_before_t0": facts["first_procedure_on"] < facts["t0"],
        "no_follow_up_after_t0": ~(facts["duration_days"] > 0),
    }
    treated = facts["treated"]

    def step(n: int, rule: str, excluded: int, keep: pd.Series, applies: str) -> tuple[Any, ...]:
        n_treated = int(treated[keep].sum())
        return (n, rule, excluded, int(keep.sum()), n_treated, int(keep.sum()) - n_treated, applies)

    remaining = pd.Series(True, index=facts.index)
    steps = [step(0, "registered patients", 0, remaining, "all")]
    for n, (key, label) in enumerate(RULES, start=1):
        excluded = remaining & breaks[key]
        remaining = remaining & ~excluded
        steps.append(step(n, label, int(excluded.sum()), remaining, "all"))
    adjusted = remaining & facts["has_covariates"]
    label, applies = "missing covariates for adjusted models", "adjusted models"
    if imputed:
        label, applies = (
            "missing covariates, imputed for the adjusted models",
            "complete-case analyses",
        )
    missing = int((remaining & ~facts["has_covariates"]).sum())
    steps.append(step(len(RULES) + 1, label, missing, adjusted, applies))
    columns = ["step", "rule", "excluded", "remaining", "remaining_treated"]
    attrition = pd.DataFrame(steps, columns=[*columns, "remaining_conservative", "applies_to"])
    eligible = facts[remaining].drop(columns=["first_procedure_on", "n_other_etiology"])
    return eligible.sort_index(), attrition


def policy_counts(
    t: dict[str, pd.DataFrame], facts: pd.DataFrame, eligible: pd.DataFrame, fractures: pd.DataFrame
) -> pd.DataFrame:
    """Rows and patients set aside by the data policy (fractures: joined to the window)."""
    procedures = t["procedures"].merge(
        eligible[["treat_on"]], left_on="patient_id", right_index=True
    )
    death_on = facts.loc[facts["death_on"].notna(), ["death_on"]]
    contacts = t["follow_up"].merge(death_on, left_on="patient_id", right_index=True)
    assessed = t["assessments"].merge(death_on, left_on="patient_id", right_index=True)
    set_aside = {
        "fracture_on_or_before_t0": fractures[fractures["detected_on"] <= fractures["t0"]],
        "fracture_after_end_of_follow_up": fractures[
            fractures["detected_on"] > fractures["end_on"]
        ],
        "procedure_not_treatment": procedures[
            procedures["treat_on"].isna() | (procedures["performed_on"] != procedures["treat_on"])
        ],
        "conflicting_death_dates": eligible[eligible["n_death_dates"] > 1].reset_index(),
        "contact_after_death": contacts[contacts["contact_on"] > contacts["death_on"]],
        "assessment_after_death": assessed[assessed["assessed_on"] > assessed["death_on"]],
    }
    rows = [(rule, len(f), f["patient_id"].nunique()) for rule, f in set_aside.items()]
    return pd.DataFrame(rows, columns=["rule", "rows", "patients"])
