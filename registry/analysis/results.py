"""Assemble results.json: cohort, every outcome's models, PROs, provenance; suppress small
counts before anything else sees them."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
from dataclasses import replace
from typing import Any, cast

import numpy as np
import polars as pl

from registry.analysis import analyse_outcome
from registry.analysis.imputation import Imputations
from registry.analysis.missing import (
    impute_covariates,
    imputed,
    missing_data_section,
    pool_outcomes,
    with_pooled,
)
from registry.analysis.table_one import table_one
from registry.analysis.target_trial.estimate import emulate
from registry.analysis.target_trial.result import protocol_table, trial_settings
from registry.cohort import Cohort, complete_case_attrition
from registry.compute import Runner
from registry.models import km
from registry.privacy.protect import protect
from registry.result_types import (
    AttritionRow,
    CohortSummary,
    IngestQuality,
    MissingCovariate,
    MissingDataSection,
    OutcomeResults,
    PolicyRow,
    ProResults,
    Provenance,
    Results,
    StudySection,
    TargetTrial,
)
from registry.study import Study
from registry.time_to_event import TimeToEvent

# Keys whose values are counts of patients or events: suppressed when 0 < n < threshold.
COUNT_KEYS = frozenset(
    {"n", "events", "at_risk", "censored", "total_events", "deaths_first", "n_treated",
     "n_untreated", "excluded", "remaining", "remaining_treated", "remaining_conservative",
     "rows", "patients", "n_baseline", "n_followup", "count", "missing", "n_rows",
     "violations", "rows_read", "rows_inserted", "rows_updated", "rows_unchanged",
     "rows_quarantined"}
)  # fmt: skip
PACKAGES = ("vertebral-registry", "duckdb", "polars", "numpy", "scipy", "lifelines", "statsmodels")


def cohort_summary(cohort: Cohort, study: Study) -> CohortSummary:
    """Cohort size by arm, attrition, data policy and median follow-up (reverse KM)."""
    patients = cohort.patients
    treated = int(patients.get_column("treated").sum()) if patients.height else 0
    untreated = patients.height - treated
    # a small arm hides the other one too: n minus one arm would give it back
    hide = any(0 < arm < study.min_cell_count for arm in (treated, untreated))
    summary: CohortSummary = {
        "n": patients.height,
        "n_treated": None if hide else treated,
        "n_untreated": None if hide else untreated,
        "attrition": cast(list[AttritionRow], cohort.attrition.to_dicts()),
        "data_policy": cast(list[PolicyRow], cohort.policy.to_dicts()),
    }
    if patients.height:
        duration = patients.get_column("duration_days").to_numpy().astype(float)
        died = patients.get_column("died").to_numpy()
        median, lower, upper = km.median_follow_up(duration, died)
        summary["median_follow_up_days"] = {"median": median, "ci_lower": lower, "ci_upper": upper}
    return summary


def provenance(study_text: str, snapshot: pl.DataFrame, as_of: str) -> Provenance:
    """Hashes of the study file and the registry contents, versions, as_of."""
    digest = hashlib.sha256(json.dumps(snapshot.rows()).encode()).hexdigest()
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "study_sha256": hashlib.sha256(study_text.encode()).hexdigest(),
        "data_snapshot_sha256": digest,
        "table_rows": dict(snapshot.select("table_name", "n_rows").iter_rows()),
        "versions": versions,
        "as_of": as_of,
    }


def build_results(
    cohort: Cohort,
    tte: TimeToEvent,
    study: Study,
    *,
    pro: ProResults,
    baseline_scores: pl.DataFrame,
    data_quality: IngestQuality,
    prov: Provenance,
    assessments: pl.DataFrame,
    runner: Runner | None = None,
) -> Results:
    """Every number of the report, small counts suppressed (`baseline_scores`: Table 1's PRO
    baselines as analysis.pro.baseline_of gives them; `assessments`: the frame of
    sql/queries/analysis/assessments.sql, for the target trial's weights; `runner`: where the
    imputation chains, pooled refits and bootstrap replicates run, default serial)."""
    outcomes = {name: analyse_outcome(name, *tte.frames(name), study) for name in study.outcomes}
    imputations = impute_covariates(cohort, tte, study, runner)  # None: complete cases only
    done = imputed(imputations)
    if done is not None:
        for name in study.outcomes:  # one outcome's frames at a time
            one = replace(study, outcomes=(name,))
            for key, pooled in pool_outcomes(tte.of(name), done, one, runner=runner).items():
                with_pooled(outcomes[key], pooled)
    elif study.missing_data.method == "multiple_imputation":  # asked for, nothing imputed
        cohort = replace(cohort, attrition=complete_case_attrition(cohort.attrition))
    weighted = smd_after_weighting(outcomes.get(study.primary_outcome))
    missing = missing_data_section(cohort, study, imputations, outcomes)
    results: Results = {
        "study": study_section(study),
        "cohort": cohort_summary(cohort, study),
        "table1": table_one(cohort, baseline_scores, weighted, study.min_cell_count),
        "outcomes": outcomes,
        "pro": pro,
        "data_quality": {**data_quality, "missing_covariates": missing_covariates(missing)},
        "provenance": prov,
        "small_cell_threshold": study.min_cell_count,
        "target_trial": target_trial(tte, assessments, study, done, runner),
        "missing_data": missing,
    }
    return publish(results, study.min_cell_count)


def publish(results: Results, threshold: int) -> Results:
    """results.json as it is written and rendered: numbers made JSON-safe and every count
    that is small, or gives a small one back, withheld. The one pass between the estimators
    and any reader; it works on the document by JSON pointer, so the shape stays `Results`."""
    # complementary suppression first (it needs the true small counts), then the rest
    protected = protect(clean_numbers(results), threshold)
    return cast(Results, suppress_small(protected, threshold))


def study_section(study: Study) -> StudySection:
    """The study specification as results.json holds it (tuples as lists; the target trial's
    settings are in the top-level `target_trial`, the missing-data ones in `missing_data`)."""
    values = {k: v for k, v in vars(study).items() if k not in ("target_trial", "missing_data")}
    return cast(
        StudySection, {k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items()}
    )


def target_trial(
    tte: TimeToEvent,
    assessments: pl.DataFrame,
    study: Study,
    imputations: Imputations | None = None,
    runner: Runner | None = None,
) -> TargetTrial | None:
    """The target-trial emulation of every outcome of the study, its weights fitted on every
    completed dataset when covariates were imputed; None when it is disabled."""
    protocol = study.target_trial
    if not protocol.enabled:
        return None
    completed = imputations.completed if imputations is not None else ()
    outcomes = {
        key: emulate(
            tte.of(key).outcomes,
            assessments,
            protocol,
            outcome=key,
            imputed=completed,
            runner=runner,
        )
        for key in study.outcomes
    }
    return {
        "protocol": protocol_table(study),
        "grace_days": protocol.grace_days,
        "primary_outcome": study.primary_outcome,
        "settings": trial_settings(protocol),
        "outcomes": outcomes,
    }


def smd_after_weighting(outcome: OutcomeResults | None) -> dict[str, float | None]:
    """Covariate -> standardised mean difference after IPT weighting (Table 1), if fitted."""
    iptw = outcome["cox"]["iptw"] if outcome is not None else None
    if iptw is None or "error" in iptw:
        return {}
    return {row["covariate"]: row["smd_after"] for row in iptw["balance"]}


def missing_covariates(section: MissingDataSection) -> list[MissingCovariate]:
    """Eligible patients missing each covariate of the adjusted models, as the missing-data
    section counted them (a count key, so small numbers are suppressed)."""
    return [{"covariate": v["covariate"], "missing": v["missing"]} for v in section["variables"]]


def clean_numbers(value: Any) -> Any:
    """NumPy scalars to Python, NaN and infinities to None (JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): clean_numbers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if _plain_numbers(value):  # a curve: thousands of floats, one pass without calls
            return [v if math.isfinite(v) else None for v in value]
        return [clean_numbers(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def suppress_small(value: Any, threshold: int, *, key: str = "") -> Any:
    """Replace counts 0 < n < threshold (under the COUNT_KEYS) by None."""
    if isinstance(value, dict):
        return {k: suppress_small(v, threshold, key=k) for k, v in value.items()}
    if isinstance(value, list):
        if not _plain_numbers(value):
            return [suppress_small(v, threshold, key=key) for v in value]
        if key not in COUNT_KEYS:
            return value
        return [None if type(v) is int and 0 < v < threshold else v for v in value]
    if key in COUNT_KEYS and isinstance(value, int) and not isinstance(value, bool):
        return None if 0 < value < threshold else value
    return value


def _plain_numbers(values: list[Any] | tuple[Any, ...]) -> bool:
    """Whether every item is a plain Python float or int (not a bool, None or container)."""
    return all(type(v) is float or type(v) is int for v in values)
