"""The Python API for notebooks: open a registry, load a study, take its frames (Polars or
pandas) and its typed results, without the CLI.

Thin wrappers over registry.pipeline (build_analysis, analyse): the frames are the ones
`registry tte` exports and the models fit, the results the ones results.json serialises.

    import registry
    reg = registry.open_registry("build/demo/registry.duckdb")
    data = reg.load_study()                  # the default study, or a study file's path
    data.counting                            # Polars; data.to_pandas("counting") for pandas
    results = data.analyse(as_of=datetime.date(2026, 1, 1))
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd
import polars as pl

from registry import pipeline
from registry.errors import RegistryError
from registry.export import analysis_frames
from registry.result_types import Results
from registry.study import Study

__all__ = ["Registry", "StudyData", "open_registry"]


@dataclass(frozen=True)
class Registry:
    """An initialised registry on disk, read-only from here; `min_cell_count` raises the
    small-cell threshold of every study loaded from it (the stricter one wins)."""

    path: Path
    min_cell_count: int | None = None

    def load_study(self, study: str | Path | None = None) -> StudyData:
        """A study's cohort, frames and model inputs (the default study when None)."""
        path = None if study is None else Path(study)
        analysis = pipeline.build_analysis(self.path, path, min_cell_count=self.min_cell_count)
        return StudyData(analysis)


def open_registry(path: str | Path, *, min_cell_count: int | None = None) -> Registry:
    """Check that `path` is an initialised registry and return a handle on it."""
    registry = Registry(Path(path), min_cell_count)
    pipeline.open_registry(registry.path, read_only=True).close()  # says how to create one
    return registry


@dataclass(frozen=True)
class StudyData:
    """One study on one registry: the cohort and time-to-event frames, and its analysis."""

    analysis: pipeline.Analysis

    @property
    def study(self) -> Study:
        """The study as loaded (covariates, outcomes, primary outcome, threshold in force)."""
        return self.analysis.study

    @property
    def cohort(self) -> pl.DataFrame:
        """Eligible patients, one row each (t0, covariates, has_covariates)."""
        return self.analysis.cohort.patients

    @property
    def attrition(self) -> pl.DataFrame:
        """The eligibility steps with the patients each excluded (counts not suppressed)."""
        return self.analysis.cohort.attrition

    @property
    def outcomes(self) -> pl.DataFrame:
        """One row per patient per outcome, ever treated from t0."""
        return self.analysis.tte.outcomes

    @property
    def counting(self) -> pl.DataFrame:
        """(start, stop] rows per patient and outcome, treatment time-varying."""
        return self.analysis.tte.counting

    @property
    def landmark(self) -> pl.DataFrame:
        """Patients event-free and under follow-up at the landmark, time from it."""
        return self.analysis.tte.landmark

    @cached_property
    def frames(self) -> dict[str, pl.DataFrame]:
        """Every frame by name: cohort and those `registry tte` writes."""
        return {"cohort": self.cohort, **analysis_frames(self.analysis.cohort, self.analysis.tte)}

    def to_pandas(self, name: str) -> pd.DataFrame:
        """A frame (see `frames`) as a pandas DataFrame, e.g. for lifelines."""
        if name not in self.frames:
            known = ", ".join(self.frames)
            raise RegistryError(f"no frame named {name!r}; the frames are: {known}")
        return self.frames[name].to_pandas()

    def analyse(self, *, as_of: dt.date | None = None) -> Results:
        """Every model of the study (small counts withheld), as results.json holds them;
        `as_of` (default today) is the data date recorded in the provenance."""
        return pipeline.analyse(self.analysis, as_of=as_of or dt.date.today())
