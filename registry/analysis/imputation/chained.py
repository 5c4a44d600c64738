"""Multiple imputation by chained equations (fully conditional specification), as R's mice.

Each incomplete covariate is imputed from every other covariate (its current completed
values, in model-matrix coding) and the auxiliary predictors (treatment, site, death, each
outcome's event and Nelson-Aalen hazard: auxiliary.py), one variable after the other in
study order, `iterations` times, starting from random draws of the observed values. The
imputation is proper: each step draws the model's parameters from their posterior first.

* Continuous and count covariates (BMD T-score, prior fractures, age) by predictive mean
  matching: a Bayesian linear regression draw (fits.draw_linear), then each missing value
  takes the observed value of a donor drawn from the `donors` observed rows whose predicted
  mean (beta_hat) is nearest its own (beta*; mice's type-1 matching). The T-score is bounded
  and skewed and prior fractures are counts: a normal-model draw would make values that
  cannot occur (non-integer counts, out-of-range scores) and force a normal shape on a
  skewed one, while a donor's value is always one that was observed.
* Binary covariates (glucocorticoids, sex) by Bayesian logistic regression (mice's logreg):
  beta* ~ N(beta_hat, (X'WX)^-1), then value = u < expit(x beta*). A linear model would make
  probabilities outside [0, 1]; the logistic model is the binary variable's own model.

Imputation j draws only from numpy's default_rng([seed, j]), so the m chains are independent
and run through any Runner (registry.compute: serial, local processes, a Dask cluster) with
the same result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy.special import expit

from registry.analysis.imputation import fits
from registry.compute import Runner, SerialRunner
from registry.errors import ModelFitError
from registry.missing_data import MissingData

CHAINS_SCHEMA = {
    "imputation": pl.Int64,
    "iteration": pl.Int64,
    "variable": pl.String,
    "mean": pl.Float64,
    "sd": pl.Float64,
}
# Newton stops when no coefficient moves by more than LOGISTIC_TOL (relative) or by more than
# LOGISTIC_TOL_SE of its standard error: the step that would follow is smaller still by the
# chord's rate (the information's relative error, < 1e-2), so the maximum is reached to
# well within 1e-4 of a standard error, where no draw can tell the difference
LOGISTIC_TOL = 1e-5
LOGISTIC_TOL_SE = 0.01
# The information matrix X'WX (a pass over every row, the costly part) is reused within a
# Newton run while the linear predictor moved by no more than this (root mean square over
# the observed rows; each weight p(1-p) changes by at most 0.1 x that), so the covariance of
# the draw is that at the maximum to about 0.1 %; the maximum itself is always exact. It is
# carried to the next iteration's run while its margins X'w stay within 0.2 % of their
# bound (fits.still_valid): the other variables' imputations are redrawn in between, which
# changes X'WX by about (share missing) / sqrt(rows missing), 5e-4 at a million patients.
CHORD = 0.01


@dataclass(frozen=True)
class Imputations:
    """The m completed datasets and what was imputed from what."""

    variables: tuple[str, ...]  # the covariates imputed, in chain order
    methods: dict[str, str]  # variable -> "pmm" | "logreg"
    predictors: dict[str, tuple[str, ...]]  # variable -> predictor (model-matrix) names
    completed: tuple[pl.DataFrame, ...]  # patient_id + every covariate, cohort order
    missing: pl.DataFrame  # patient_id + one Boolean per covariate: observed value is null
    chains: pl.DataFrame  # imputation, iteration, variable, mean, sd of the imputed values
    notes: tuple[str, ...] = field(default=())  # what was not imputed or used, and why


@dataclass(frozen=True)
class _Problem:
    """Everything a chain needs, shared by all m chains (picklable for process pools)."""

    z: np.ndarray  # n x P, Fortran: intercept, predictors, imputed columns (0 where missing)
    names: tuple[str, ...]  # the imputed variables, in chain order
    columns: tuple[int, ...]  # column of each imputed variable in z
    observed: tuple[np.ndarray, ...]  # observed rows (indices) of each imputed variable
    missed: tuple[np.ndarray, ...]  # missing rows (indices) of each imputed variable
    logistic: tuple[bool, ...]
    fixed_gram: tuple[np.ndarray, ...]  # Z'diag(observed)Z with the imputed columns zeroed
    starts: tuple[np.ndarray, ...]  # logistic models: the first iteration's Newton start
    iterations: int
    seed: int
    donors: int


def model_column(series: pl.Series) -> np.ndarray:
    """A covariate in model-matrix coding (sex -> male 0/1, booleans 0/1), NaN where null."""
    if series.name == "sex":
        series = series == "M"
    return series.cast(pl.Float64).fill_null(float("nan")).to_numpy().astype(np.float64)


def model_name(name: str) -> str:
    """The model-matrix name of a covariate (registry.models.iptw.design_matrix's)."""
    return "male" if name == "sex" else name


def is_binary(series: pl.Series) -> bool:
    """Imputed by logistic regression: booleans and sex."""
    return series.name == "sex" or series.dtype == pl.Boolean


def impute(
    patients: pl.DataFrame,
    auxiliary: pl.DataFrame,
    covariates: tuple[str, ...],
    spec: MissingData,
    *,
    runner: Runner | None = None,
) -> Imputations:
    """Impute the study covariates `spec.imputations` times by chained equations (the chains
    through `runner`, default serial; `shared` is the _Problem, the items the chain numbers)."""
    missing = patients.select("patient_id", *(pl.col(c).is_null().alias(c) for c in covariates))
    aux = _aligned_auxiliary(patients, auxiliary)
    chosen, notes = choose_variables(patients, aux, covariates, spec)
    predictors = _predictors(covariates, chosen, patients, aux)
    plan = {v: tuple(p for p in predictors if p != model_name(v)) for v in chosen}
    if not chosen:
        return Imputations((), {}, {}, (), missing, pl.DataFrame(schema=CHAINS_SCHEMA), notes)
    problem = _problem(patients, aux, covariates, chosen, spec)
    finals = (runner or SerialRunner()).map(_run_chain, range(spec.imputations), problem)
    completed = tuple(_completed(patients, covariates, chosen, v) for v, _ in finals)
    chains = pl.DataFrame(
        [row for _, rows in finals for row in rows], schema=CHAINS_SCHEMA, orient="row"
    )
    methods = {v: "logreg" if is_binary(patients[v]) else "pmm" for v in chosen}
    return Imputations(chosen, methods, plan, completed, missing, chains, notes)


def _aligned_auxiliary(patients: pl.DataFrame, auxiliary: pl.DataFrame) -> pl.DataFrame:
    """The auxiliary predictors in the patients' row order, as Float64 (patient_id dropped)."""
    joined = patients.select("patient_id").join(
        auxiliary, on="patient_id", how="left", maintain_order="left"
    )
    aux = joined.drop("patient_id").cast(pl.Float64)
    lacking = aux.select(pl.all().is_null().sum()).row(0) if aux.width else ()
    if any(lacking):
        raise ModelFitError(
            f"the auxiliary frame lacks values for {max(lacking):,} patients: build it with "
            "auxiliary_frame() from the same cohort"
        )
    return aux


def choose_variables(
    patients: pl.DataFrame, aux: pl.DataFrame, covariates: tuple[str, ...], spec: MissingData
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The covariates to impute (study order) and a note for each incomplete one left out."""
    allowed = set(covariates if spec.variables is None else spec.variables)
    nulls = {c: patients[c].null_count() for c in covariates}
    notes: list[str] = []
    chosen = [c for c in covariates if nulls[c] and c in allowed]
    for c in covariates:
        if nulls[c] and c not in allowed:
            notes.append(f"{c}: not in missing_data.variables, so its {nulls[c]:,} missing "
                         "values stay null and it is not used as a predictor")  # fmt: skip
    while True:
        # each variable's model: intercept, the other usable covariates, the auxiliaries
        p = len([c for c in covariates if not nulls[c] or c in chosen]) + aux.width
        short = [c for c in chosen if patients.height - nulls[c] < p + 2]
        if not short:
            break
        for c in short:
            seen = patients.height - nulls[c]
            why = "no observed value" if not seen else (
                f"{seen:,} observed rows, fewer than its {p} predictors + 2")  # fmt: skip
            notes.append(f"{c}: not imputed ({why}); its missing values stay null")
        chosen = [c for c in chosen if c not in short]
    return tuple(chosen), tuple(notes)


def _predictors(
    covariates: tuple[str, ...], chosen: tuple[str, ...], patients: pl.DataFrame,
    aux: pl.DataFrame,
) -> tuple[str, ...]:  # fmt: skip
    """Model-matrix names of every usable predictor column (complete or imputed)."""
    usable = [c for c in covariates if c in chosen or not patients[c].null_count()]
    return (*(model_name(c) for c in usable), *aux.columns)


def _problem(
    patients: pl.DataFrame,
    aux: pl.DataFrame,
    covariates: tuple[str, ...],
    chosen: tuple[str, ...],
    spec: MissingData,
) -> _Problem:
    """The shared design: fixed columns first, the imputed ones last."""
    fixed = [c for c in covariates if c not in chosen and not patients[c].null_count()]
    width = 1 + len(fixed) + aux.width
    z = np.empty((patients.height, width + len(chosen)), order="F")
    z[:, 0] = 1.0
    for k, c in enumerate(fixed, start=1):
        z[:, k] = model_column(patients[c])
    for k, c in enumerate(aux.columns, start=1 + len(fixed)):
        z[:, k] = aux[c].to_numpy()
    grams, observed, missed = [], [], []
    for k, c in enumerate(chosen):
        values = model_column(patients[c])
        gone = np.isnan(values)
        z[:, width + k] = np.where(gone, 0.0, values)
        observed.append(np.flatnonzero(~gone))
        missed.append(np.flatnonzero(gone))
        # the fixed block of X'X over this variable's observed rows, computed once
        fixed_gram = np.zeros((z.shape[1], z.shape[1]))
        fixed_gram[:width, :width] = fits.gram(z[:, :width], (~gone).astype(np.float64))
        grams.append(fixed_gram)
    columns = tuple(range(width, width + len(chosen)))
    binary = tuple(is_binary(patients[c]) for c in chosen)
    return _Problem(
        z=z,
        names=chosen,
        columns=columns,
        observed=tuple(observed),
        missed=tuple(missed),
        logistic=binary,
        fixed_gram=tuple(grams),
        starts=tuple(
            _logistic_start(z, col, rows, width) if flag else np.zeros(0)
            for col, rows, flag in zip(columns, observed, binary, strict=True)
        ),
        iterations=spec.iterations,
        seed=spec.seed,
        donors=spec.donors,
    )


def _logistic_start(z: np.ndarray, col: int, observed: np.ndarray, width: int) -> np.ndarray:
    """Where every chain's first Newton run for a binary variable starts: the fit on its
    observed rows with the fixed predictors only (the imputed ones are still unfilled).
    Computed once, it saves each chain the many steps of a start from zero; the maximum
    reached does not depend on it."""
    weights = np.zeros(z.shape[0])
    weights[observed] = 1.0
    fixed = np.arange(width)
    fit = fits.fit_logistic(z, z[:, col], tol=LOGISTIC_TOL, mask=weights, columns=fixed,
                            chord=CHORD, tol_se=LOGISTIC_TOL_SE)  # fmt: skip
    return fit.coef


Row = tuple[int, int, str, float, float | None]


def _run_chain(problem: _Problem, j: int) -> tuple[np.ndarray, list[Row]]:
    """Imputation j: the final values of the imputed columns and the chain's trace."""
    rng = np.random.default_rng([problem.seed, j])
    z = problem.z.copy(order="F")
    for col, obs, mis in zip(problem.columns, problem.observed, problem.missed, strict=True):
        z[mis, col] = rng.choice(z[obs, col], size=mis.size)
    starts: dict[int, tuple[np.ndarray, fits.Information | None]] = {}
    rows: list[Row] = []
    for iteration in range(1, problem.iterations + 1):
        for i, col in enumerate(problem.columns):
            _step(problem, z, i, rng, starts)
            values = z[problem.missed[i], col]
            sd = float(values.std(ddof=1)) if values.size > 1 else None
            rows.append((j, iteration, problem.names[i], float(values.mean()), sd))
    return np.asarray(z[:, list(problem.columns)]), rows


def _step(
    problem: _Problem, z: np.ndarray, i: int, rng: np.random.Generator,
    starts: dict[int, tuple[np.ndarray, fits.Information | None]],
) -> None:  # fmt: skip
    """Draw new imputations of variable i in place."""
    col, obs, mis = problem.columns[i], problem.observed[i], problem.missed[i]
    weights = np.zeros(z.shape[0])
    weights[obs] = 1.0
    y = z[:, col]
    if problem.logistic[i]:
        others = np.delete(np.arange(z.shape[1]), col)  # every column but its own
        start, carried = starts.get(i, (problem.starts[i], None))
        fit = fits.fit_logistic(z, y, start=start, tol=LOGISTIC_TOL, mask=weights,
                                columns=others, chord=CHORD, information=carried,
                                tol_se=LOGISTIC_TOL_SE)  # fmt: skip
        starts[i] = (fit.coef, fit.information)
        beta = fits.draw_logistic(fit, rng)
        p = expit((z @ beta)[mis])  # a pass over z: gathering its rows first is slower
        z[mis, col] = (rng.random(mis.size) < p).astype(np.float64)
        return
    gram, xty = _current_gram(problem, z, i, weights)
    linear = fits.solve_linear(gram, xty, obs.size)
    yty = float(y[obs] @ y[obs])
    ssr = max(yty - float(linear.coef @ xty), 0.0)
    beta = fits.draw_linear(linear, ssr, rng)
    donors = match_donors((z @ linear.coef)[obs], (z @ beta)[mis], problem.donors, rng)
    z[mis, col] = y[obs][donors]


def _current_gram(
    problem: _Problem, z: np.ndarray, i: int, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """X'X and X'y of variable i's model over its observed rows, from the precomputed fixed
    block and one pass for the imputed columns (its own column is zero in X'X: left out)."""
    cols = list(problem.columns)
    # one matrix-vector product per column: faster than one product with a thin matrix
    cross = np.column_stack([z.T @ (z[:, c] * weights) for c in cols])
    gram = problem.fixed_gram[i].copy()
    gram[:, cols] = cross
    gram[cols, :] = cross.T
    col = problem.columns[i]
    xty = cross[:, i].copy()
    xty[col] = 0.0
    gram[col, :] = 0.0
    gram[:, col] = 0.0
    return gram, xty


def match_donors(
    obs_pred: np.ndarray, mis_pred: np.ndarray, donors: int, rng: np.random.Generator
) -> np.ndarray:
    """For each missing row, an observed row drawn uniformly from the `donors` whose
    predictions are nearest (indices into obs_pred). The nearest k of a sorted array are a
    window [s, s + k); its start is found by a binary search over the k + 1 starts around
    the row's place (log2(k + 1) vectorised rounds, no loop over rows)."""
    order = np.argsort(obs_pred)
    ranked = obs_pred[order]
    query_order = np.argsort(mis_pred)
    query = mis_pred[query_order]
    n, k = ranked.size, min(donors, ranked.size)
    place = np.searchsorted(ranked, query)
    low, high = np.clip(place - k, 0, n - k), np.clip(place, 0, n - k)
    for _ in range(int(np.ceil(np.log2(k + 1)))):
        active = low < high
        mid = (low + high) // 2
        # the window starting at mid is too far left when its left end is farther from the
        # query than the first value after it (a window ending at the last value is not)
        right = mid + k
        too_left = (right < n) & (query - ranked[mid] > ranked[np.minimum(right, n - 1)] - query)
        low = np.where(active & too_left, mid + 1, low)
        high = np.where(active & ~too_left, mid, high)
    picked = low + rng.integers(0, k, size=query.size)
    found = np.empty(query.size, dtype=np.intp)
    found[query_order] = order[picked]
    return found


def _completed(
    patients: pl.DataFrame, covariates: tuple[str, ...], chosen: tuple[str, ...],
    values: np.ndarray,
) -> pl.DataFrame:  # fmt: skip
    """patient_id and every covariate, the imputed ones replaced, original dtypes."""
    replaced = [_restored(patients[c], values[:, i]) for i, c in enumerate(chosen)]
    return patients.select("patient_id", *covariates).with_columns(replaced)


def _restored(original: pl.Series, values: np.ndarray) -> pl.Series:
    """Model-coded values back in the covariate's own type (male -> "M"/"F")."""
    if original.name == "sex":
        return pl.Series(original.name, np.where(values > 0.5, "M", "F"), dtype=original.dtype)
    if original.dtype == pl.Boolean:
        return pl.Series(original.name, values > 0.5)
    return pl.Series(original.name, values).cast(original.dtype)
