"""Missing covariates: impute them once per run, refit and pool the adjusted models, and
describe what was missing and imputed (`results.json.missing_data`).

The chained equations run once per study and run (registry/analysis/imputation/); every
outcome's adjusted models reuse the same m completed datasets, since every outcome's event
indicator and cumulative hazard are among the imputation models' predictors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import polars as pl

from registry.analysis import imputed_fits
from registry.analysis.imputation import Imputations, auxiliary_frame, impute, with_covariates
from registry.analysis.outcome import ADJUSTED, adjusted_fits
from registry.analysis.pooling import pool_cox, pool_iptw, pool_piecewise
from registry.cohort import Cohort
from registry.compute import Runner, SerialRunner
from registry.result_types import (
    Chains,
    Distribution,
    FMIRow,
    MissingDataSection,
    MissingPattern,
    MissingVariable,
    OutcomeResults,
)
from registry.study import Study
from registry.time_to_event import TimeToEvent

BINS = 20  # at most, of a continuous variable's observed-versus-imputed distribution
Pooled = dict[str, dict[str, Any]]  # outcome -> model -> pooled fit


def impute_covariates(
    cohort: Cohort, tte: TimeToEvent, study: Study, runner: Runner | None = None
) -> Imputations | None:
    """The study's completed datasets; None when the study asks for complete cases, has no
    covariates, or none of them is missing. Imputations without completed datasets when no
    incomplete covariate could be imputed (their `notes` say why)."""
    spec = study.missing_data
    if spec.method != "multiple_imputation" or nothing_to_impute(cohort, study) is not None:
        return None
    patients = cohort.patients.select("patient_id", *study.covariates)
    aux = auxiliary_frame(cohort, tte, study)
    return impute(patients, aux, study.covariates, spec, runner=runner)


def imputed(imputations: Imputations | None) -> Imputations | None:
    """The imputations when there are completed datasets to fit on, else None."""
    return imputations if imputations is not None and imputations.completed else None


def nothing_to_impute(cohort: Cohort, study: Study) -> str | None:
    """Why the adjusted models need no imputation, or None when some covariate is missing."""
    if not study.covariates:
        return "the study has no covariates: nothing to impute"
    if cohort.patients.get_column("has_covariates").all():
        return "no covariate of the adjusted models is missing: nothing was imputed"
    return None


def pool_outcomes(
    tte: TimeToEvent, imputations: Imputations, study: Study, runner: Runner | None = None
) -> Pooled:
    """Every outcome's ADJUSTED models fitted on each completed dataset and pooled (one
    outcome at a time: its frames are filtered and its designs laid out once, and only its
    fits are held). The imputations' fits run through `runner` (default: in this process);
    the results do not depend on it."""
    runner = runner or SerialRunner()
    pooled: Pooled = {}
    store = None
    for name in study.outcomes:
        frames = tte.frames(name)  # built when read, the outcome's rows once
        prepared = imputed_fits.prepare(frames, imputations.completed, study, store)
        if prepared is None:  # the datasets differ in more than values: join each one
            fits = [joined_fits(name, frames, c, study) for c in imputations.completed]
        else:
            store = prepared.covariates
            fits = refit_by_model(prepared, len(imputations.completed), runner)
        pooled[name] = pool_models(fits, study)
    return pooled


def refit_by_model(prepared: imputed_fits.Prepared, m: int, runner: Runner) -> list[dict[str, Any]]:
    """Each ADJUSTED model refitted on the m completed datasets through `runner`, one
    model's rows built and held at a time; the fits of each dataset, by model."""
    by_model: dict[str, list[Any]] = {}
    iptw_frame = None
    for model in imputed_fits.FITS:
        job = imputed_fits.ModelRows(model, prepared.rows(model), prepared.covariates)
        by_model[model] = runner.map(imputed_fits.fit_model, range(m), job)
        iptw_frame = job.rows.frame if model == "iptw" else iptw_frame
        del job  # its layout is let go before the next model's is built
    fits = [{model: found[k] for model, found in by_model.items()} for k in range(m)]
    return [imputed_fits.with_iptw_rows(f, iptw_frame) for f in fits]


def joined_fits(
    name: str, frames: Sequence[pl.DataFrame], completed: pl.DataFrame, study: Study
) -> dict[str, Any]:
    """The ADJUSTED models on the frames joined with one completed dataset (the slow path)."""
    out, cp, lm = (with_covariates(f, completed) for f in frames)
    return adjusted_fits(name, out, cp, lm, study)


def pool_models(fits: list[dict[str, Any]], study: Study) -> dict[str, Any]:
    """One outcome's ADJUSTED models pooled over the imputations' fits."""
    by_model = {m: [f[m] for f in fits] for m in ADJUSTED}
    return {
        "adjusted": pool_cox(by_model["adjusted"]),
        "time_varying_adjusted": pool_cox(by_model["time_varying_adjusted"]),
        "iptw": pool_iptw(by_model["iptw"], study),
        "piecewise": pool_piecewise(by_model["piecewise"]),
        "death_cause_specific": pool_cox(by_model["death_cause_specific"]),
    }


def with_pooled(outcome: OutcomeResults, pooled: dict[str, Any]) -> None:
    """Put the pooled fits in the models' keys and the complete-case fits beside them."""
    cox = cast(dict[str, Any], outcome["cox"])
    for model in ADJUSTED:
        cox[f"{model}_complete_case"] = cox[model]
        cox[model] = pooled[model]


def missing_data_section(
    cohort: Cohort,
    study: Study,
    imputations: Imputations | None,
    outcomes: dict[str, OutcomeResults],
) -> MissingDataSection:
    """What was missing, how it was imputed, how much it moved each pooled estimate."""
    spec = study.missing_data
    patients = cohort.patients
    notes = list(imputations.notes) if imputations is not None else []
    imputations = imputed(imputations)
    done = imputations is not None
    note = None
    if not done:
        note = (
            "the study file asks for complete-case analysis"
            if spec.method == "complete_case"
            else nothing_to_impute(cohort, study)
            or "no missing covariate could be imputed (see the notes): the adjusted models use "
            "complete cases"
        )
    return {
        "method": "multiple_imputation" if done else "complete_case",
        "imputations": len(imputations.completed) if imputations else 0,
        "iterations": spec.iterations,
        "seed": spec.seed,
        "donors": spec.donors,
        "note": note,
        "n": patients.height,
        "complete_cases": int(patients.get_column("has_covariates").sum()),
        "variables": variables(patients, study, imputations),
        "patterns": patterns(patients, study),
        "fmi": fmi_rows(outcomes),
        "chains": chains(imputations, study.min_cell_count) if imputations else None,
        "distributions": (
            distributions(patients, imputations, study.min_cell_count) if imputations else {}
        ),
        "notes": notes,
    }


def variables(
    patients: pl.DataFrame, study: Study, imputations: Imputations | None
) -> list[MissingVariable]:
    """Per covariate: missing count and percentage, and the imputation model if imputed."""
    rows: list[MissingVariable] = []
    n = patients.height
    for name in study.covariates:
        missing = patients.get_column(name).null_count()
        imputed = imputations is not None and name in imputations.variables
        rows.append({
            "covariate": name,
            "missing": missing,
            "percent": 100 * missing / n if n else None,
            "imputed": imputed,
            "method": cast(Any, imputations.methods[name]) if imputed and imputations else None,
            "predictors": list(imputations.predictors[name]) if imputed and imputations else [],
        })  # fmt: skip
    return rows


def patterns(patients: pl.DataFrame, study: Study) -> list[MissingPattern]:
    """Patients per combination of missing covariates, the most frequent first."""
    if not study.covariates or patients.is_empty():
        return []
    masks = patients.select(pl.col(c).is_null().alias(c) for c in study.covariates)
    order = [True] + [False] * len(study.covariates)  # most frequent first, then by pattern
    counted = (
        masks.group_by(study.covariates).len().sort(["len", *study.covariates], descending=order)
    )
    return [
        {"missing": [c for c in study.covariates if row[c]], "count": int(row["len"])}
        for row in counted.iter_rows(named=True)
    ]


def fmi_rows(outcomes: dict[str, OutcomeResults]) -> list[FMIRow]:
    """The fraction of missing information of every pooled treatment estimate."""
    rows: list[FMIRow] = []
    for name, outcome in outcomes.items():
        cox = cast(dict[str, Any], outcome["cox"])
        for model in ADJUSTED:
            fit = cox.get(model, {})
            parts = (
                [(period, fit.get(period, {})) for period in ("0-1y", "1-5y")]
                if model == "piecewise"
                else [("treated", fit)]
            )
            for term, part in parts:
                mi = part.get("mi") if isinstance(part, dict) else None
                if not mi:
                    continue
                hr = part.get("hr")
                rows.append({
                    "outcome": name, "model": model,
                    "term": term if model != "piecewise" else f"treated {term}",
                    "estimate": float(np.log(hr)) if hr else None,
                    "fmi": mi["fmi"], "riv": mi["riv"], "df": mi["df"],
                })  # fmt: skip
    return rows


def chains(imputations: Imputations, threshold: int) -> dict[str, Chains]:
    """Mean and SD of the imputed values per iteration and imputation (convergence), for
    variables with at least `threshold` missing values (fewer would describe those few)."""
    out: dict[str, Chains] = {}
    trace = imputations.chains
    for name in imputations.variables:
        if int(imputations.missing.get_column(name).sum()) < threshold:
            continue
        rows = trace.filter(pl.col("variable") == name).sort("imputation", "iteration")
        by = rows.partition_by("imputation", maintain_order=True)
        out[name] = {
            "mean": [r.get_column("mean").to_list() for r in by],
            "sd": [r.get_column("sd").to_list() for r in by],
        }
    return out


def distributions(
    patients: pl.DataFrame, imputations: Imputations, threshold: int
) -> dict[str, Distribution]:
    """Observed and imputed values of each imputed variable as shares per bin; a bin whose
    count (imputed: mean count per imputation) is below the threshold is withheld, and so is
    the next smallest when only one would be (the shares add up to one)."""
    out: dict[str, Distribution] = {}
    for name in imputations.variables:
        mask = imputations.missing.get_column(name).to_numpy()
        observed = patients.get_column(name).drop_nulls()
        binary = observed.dtype == pl.Boolean or observed.dtype == pl.Utf8
        imputed_values = [c.get_column(name).filter(pl.Series(mask)) for c in imputations.completed]
        if binary:
            level = observed.max() if observed.dtype == pl.Utf8 else True
            edges = None
            obs_counts = _binary_counts(observed, level)
            imp_counts = sum(_binary_counts(v, level) for v in imputed_values)
        else:
            bins = int(np.clip(mask.sum() // (4 * threshold), 4, BINS))  # a few per bin
            edges = _edges(observed, bins)
            obs_counts = np.histogram(observed.cast(pl.Float64).to_numpy(), edges)[0]
            imp_counts = sum(
                np.histogram(v.cast(pl.Float64).to_numpy(), edges)[0] for v in imputed_values
            )
        m = len(imputations.completed)
        out[name] = {
            "binary": binary,
            "edges": None if edges is None else [float(e) for e in edges],
            "observed": _shares(np.asarray(obs_counts, float), threshold),
            "imputed": _shares(np.asarray(imp_counts, float) / m, threshold),
        }
    return out


def _binary_counts(values: pl.Series, level: Any) -> np.ndarray:
    hits = int((values == level).sum())
    return np.array([values.len() - hits, hits])


def _edges(observed: pl.Series, bins: int) -> np.ndarray:
    """Bin edges on round numbers that reach past the observed range, so that no edge is one
    patient's exact value (the oldest age, the lowest T-score): whole-number bins for a
    count with a short range, else about `bins` bins of a 1, 2 or 5 x 10^k width."""
    x = observed.cast(pl.Float64).to_numpy()
    low, high = float(x.min()), float(x.max())
    if observed.dtype.is_integer() and high - low <= 30:
        return np.arange(5 * np.floor(low / 5) - 0.5, 5 * np.ceil((high + 1) / 5))
    if high == low:
        return np.array([np.floor(low), np.floor(low) + 1.0])
    raw = (high - low) / bins
    scale = 10 ** np.floor(np.log10(raw))
    width = scale * min((m for m in (1, 2, 5, 10) if m * scale >= raw), default=10)
    start, stop = width * np.floor(low / width), width * (np.floor(high / width) + 1)
    return np.round(np.arange(start, stop + width / 2, width), 10)


def _shares(counts: np.ndarray, threshold: int) -> list[float | None]:
    """Shares per bin with the small bins (and a complement) withheld."""
    total = counts.sum()
    if total < threshold:
        return [None] * counts.size
    small = (counts > 0) & (counts < threshold)
    if small.sum() == 1:  # one withheld share would be one minus the others
        others = np.where(~small & (counts > 0), counts, np.inf)
        if np.isfinite(others.min()):
            small[int(others.argmin())] = True
    return [None if s else float(c / total) for c, s in zip(counts, small, strict=True)]
