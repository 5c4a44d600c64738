"""The models lifelines fits, through this one adapter; the in-house engine fits the rest.

lifelines fits a model here only when it equals R within 1e-8 and runs within 3x the
in-house engine at 1,000,000 patients, on the pipeline's own frames
(benchmarks/lifelines_vs_inhouse.py, results in benchmarks/results/lifelines_vs_inhouse.md;
the README's table "Who fits what, and why"). By those measurements that is the unweighted
Kaplan-Meier curve; every Cox model stays in-house (lifelines' CoxPHFitter is 10-30x slower,
its robust variance 150x, its CoxTimeVaryingFitter 200x), as do weighted curves (lifelines'
weighted variance is not R's infinitesimal jackknife), cumulative incidence, Fine-Gray,
Gray's test and the RMST variance.

lifelines is imported inside the call (it costs about a second to import and most commands
never fit a model), and its results are converted once, here, into the project's own frozen
dataclasses, so that nothing downstream depends on lifelines' objects.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from registry.models import km
from registry.models.km import KaplanMeier, _as_arrays, _first_below_half


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
