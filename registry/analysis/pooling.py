"""The adjusted models over multiply imputed datasets, pooled by Rubin's rules.

Each model that needs covariates (registry/analysis/outcome.py's ADJUSTED) is fitted on every
completed dataset; its coefficients are pooled on the log-hazard scale by Rubin's rules with
the Barnard-Rubin degrees of freedom (registry/analysis/imputation/pool.py), and the pooled
fit keeps the shape of a single fit — hr, CI, p, se, n, events, terms — with CIs and p from
t(df) and an `mi` block (imputations, df, fmi, riv, within, between) of the treatment term.

The IPTW model pools its log HR (robust variance) the same way; its weights, histograms and
weighted curves are those of each patient's propensity score and weight averaged over the
imputations, and its balance table the SMDs averaged over them (the usual report of balance
after multiple imputation, e.g. Leyrat et al. 2019, Stat Methods Med Res).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from registry.analysis.hazards import IPTWParts, iptw_result
from registry.analysis.imputation.pool import Pooled, rubin
from registry.result_types import BalanceRow, CoxFit, MIPool, ModelError, Piecewise, Wald
from registry.study import Study

Fit = dict[str, Any]


def failed(fits: Sequence[Any]) -> ModelError | None:
    """The first imputation's error, counted, when any imputation's fit failed."""
    errors = [f for f in fits if isinstance(f, dict) and "error" in f]
    if not errors:
        return None
    return {"error": f"{len(errors)} of {len(fits)} imputations: {errors[0]['error']}"}


def pooled_wald(pooled: Pooled) -> Wald:
    """The HR, t(df) CI and p of one pooled log hazard ratio."""
    with np.errstate(over="ignore"):
        return {
            "hr": float(np.exp(pooled.estimate)),
            "ci_lower": float(np.exp(pooled.ci_lower)),
            "ci_upper": float(np.exp(pooled.ci_upper)),
            "p": float(pooled.p),
            "se": float(pooled.se),
        }


def mi_block(pooled: Pooled) -> MIPool:
    """How much the imputations moved one estimate (the treatment term's)."""
    return {
        "imputations": pooled.m,
        "df": pooled.df,
        "fmi": pooled.fmi,
        "riv": pooled.riv,
        "within": pooled.within,
        "between": pooled.between,
    }


def not_finite(fits: Sequence[Fit]) -> str | None:
    """Why the fits cannot be pooled by Rubin's rules, or None: a term whose hazard ratio is
    0 or infinite, or whose SE is not a finite number, on some completed dataset (a term
    with no events on one side: the monotone likelihood that R's coxph warns about)."""
    for k, fit in enumerate(fits, start=1):
        for name, found in fit["terms"].items():
            hr, se = found.get("hr"), found.get("se")
            if hr is None or se is None or not (0 < hr < math.inf and 0 <= se < math.inf):
                return (
                    f"not pooled: on completed dataset {k} the estimate of {name} is not finite "
                    "(too few events in a group, so the likelihood has no maximum); see the "
                    "complete-case fit"
                )
    return None


def pool_terms(fits: Sequence[Fit]) -> dict[str, Pooled]:
    """Every term pooled on the log-hazard scale; dfcom = events - coefficients (what
    mice::pool takes for a coxph, see imputation/pool.py)."""
    names = list(fits[0]["terms"])
    events = fits[0].get("events") or 0
    dfcom = max(float(events) - len(names), 1.0) if events else math.inf
    return {
        name: rubin(
            [math.log(f["terms"][name]["hr"]) for f in fits],
            [f["terms"][name]["se"] ** 2 for f in fits],
            dfcom=dfcom,
        )
        for name in names
    }


def pool_cox(fits: Sequence[CoxFit | ModelError], term: str = "treated") -> CoxFit | ModelError:
    """One Cox model's fits over the imputations as one pooled fit."""
    error = failed(fits)
    if error is not None:
        return error
    done = cast(list[Fit], list(fits))
    unpoolable = not_finite(done)
    if unpoolable is not None:
        return {"error": unpoolable}
    pooled = pool_terms(done)
    first = done[0]
    notes = sorted({w for f in done for w in f.get("warnings", [])})
    result: Fit = {
        **pooled_wald(pooled[term]),
        "n": first["n"],
        "events": first["events"],
        "robust": first["robust"],
        "converged": all(f["converged"] for f in done),
        "label": first["label"],
        "terms": {name: pooled_wald(p) for name, p in pooled.items()},
        "mi": mi_block(pooled[term]),
    }
    if "n_rows" in first:
        result["n_rows"] = first["n_rows"]
    if notes:
        result["warnings"] = notes
    return cast(CoxFit, result)


def pool_piecewise(fits: Sequence[Piecewise | ModelError]) -> Piecewise | ModelError:
    """The piecewise model's two periods, each pooled over the imputations."""
    error = failed(fits)
    if error is not None:
        return error
    done = cast(list[Fit], list(fits))
    terms = {"0-1y": "treated_0_1y", "1-5y": "treated_1_5y"}
    return cast(Piecewise, {p: pool_cox([f[p] for f in done], term) for p, term in terms.items()})


def pool_iptw(fits: Sequence[Fit], study: Study) -> Fit:
    """The IPTW model over the imputations ({"parts": IPTWParts} each, see
    outcome.adjusted_fits): pooled log HR, averaged scores, weights and SMDs."""
    error = failed(fits)
    if error is not None:
        return cast(Fit, error)
    done = cast(list[IPTWParts], [f["parts"] for f in fits])
    fit = pool_cox([p.cox for p in done])
    if "error" in fit:
        return cast(Fit, fit)
    score = np.mean([p.propensity.score for p in done], axis=0)
    weights = np.mean([p.propensity.weights for p in done], axis=0)
    balance = averaged_balance(done)
    return cast(
        Fit, iptw_result(done[0], score, weights, study, fit=cast(CoxFit, fit), balance=balance)
    )


def averaged_balance(parts: Sequence[IPTWParts]) -> list[BalanceRow]:
    """Each covariate's SMD before and after weighting, averaged over the imputations."""
    tables = [p.propensity.balance for p in parts]
    names = tables[0].get_column("covariate").to_list()
    before = np.mean([t.get_column("smd_before").to_numpy() for t in tables], axis=0)
    after = np.mean([t.get_column("smd_after").to_numpy() for t in tables], axis=0)
    return [
        {"covariate": n, "smd_before": float(b), "smd_after": float(a)}
        for n, b, a in zip(names, before, after, strict=True)
    ]
