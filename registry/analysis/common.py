"""Shared pieces of the analysis stage: guarded fits, arms, Wald summaries, model matrices."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from functools import partial
from typing import TypeVar, cast

import numpy as np
import polars as pl
from scipy import stats

from registry.constants import Z95
from registry.errors import ModelFitError
from registry.models import cox, km
from registry.models.iptw import design_matrix
from registry.result_types import Arm, CoxFit, ModelError, Wald, Year
from registry.study import Study

YEARS = cast(dict[Year, int], {str(i + 1): d for i, d in enumerate(km.YEARS_DAYS)})
PIECE_DAY = 365  # piecewise hazard ratios: 0-1 year and 1-5 years
R = TypeVar("R", bound=Mapping[str, object])  # a result TypedDict


def guarded(fit: Callable[[], R]) -> R | ModelError:
    """Run one model; its warnings are kept with it, a failure becomes {'error': reason}."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = fit()
        except (ValueError, ArithmeticError, np.linalg.LinAlgError, NotImplementedError) as exc:
            return {"error": f"{type(exc).__name__}: {exc}"}
        except ModelFitError as exc:
            return {"error": str(exc)}
    notes = sorted({str(w.message) for w in caught if not issubclass(w.category, RuntimeWarning)})
    return cast(R, {**result, "warnings": notes}) if notes else result


def arm_masks(frame: pl.DataFrame) -> dict[Arm, np.ndarray]:
    """Boolean row masks of the two arms (ever-treated or treated-by-landmark)."""
    treated = frame.get_column("treated").cast(pl.Boolean).to_numpy()
    return {"treated": treated, "untreated": ~treated}


ARM_NAMES: tuple[Arm, Arm] = ("treated", "untreated")  # arm codes 0 and 1: the names' sorted order


def arm_codes(frame: pl.DataFrame) -> np.ndarray:
    """0 for treated rows, 1 for untreated: what np.unique makes of the arm names, without
    sorting a million strings in every test."""
    return (~arm_masks(frame)["treated"]).astype(np.int8)


def per_arm(
    frame: pl.DataFrame, threshold: int, fit: Callable[[np.ndarray], R]
) -> dict[Arm, R | ModelError]:
    """One fit per arm; an arm smaller than the small-cell threshold is not estimated, since
    its curve would show individual patients' event days."""
    small: ModelError = {"error": f"fewer than {threshold} patients in this arm: not shown"}
    return {
        arm: small if 0 < mask.sum() < threshold else guarded(partial(fit, mask))
        for arm, mask in arm_masks(frame).items()
    }


def wald(coef: float, se: float) -> Wald:
    """Hazard ratio with its 95% Wald CI and two-sided p."""
    z = coef / se if se > 0 else float("nan")
    with np.errstate(over="ignore"):  # an infinite bound is written as null
        return {
            "hr": float(np.exp(coef)),
            "ci_lower": float(np.exp(coef - Z95 * se)),
            "ci_upper": float(np.exp(coef + Z95 * se)),
            "p": float(2 * stats.norm.sf(abs(z))),
            "se": float(se),
        }


def cox_result(fit: cox.CoxFit, label: str, term: str = "treated") -> CoxFit:
    """HR, CI and p of the treatment term, the model's size and every term."""
    i = fit.names.index(term)
    return {
        **wald(float(fit.coef[i]), float(fit.se[i])),
        "n": fit.n,
        "events": fit.events,
        "robust": fit.robust,
        "converged": fit.converged,
        "label": label,
        "terms": {
            n: wald(float(c), float(s)) for n, c, s in zip(fit.names, fit.coef, fit.se, strict=True)
        },
    }


def covariate_matrix(
    frame: pl.DataFrame, study: Study, *, adjusted: bool
) -> tuple[np.ndarray, list[str]]:
    """Treatment column, plus the study covariates when adjusted."""
    treated = frame.get_column("treated").cast(pl.Float64).to_numpy()[:, None]
    if not adjusted:
        return treated, ["treated"]
    x, names = design_matrix(frame, study.covariates)
    return np.hstack([treated, x]), ["treated", *names]


def complete(frame: pl.DataFrame, *, adjusted: bool) -> pl.DataFrame:
    """Rows usable by a model: all of them, or those with every covariate when adjusted."""
    return frame.filter(pl.col("has_covariates")) if adjusted else frame
