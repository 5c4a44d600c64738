"""The pipeline: what each CLI command does, as library functions over paths and settings.

A run reads the registry and builds each study's cohort and time-to-event frames once
(build_analysis / build_analyses -> Analysis); the export (write_tte), the models (analyse)
and the report take that Analysis, in the CLI commands, the demo and the nightly refresh.
"""

from __future__ import annotations

import datetime as dt
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast

import duckdb
import polars as pl
from rich.console import Console

from registry.cohort import Cohort, RegistryFrames, build_cohort, read_registry
from registry.compute import Runner, SerialRunner, describe, open_runner
from registry.config import Scheduler, Settings
from registry.console import print_attrition, print_checks, print_ingest, print_primary
from registry.constants import DEMO_PATIENTS, DEMO_SEED
from registry.db import connect, fetch_row, load_sql, query, scalar
from registry.errors import RegistryError
from registry.export import write_analysis
from registry.ingest import IngestRun, discover, ingest_files
from registry.ingest.run import Reporter
from registry.migrate import apply_migrations
from registry.quality import check_names, run_checks
from registry.rekey import Rekeyed, read_raw_ids, record_key, rekey_registry
from registry.result_types import (
    BatchRow,
    CheckRow,
    IngestQuality,
    ProResults,
    QuarantineRow,
    Results,
)
from registry.study import DEFAULT_STUDY, Study, load_study
from registry.time_to_event import TimeToEvent, build_time_to_event


def open_registry(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open an existing, initialised registry or say how to create one."""
    if not path.exists():
        raise RegistryError(f"no registry at {path}; create it with: registry init --db {path}")
    con = connect(path, read_only=read_only)
    if not _is_initialised(con):
        con.close()
        raise RegistryError(
            f"{path} is not an initialised registry; run: registry init --db {path}"
        )
    return con


def _is_initialised(con: duckdb.DuckDBPyConnection) -> bool:
    sql = "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
    return bool(scalar(con, sql))


def init_registry(path: Path) -> list[str]:
    """Create or migrate the registry at `path`; return the migrations applied."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = connect(path)
    try:
        return apply_migrations(con)
    finally:
        con.close()


def ingest_into(
    settings: Settings, paths: list[Path], *, as_of: dt.date, reporter: Reporter | None = None
) -> IngestRun:
    """Ingest files or folders into the registry named by the settings; the reporter hears
    of each file as it commits."""
    con = open_registry(settings.db)
    try:
        apply_migrations(con)
        key = settings.pseudonym_key
        return ingest_files(con, discover(paths), as_of=as_of, pseudonym_key=key, reporter=reporter)
    finally:
        con.close()


def quarantined_rows(path: Path, *, batch: int | None, site: str | None = None) -> pl.DataFrame:
    """Quarantined rows of one batch, or of the latest batch of every file; with `site`, only
    rows of that site's patients. raw_row (JSON text) holds pseudonymised ids only."""
    con = open_registry(path, read_only=True)
    try:
        return query(con, "queries/ingest/quarantine_rows", batch=batch, site=site)
    finally:
        con.close()


def rekey_into(path: Path, *, old_key: str | None, new_key: str, id_files: list[Path]) -> Rekeyed:
    """Re-pseudonymise every stored id of the registry under new_key (see registry.rekey)."""
    raw_ids = read_raw_ids(id_files) if id_files else None
    con = open_registry(path)
    try:
        apply_migrations(con)
        return rekey_registry(con, old_key=old_key, new_key=new_key, raw_ids=raw_ids)
    finally:
        con.close()


def record_key_into(path: Path, *, key: str, id_files: list[Path]) -> int:
    """Record the key of a registry older than migration 0005 (see registry.rekey)."""
    raw_ids = read_raw_ids(id_files)
    con = open_registry(path)
    try:
        apply_migrations(con)
        return record_key(con, key=key, raw_ids=raw_ids)
    finally:
        con.close()


def check_registry(path: Path) -> pl.DataFrame:
    """Every cross-table violation in the registry."""
    con = open_registry(path, read_only=True)
    try:
        return run_checks(con)
    finally:
        con.close()


def synthesise(
    out_dir: Path,
    *,
    fmt: str = "csv",
    patients: int = DEMO_PATIENTS,
    seed: int = DEMO_SEED,
    treatment_hr: float = 1.0,
    scenario: str = "default",
    dirty: float = 0.0,
    missing: str = "none",
    missing_rate: float = 0.3,
) -> list[Path]:
    """Generate a synthetic cohort and write it in the import contract."""
    from registry.synth import generate_cohort, write_cohort
    from registry.synth.parts import PARTS_ABOVE, write_in_parts

    try:
        if patients > PARTS_ABOVE:  # one part of the cohort in memory at a time
            return write_in_parts(out_dir, patients=patients, seed=seed, fmt=fmt,
                                  treatment_hr=treatment_hr, scenario=scenario, dirty=dirty,
                                  missing=missing, missing_rate=missing_rate)  # fmt: skip
        cohort = generate_cohort(
            patients=patients,
            seed=seed,
            treatment_hr=treatment_hr,
            scenario=scenario,
            dirty=dirty,
            missing=missing,
            missing_rate=missing_rate,
        )
        return write_cohort(cohort, out_dir, fmt=fmt)
    except ValueError as exc:
        raise RegistryError(f"synth: {exc}") from None


@dataclass(frozen=True)
class Analysis:
    """One study's cohort and time-to-event frames and what its models read besides them,
    built once per run and passed to the export, the models and the report."""

    study: Study  # with the run's small-cell threshold (the stricter one) in force
    study_text: str  # the study file as read, for provenance
    cohort: Cohort
    tte: TimeToEvent
    pro: ProResults  # the PRO summaries, aggregated by DuckDB (summarise_in_db)
    baseline_scores: pl.DataFrame  # Table 1's baselines: patient (row index in cohort.patients),
    # baseline_vas, baseline_odi (sql/queries/analysis/pro_baseline.sql)
    snapshot: pl.DataFrame  # sql/queries/analysis/snapshot.sql
    quality: IngestQuality  # see data_quality
    assessments: pl.DataFrame  # sql/queries/analysis/assessments.sql: the target trial's scores
    # (no rows when the study's target trial is disabled; see target_trial_scores)


def read_study(study_path: Path | None, min_cell_count: int | None = None) -> tuple[Study, str]:
    """A study file, validated, with the stricter of its and the settings' threshold."""
    study_file = study_path or DEFAULT_STUDY
    study = load_study(study_file)
    if min_cell_count is not None:  # the stricter of the study file and the settings wins
        study = replace(study, min_cell_count=max(study.min_cell_count, min_cell_count))
    return study, study_file.read_text(encoding="utf-8")


def build_analyses(
    path: Path,
    study_paths: list[Path | None],
    *,
    min_cell_count: int | None = None,
    check_counts: pl.DataFrame | None = None,
) -> list[Analysis]:
    """Read the registry once and build each study's cohort, frames and model inputs
    (every study file is checked before the registry is read). `check_counts` (rule, rows,
    patients): the cross-table checks already counted on this snapshot (the refresh's checks
    step), so that the data-quality section does not run them again (a minute at ten million
    patients, with the registry's rows held)."""
    from registry.analysis.pro import summarise_in_db

    studies = [read_study(s, min_cell_count) for s in study_paths]
    con = open_registry(path, read_only=True)
    try:
        frames = read_registry(con)
        assessments = target_trial_scores(con, [study for study, _ in studies])
        snapshot = query(con, "queries/analysis/snapshot")
        counted = frames.after_death if check_counts is None else check_counts
        quality = data_quality(con, counted=counted)
        cohorts = [build_frames(frames, study) for study, _ in studies]
        del frames  # the registry's rows are let go before the PRO visits are picked
        built = []
        for (study, text), (cohort, tte) in zip(studies, cohorts, strict=True):
            # picked and aggregated in DuckDB: the picked visits never come into Python
            pro, baseline = summarise_in_db(con, cohort, study.min_cell_count)
            scores = assessments if study.target_trial.enabled else assessments.clear()
            built.append(
                Analysis(study, text, cohort, tte, pro, baseline, snapshot, quality, scores)
            )
    finally:
        con.close()
    return built


def target_trial_scores(con: duckdb.DuckDBPyConnection, studies: list[Study]) -> pl.DataFrame:
    """Every assessment, for the target trials' weights; no rows (same columns) when no study
    runs a target trial: they would be held through the models for nothing (~0.9 GiB per
    million patients)."""
    if any(study.target_trial.enabled for study in studies):
        return query(con, "queries/analysis/assessments")
    text = load_sql("queries/analysis/assessments")
    return con.sql(f"SELECT * FROM ({text}) AS scores LIMIT 0").pl()


def build_analysis(
    path: Path, study_path: Path | None, *, min_cell_count: int | None = None
) -> Analysis:
    """Cohort, time-to-event frames and model inputs of a registry for one study file."""
    return build_analyses(path, [study_path], min_cell_count=min_cell_count)[0]


def build_frames(frames: RegistryFrames, study: Study) -> tuple[Cohort, TimeToEvent]:
    """The cohort and its time-to-event frames, from what read_registry read."""
    cohort = build_cohort(frames, study)
    return cohort, build_time_to_event(cohort, frames.fractures, study)


def write_tte(analysis: Analysis, out_dir: Path, *, csv: bool = False) -> list[Path]:
    """Write an analysis's frames (Parquet, CSV with `csv`) and data dictionary to a folder."""
    return write_analysis(analysis.cohort, analysis.tte, out_dir, csv=csv)


def export_tte(path: Path, study_path: Path | None, out_dir: Path, *, csv: bool) -> list[Path]:
    """Write the analysis frames of a study to a folder (`registry tte`: reads only what the
    frames need, not the models' assessments and data-quality counts)."""
    study = load_study(study_path)
    con = open_registry(path, read_only=True)
    try:
        frames = read_registry(con)
    finally:
        con.close()
    cohort, tte = build_frames(frames, study)
    return write_analysis(cohort, tte, out_dir, csv=csv)


def replicate_runner(
    workers: int | None, scheduler: Scheduler | None, *, patients: int
) -> AbstractContextManager[Runner]:
    """The run's one Runner for the replicate work (imputation chains, pooled refits,
    bootstrap replicates), closed when the run ends: the Dask cluster when a scheduler is
    set, else local processes for a cohort large enough to gain, else this process."""
    address, source = (scheduler.address, scheduler.source) if scheduler else (None, "")
    return open_runner(workers=workers, scheduler=address, patients=patients, source=source)


def analyse(analysis: Analysis, *, as_of: dt.date, runner: Runner | None = None) -> Results:
    """Every model of the study on its frames: the results (small counts protected); the
    replicate work runs through `runner` (default: in this process)."""
    from registry.analysis.results import build_results, provenance

    study = analysis.study
    runner = runner or SerialRunner()
    prov = provenance(analysis.study_text, analysis.snapshot, as_of.isoformat())
    prov["compute"] = describe(runner)  # says where; the numbers do not depend on it
    return build_results(
        analysis.cohort,
        analysis.tte,
        study,
        pro=analysis.pro,
        baseline_scores=analysis.baseline_scores,
        data_quality=analysis.quality,
        prov=prov,
        assessments=analysis.assessments,
        runner=runner,
    )


def analyse_registry(
    path: Path,
    study_path: Path | None,
    out_dir: Path | None,
    *,
    as_of: dt.date,
    min_cell_count: int | None = None,
    workers: int | None = None,
    scheduler: Scheduler | None = None,
) -> Results:
    """Every model of the study on the registry; writes results.json into out_dir if given
    (the report writes it itself, beside index.html). `workers`/`scheduler`: where the
    replicate work runs (see replicate_runner)."""
    from registry.report.write import write_json

    analysis = build_analysis(path, study_path, min_cell_count=min_cell_count)
    patients = analysis.cohort.patients.height
    with replicate_runner(workers, scheduler, patients=patients) as runner:
        results = analyse(analysis, as_of=as_of, runner=runner)
    if out_dir is not None:
        write_json(results, out_dir / "results.json")
    return results


def report_registry(
    path: Path,
    study_path: Path | None,
    out_dir: Path,
    *,
    as_of: dt.date,
    built_at: dt.datetime,
    min_cell_count: int | None = None,
    workers: int | None = None,
    scheduler: Scheduler | None = None,
) -> Path:
    """Analyse the registry and write results.json and index.html into out_dir."""
    from registry.report.write import write_report

    results = analyse_registry(path, study_path, None, as_of=as_of, min_cell_count=min_cell_count,
                               workers=workers, scheduler=scheduler)  # fmt: skip
    return write_report(results, out_dir, built_at=built_at)


def data_quality(
    con: duckdb.DuckDBPyConnection, *, counted: pl.DataFrame | None = None
) -> IngestQuality:
    """Ingest batches, quarantined lines by rule and cross-table check counts (no rows).

    `counted` (rule, rows, patients) holds checks already run, e.g. the after-death
    checks that read_registry counts, so that no check runs twice.
    """
    known = {} if counted is None else {rule: (n, p) for rule, n, p in counted.iter_rows()}
    return {
        "batches": cast(list[BatchRow], query(con, "queries/report/ingest_batches").to_dicts()),
        "quarantine": cast(
            list[QuarantineRow], query(con, "queries/report/quarantine_by_rule").to_dicts()
        ),
        "checks": check_counts(con, known),
    }


def check_counts(
    con: duckdb.DuckDBPyConnection, known: dict[str, tuple[int, int]]
) -> list[CheckRow]:
    """Violations and patients of every check, by name (zeros included), counted in DuckDB:
    the offending rows themselves are not needed here."""
    rows: list[CheckRow] = []
    for name in check_names():
        sql = (
            "SELECT count(*), count(DISTINCT patient_id) "
            f"FROM ({load_sql(f'checks/{name}')}) AS found"
        )
        violations, patients = known[name] if name in known else fetch_row(con, sql) or (0, 0)
        rows.append({"check": name, "violations": int(violations), "patients": int(patients)})
    return rows


def run_demo(
    out_dir: Path,
    *,
    patients: int,
    seed: int,
    as_of: dt.date,
    console: Console,
    built_at: dt.datetime,
    settings: Settings | None = None,
    force: bool = False,
) -> None:
    """Synthesise, load a fresh registry, check, build the frames, analyse and report.

    Every setting is honoured (the pseudonym key for ingest, the small-cell threshold for the
    analysis and report) except the database, which is always out_dir/registry.duckdb. A
    folder holding anything a demo did not write is refused unless `force`."""
    from registry import demo_folder

    demo_folder.claim(out_dir, force=force)
    inbox, db = out_dir / "input", out_dir / "registry.duckdb"
    settings = replace(settings or Settings(), db=db)
    written = synthesise(inbox, fmt="csv", patients=patients, seed=seed)
    console.print(f"Synthesised {patients:,} patients into {inbox} ({len(written)} files).")
    init_registry(db)
    outcomes = ingest_into(settings, [inbox], as_of=as_of).outcomes
    for outcome in outcomes:
        print_ingest(console, console, outcome)
    print_checks(console, check_registry(db), details=False)
    analysis = build_analysis(db, None, min_cell_count=settings.min_cell_count)  # once
    write_tte(analysis, out_dir / "tte")
    print_attrition(console, analysis.cohort.attrition)
    patients = analysis.cohort.patients.height
    with replicate_runner(settings.workers, settings.dask_scheduler, patients=patients) as runner:
        results = analyse(analysis, as_of=as_of, runner=runner)
    del analysis  # the report needs the results only
    print_primary(console, results)
    from registry.report.write import write_report

    page = write_report(results, out_dir, built_at=built_at)
    console.print(f"Registry: {db}; analysis frames: {out_dir / 'tte'}")
    console.print(f"Report: {page} (results.json beside it)")
