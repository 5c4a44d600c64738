"""The ADJUSTED models refitted on each completed dataset without rebuilding their designs.

Between completed datasets only covariate values change, and only in the imputed cells: the
rows each model uses (those with every covariate), their risk-set order, event groups and
bins (registry/models/cox/design.py's Layout) are the same for all m. So each model's rows
and layout are prepared once per outcome, and for imputation k its covariate columns are
gathered from that dataset's model matrix by a precomputed row -> patient index (instead of
a join per imputation and frame). The numbers are those of fitting outcome.adjusted_fits on
`with_covariates(frame, completed)`: the same arrays go through the same arithmetic
(tests/test_imputed_fits.py compares them).

`prepare` returns None when that shortcut would not be exact (the datasets disagree on their
patients or on which values are missing); the caller then joins and refits each one.

One model's rows are built at a time (`Prepared.rows`) and refitted on every dataset
(`fit_model`) before the next model's are built: at ten million patients the five models'
layouts held together were some 6 GiB, and the pool stage peaked at 19 GiB.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import polars as pl

from registry import catalogue
from registry.analysis.common import PIECE_DAY, cox_result, guarded
from registry.analysis.hazards import IPTWParts, split_at
from registry.models import cox
from registry.models.cox.inputs import check_inputs
from registry.models.iptw import design_matrix, fit_propensity
from registry.study import Study


@dataclass(frozen=True, eq=False)
class Covariates:
    """Every completed dataset's covariate model matrix (patients x columns, cohort order),
    held once: the first in full, the others as the cells where they differ from it."""

    names: tuple[str, ...]
    first: np.ndarray
    rows: np.ndarray  # the cells that differ in some dataset
    cols: np.ndarray
    values: np.ndarray  # (m, cells): their values in each dataset

    def matrix(self, k: int) -> np.ndarray:
        """The model matrix of completed dataset k (a copy)."""
        x = self.first.copy()
        x[self.rows, self.cols] = self.values[k]
        return x


@dataclass(frozen=True, eq=False)
class Rows:
    """One model's rows of one outcome: their layout (or why none could be built), each row's
    patient (position in the completed datasets) and the columns that imputation leaves."""

    layout: cox.Layout | Exception
    patients: np.ndarray
    treated: np.ndarray  # float (n, 1)
    period: np.ndarray | None = None  # piecewise: 0 before PIECE_DAY, 1 after
    n_patients: int = 0
    frame: pl.DataFrame | None = None  # IPTW: duration, event and arm (its weighted curves)


# model -> (frame: 0 outcomes, 1 counting, 2 landmark, 3 counting split at PIECE_DAY; the
# time column; the event code; (start, stop] rows; the piecewise period; IPTW keeps its rows)
MODELS: dict[str, tuple[int, str, int, bool, bool, bool]] = {
    "adjusted": (0, "duration_days", 1, False, False, False),
    "time_varying_adjusted": (1, "stop", 1, True, False, False),
    "iptw": (2, "duration_days", 1, False, False, True),
    "piecewise": (3, "stop", 1, True, True, False),
    "death_cause_specific": (1, "stop", 2, True, False, False),
}


@dataclass(frozen=True, eq=False)
class Prepared:
    """One outcome's frames, which of the datasets' patients every model keeps, and the
    completed datasets' covariates; each model's rows are built when asked for (`rows`)."""

    frames: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]
    ids: pl.Series  # the completed datasets' patient ids (kept in this process: see ModelRows)
    usable: np.ndarray  # which of them have every covariate once imputed
    covariates: Covariates

    def rows(self, model: str) -> Rows:
        """One model's rows, laid out: only the columns the model reads are kept."""
        index, time, code, start, period, keep = MODELS[model]
        used = ["patient_id", time, "event", "treated", *(["start"] if start else [])]
        frame = self.frames[1 if index == 3 else index].select(used)
        if index == 3:
            frame = split_at(frame, PIECE_DAY)
        frame = _usable(frame, self.ids, self.usable)
        return _rows(frame, time, pl.col("event") == code, start=start, period=period,
                     keep_frame=keep)  # fmt: skip

    @property
    def models(self) -> dict[str, Rows]:
        """Every model's rows at once (for tests: the pool builds one at a time)."""
        return {model: self.rows(model) for model in MODELS}


@dataclass(frozen=True, eq=False)
class ModelRows:
    """What one model's refits need, and all that goes to a worker: its rows (positions,
    layout, arm; no patient ids) and the datasets' covariate matrices."""

    model: str
    rows: Rows
    covariates: Covariates


def covariate_store(completed: Sequence[pl.DataFrame], covariates: tuple[str, ...]) -> Covariates:
    """The completed datasets' model matrices, the first in full, the rest as differences."""
    first, names = design_matrix(completed[0], covariates)
    differs = np.zeros(first.shape, dtype=bool)
    for frame in completed[1:]:
        other = design_matrix(frame, covariates)[0]
        differs |= ~((other == first) | (np.isnan(other) & np.isnan(first)))
    rows, cols = np.nonzero(differs)
    values = np.stack([design_matrix(f, covariates)[0][rows, cols] for f in completed])
    return Covariates(tuple(names), first, rows, cols, values)


def prepare(
    frames: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame],
    completed: Sequence[pl.DataFrame],
    study: Study,
    covariates: Covariates | None = None,
) -> Prepared | None:
    """One outcome's (outcomes, counting, landmark) frames prepared for every completed
    dataset (`covariates`: their covariate_store, when already built); None when the
    datasets differ in their patients or missing values, or a frame lacks a covariate."""
    if not completed:
        return None
    columns = [c for c in completed[0].columns if c != "patient_id"]
    if not set(study.covariates) <= set(columns) or not all(
        c in f.columns for f in frames for c in columns
    ):
        return None
    ids, usable = _patients(completed, columns)
    if ids is None or usable is None:
        return None
    store = covariates or covariate_store(completed, study.covariates)
    return Prepared(frames, ids, usable, store)


def _patients(
    completed: Sequence[pl.DataFrame], columns: list[str]
) -> tuple[pl.Series | None, np.ndarray | None]:
    """The datasets' patient ids and which of them have every covariate (what
    with_covariates makes has_covariates), when all datasets agree on both."""
    ids = completed[0].get_column("patient_id")
    flag = pl.all_horizontal(pl.col(c).is_not_null() for c in columns) if columns else (
        pl.lit(True))  # fmt: skip
    usable = completed[0].select(flag.alias("usable")).to_series()
    for frame in completed[1:]:
        if not frame.get_column("patient_id").equals(ids):
            return None, None
        if not frame.select(flag.alias("usable")).to_series().equals(usable):
            return None, None
    return ids, np.array(usable.to_numpy(), dtype=bool)


def _usable(frame: pl.DataFrame, ids: pl.Series, usable: np.ndarray) -> pl.DataFrame:
    """The rows that have every covariate once imputed, with their patient's position."""
    where = pl.DataFrame({"patient_id": ids}).with_row_index("_patient")
    joined = frame.join(where, on="patient_id", how="left", maintain_order="left")
    pos = joined.get_column("_patient")
    keep = np.array(pos.is_not_null().to_numpy(), dtype=bool)
    keep[keep] = usable[pos.drop_nulls().to_numpy()]
    return joined.filter(pl.Series(keep))


def _rows(
    frame: pl.DataFrame,
    time: str,
    event: pl.Expr,
    *,
    start: bool = False,
    period: bool = False,
    keep_frame: bool = False,
) -> Rows:
    """A model's rows: layout, patients, arm, and the piecewise period or the IPTW frame."""
    stop = frame.get_column(time).to_numpy().astype(float)
    ev = frame.select(event).to_series().to_numpy()
    begin = frame.get_column("start").to_numpy().astype(float) if start else None
    layout: cox.Layout | Exception
    try:  # the checks fit_cox makes before it sorts, failing each fit as it would
        stop_, ev_, begin_, _ = check_inputs(stop, ev, begin, None, np.empty((stop.size, 0)), ())
        layout = cox.build_layout(stop_, ev_, begin_, None)
    except (ValueError, ArithmeticError) as exc:
        layout = exc
    treated = frame.get_column("treated").cast(pl.Float64).to_numpy()[:, None]
    return Rows(
        layout,
        frame.get_column("_patient").to_numpy().astype(np.int64),
        treated,
        frame.get_column("period").to_numpy().astype(float) if period else None,
        frame.get_column("patient_id").n_unique(),
        frame.select("duration_days", "event", "treated") if keep_frame else None,
    )


def fit_model(job: ModelRows, k: int) -> Any:
    """One ADJUSTED model of one outcome on completed dataset k, as outcome.adjusted_fits
    gives it (IPTW parts without their rows frame: see with_iptw_rows)."""
    cov = job.covariates.matrix(k)
    return guarded(lambda: FITS[job.model](job.rows, cov, job.covariates.names))


def fit_imputation(prepared: Prepared, k: int) -> dict[str, Any]:
    """Every ADJUSTED model of one outcome on completed dataset k (fit_model, model by model)."""
    return {
        model: fit_model(ModelRows(model, prepared.rows(model), prepared.covariates), k)
        for model in FITS
    }


def with_iptw_rows(fits: dict[str, Any], frame: pl.DataFrame | Prepared | None) -> dict[str, Any]:
    """The IPTW parts with the rows frame the weighted curves read put back (`frame`: the
    IPTW model's Rows.frame, or the Prepared to build it from)."""
    parts = fits["iptw"].get("parts") if "error" not in fits["iptw"] else None
    if isinstance(frame, Prepared):
        frame = frame.rows("iptw").frame
    if parts is None or frame is None:
        return fits
    return {**fits, "iptw": {**fits["iptw"], "parts": replace(parts, rows=frame)}}


def _layout(rows: Rows) -> cox.Layout:
    if isinstance(rows.layout, Exception):
        # the one stored error, raised for every dataset: without its last traceback, which
        # would keep each earlier failed fit's frames (and their covariate copies) alive
        raise rows.layout.with_traceback(None)
    return rows.layout


def _adjusted_x(rows: Rows, cov: np.ndarray) -> np.ndarray:
    """[treated, covariates] as common.covariate_matrix builds it."""
    return np.hstack([rows.treated, cov[rows.patients]])


def _fixed(rows: Rows, cov: np.ndarray, names: tuple[str, ...]) -> Any:
    layout = _layout(rows)
    x = _adjusted_x(rows, cov)
    fit = cox.fit_layout(layout, x, names=("treated", *names))
    return cox_result(fit, catalogue.model("adjusted").description)


def _time_varying(rows: Rows, cov: np.ndarray, names: tuple[str, ...], key: str) -> Any:
    layout = _layout(rows)
    x = _adjusted_x(rows, cov)
    fit = cox.fit_layout(layout, x, names=("treated", *names))
    result = cox_result(fit, catalogue.model(key).description)
    return result | {"n": rows.n_patients, "n_rows": layout.n_rows}


def _piecewise(rows: Rows, cov: np.ndarray, names: tuple[str, ...]) -> Any:
    layout = _layout(rows)
    period = rows.period if rows.period is not None else np.zeros(layout.n_rows)
    # [treated before, treated after the cut, covariates] filled in place: no second
    # matrix of the split rows alive during the fit (19 M rows at ten million patients)
    x = np.empty((layout.n_rows, 2 + cov.shape[1]))
    x[:, 0] = rows.treated[:, 0] * (1 - period)
    x[:, 1] = rows.treated[:, 0] * period
    x[:, 2:] = cov[rows.patients]
    fit = cox.fit_layout(layout, x, names=("treated_0_1y", "treated_1_5y", *names))
    n = rows.n_patients
    return {
        "0-1y": {**cox_result(fit, "treated 0-1 year", "treated_0_1y"), "n": n},
        "1-5y": {**cox_result(fit, "treated 1-5 years", "treated_1_5y"), "n": n},
    }


def _iptw(rows: Rows, cov: np.ndarray, names: tuple[str, ...]) -> Any:
    x = cov[rows.patients]
    treated = rows.treated[:, 0].astype(bool)
    ps = fit_propensity(treated, x, list(names))
    fit = cox.fit_layout(
        _layout(rows), treated.astype(float)[:, None], weights=ps.weights, robust=True,
        names=("treated",),
    )  # fmt: skip
    label = catalogue.model("iptw").description
    # The rows frame is put back once, in the parent process (with_iptw_rows).
    return {"parts": IPTWParts(pl.DataFrame(), treated, ps, cox_result(fit, label))}


FITS: dict[str, Callable[[Rows, np.ndarray, tuple[str, ...]], Any]] = {
    "adjusted": _fixed,
    "time_varying_adjusted": lambda r, c, s: _time_varying(r, c, s, "time_varying"),
    "iptw": _iptw,
    "piecewise": _piecewise,
    "death_cause_specific": lambda r, c, s: _time_varying(r, c, s, "death_cause_specific"),
}
