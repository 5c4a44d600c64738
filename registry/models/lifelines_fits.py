"""The models lifelines fits, through this one adapter; the in-house engine fits the rest.

lifelines fits a model here only when it equals R within 1e-8 and runs within 3x the
in-house engine at 1,000,000 patients, on the pipeline's own frames
(benchmarks/lifelines_vs_inhouse.py, results in benchmarks/results/lifelines_vs_inhouse.md;
the README's table "Who fits what, and why"). By those measurements that is the unweighted
Kaplan-Meier curves (1.35x ours, median of six runs) and the unadjusted fixed-covariate Cox
models, ever-treated and landmark (2.3x and 1.75x). The adjusted ones stay in-house
(3.15x and 2.95x: at the line, over it pooled), as do the weighted curves (lifelines'
weighted variance is not R's infinitesimal jackknife), the IPTW Cox with robust SE (79x at
100,000 patients, SEs 5.7e-7 off R), the time-varying Cox (CoxTimeVaryingFitter 600-1,100x,
no robust variance), cumulative incidence, Fine-Gray, Gray's test and the RMST variance.

lifelines is imported inside the call (it costs about a second to import and most commands
never fit a model), and its results are converted once, here, into the project's own frozen
dataclasses, so that nothing downstream depends on lifelines' objects.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import numpy.typing as npt

from registry.models import km
from registry.models.cox import CoxFit, CoxInputError
from registry.models.cox.design import build_design
from registry.models.cox.inputs import as_matrix, check_covariates, check_inputs
from registry.models.km import KaplanMeier, _as_arrays, _first_below_half

# lifelines stops on |step| < precision (default 1e-7), a relative loglik change below
# r_precision (1e-9) or a Newton decrement below precision: ~1e-6 (relative) short of R's
# estimate by default, still 2.6e-8 with 1e-14 on a small data set (its last step is not
# taken); 1e-20 takes one more full Newton step, bounded by R-like max_steps.
LIFELINES_COX = {"precision": 1e-20, "r_precision": 1e-20, "step_size": 1.0, "max_steps": 50}


def fit_km(
    duration: npt.ArrayLike, event: npt.ArrayLike, *, weights: npt.ArrayLike | None = None
) -> KaplanMeier:
    """Kaplan-Meier curve with log-log 95% CI: lifelines' KaplanMeierFitter when unweighted,
    km.fit_km (R's jackknife variance) with weights or without rows."""
    if weights is not None:
        return km.fit_km(duration, event, weights=weights)
    d, e, _ = _as_arrays(duration, event)  # the same checks and messages as km.fit_km
    if d.size == 0:
        return km.fit_km(d, e)
    return _km_from_lifelines(d, e)


def _km_from_lifelines(d: np.ndarray, e: np.ndarray) -> KaplanMeier:
    """KaplanMeierFitter's curve as a KaplanMeier, in the project's conventions."""
    from lifelines import KaplanMeierFitter

    # lifelines' default CI, "exponential Greenwood", is R's conf.type = "log-log".
    fitter = KaplanMeierFitter().fit(d, event_observed=e, alpha=0.05)
    table = fitter.event_table  # one row per distinct time and day 0, as the curve
    survival = fitter.survival_function_.to_numpy(dtype=float)[:, 0]
    limits = fitter.confidence_interval_.to_numpy(dtype=float)
    # km.fit_km's convention: the CI is [1, 1] where S = 1 and NaN where S = 0.
    fill = np.where(survival >= 1, 1.0, np.nan)
    inner = (survival > 0) & (survival < 1)
    lower, upper = (np.where(inner, limits[:, j], fill) for j in (0, 1))
    times = table.index.to_numpy(dtype=float)
    return KaplanMeier(
        times=times,
        survival=survival,
        ci_lower=lower,
        ci_upper=upper,
        at_risk=table["at_risk"].to_numpy(dtype=float),
        events=table["observed"].to_numpy(dtype=float),
        censored=table["censored"].to_numpy(dtype=float),
        n=int(d.size),
        total_events=int(e.sum()),
        median=_first_below_half(survival, times),
        median_ci=(_first_below_half(lower, times), _first_below_half(upper, times)),
    )


def fit_cox_fixed(duration: Any, event: Any, X: Any, *, names: Any = None) -> CoxFit:
    """Cox model on one row per patient by lifelines' CoxPHFitter (Efron ties, model-based
    variance, no weights), with fit_cox's checks and messages, as the project's CoxFit
    (iterations 0: lifelines does not report them; its design serves ph_test and residuals)."""
    x = as_matrix(X)
    labels = tuple(names) if names is not None else tuple(f"x{j + 1}" for j in range(x.shape[1]))
    stop, ev, _, w = check_inputs(duration, event, None, None, x, labels)
    check_covariates(x, labels)
    fitter, converged = _cox_from_lifelines(stop, ev, x, labels)
    var = fitter.variance_matrix_.to_numpy(dtype=float)
    se = np.sqrt(np.diag(var))
    loglik = float(fitter.log_likelihood_)
    # the likelihood-ratio statistic is 2 (loglik - loglik at beta = 0)
    null = loglik - float(fitter.log_likelihood_ratio_test().test_statistic) / 2
    return CoxFit(
        labels, fitter.params_.to_numpy(dtype=float), se, se, False, loglik, null,
        int(stop.size), int(ev.sum()), 0, converged, var, var,
        build_design(stop, ev, x, None, w, None),
    )  # fmt: skip


def _cox_from_lifelines(
    stop: np.ndarray, ev: np.ndarray, x: np.ndarray, labels: tuple[str, ...]
) -> tuple[Any, bool]:
    """The fitted CoxPHFitter and whether it converged; lifelines' warnings in our words."""
    import pandas as pd
    from lifelines import CoxPHFitter
    from lifelines.exceptions import ConvergenceError

    data = pd.DataFrame(x, columns=[f"x{j}" for j in range(x.shape[1])])
    data["_time"], data["_event"] = stop, ev.astype(np.int8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # batch_mode: lifelines' own heuristic picks its per-row Efron path for a single
            # binary covariate, 3-50x slower on these frames (~1,826 distinct days)
            fitter = CoxPHFitter().fit(
                data, "_time", "_event", fit_options=LIFELINES_COX, batch_mode=True
            )
        except ConvergenceError as exc:
            raise CoxInputError(
                f"the Cox model of ({', '.join(labels)}) could not be fitted: a covariate may be "
                "collinear with others or separate the events; drop or combine it."
            ) from exc
    failed = any("failed to converge" in str(w.message) for w in caught)
    if failed or any("still high" in str(w.message) for w in caught):
        warnings.warn(
            f"the Cox model of ({', '.join(labels)}) did not converge: a coefficient may be "
            "infinite (e.g. no events in one group); consider removing or merging it.",
            stacklevel=3,
        )
    return fitter, not failed
