"""The steps of a nightly refresh, each a function of the run's context -> (rows, message).

Order: migrate -> ingest -> checks -> tte -> models -> reports -> publish. Steps before
`tte` always run; the rest run only when the fingerprint (data snapshot, study files, package
version) differs from the last published build's, or with --force.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from registry import __version__
from registry.config import Scheduler
from registry.db import query
from registry.errors import ConfigError
from registry.pipeline import Analysis, analyse, build_analyses, replicate_runner, write_tte
from registry.quality import check_names, run_checks, summarise_checks
from registry.refresh import history, publish
from registry.refresh.attention import FileWarning
from registry.refresh.hooks import pause_point
from registry.refresh.inbox import ingest_inbox
from registry.refresh.lock import lock_is_held
from registry.refresh.runlog import end_build, record_warnings, registry
from registry.refresh.wording import plural
from registry.report.write import write_json, write_report
from registry.result_types import Results
from registry.study import DEFAULT_STUDY, load_study

Clock = Callable[[], dt.datetime]
StepResult = tuple[int | None, str]


@dataclass(frozen=True)
class RefreshOptions:
    """What to refresh: the registry, the inbox, the publish folder and the study files."""

    db: Path
    inbox: Path
    publish: Path
    studies: tuple[Path, ...] = ()
    force: bool = False
    pseudonym_key: str | None = None
    min_cell_count: int | None = None  # settings' threshold; the stricter of it and the study's
    workers: int | None = None  # local processes for the replicate work (None: every core)
    scheduler: Scheduler | None = None  # or a Dask cluster


@dataclass
class Context:
    """One run: its options, id, build stamp, date and what the steps produced."""

    opts: RefreshOptions
    run_id: int
    stamp: str
    as_of: dt.date
    clock: Clock
    analyses: list[Analysis] = field(default_factory=list)  # built by tte, used by models
    results: list[Results] = field(default_factory=list)
    fingerprint: str = ""
    check_counts: pl.DataFrame | None = None  # rule, violations, patients: the checks step's
    warnings: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, file, reason)

    def outputs(self) -> list[tuple[Path | None, Path]]:
        """(study file, output folder) pairs: the first study at the build's top level."""
        work = publish.work_dir(self.opts.publish, self.stamp)
        studies: list[Path | None] = list(self.opts.studies) or [None]
        return [(s, work if i == 0 or s is None else work / s.stem) for i, s in enumerate(studies)]


def ingest(ctx: Context) -> StepResult:
    """Ingest the new files of the inbox, moving each to processed/ or rejected/."""
    with registry(ctx.opts.db) as con:
        summary = ingest_inbox(
            con,
            ctx.opts.inbox,
            stamp=ctx.stamp,
            as_of=ctx.as_of,
            pseudonym_key=ctx.opts.pseudonym_key,
        )
    ctx.warnings = summary.warnings()
    record_warnings(ctx.opts.db, ctx.run_id, ctx.warnings)
    return summary.rows_read, summary.message


def checks(ctx: Context) -> StepResult:
    """Run the cross-table data-quality rules (violations are reported, not fatal)."""
    with registry(ctx.opts.db, read_only=True) as con:
        violations = run_checks(con)
    counts = summarise_checks(violations)  # every rule, zeros included: the tte step's counts
    ctx.check_counts = counts.select(pl.col("check").alias("rule"), "violations", "patients")
    broken = violations.get_column("rule").n_unique() if violations.height else 0
    return violations.height, (
        f"{plural(violations.height, 'violation')}; "
        f"{broken} of the {len(check_names())} rules broken"
    )


def _threshold(study: Path, settings: int | None) -> int | None:
    """The small-cell threshold in force: the stricter of the study's and the settings'
    (None for a study file that cannot be read: the models step then fails and says why)."""
    try:
        return max(load_study(study).min_cell_count, settings or 0)
    except ConfigError:
        return None


def fingerprint(ctx: Context) -> str:
    """Hash of the data snapshot, the study files and the package version."""
    with registry(ctx.opts.db, read_only=True) as con:
        snapshot = query(con, "queries/analysis/snapshot").rows()
    studies = [s or DEFAULT_STUDY for s, _ in ctx.outputs()]
    parts = {
        "snapshot": snapshot,
        "studies": [hashlib.sha256(s.read_bytes()).hexdigest() for s in studies],
        "version": __version__,
        "min_cell_count": [_threshold(s, ctx.opts.min_cell_count) for s in studies],
    }
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def tte(ctx: Context) -> StepResult:
    """Build each study's cohort and time-to-event frames (the registry read once) and write
    them into the build (tte/); the models step fits these same frames."""
    studies = [study for study, _ in ctx.outputs()]
    ctx.analyses = build_analyses(ctx.opts.db, studies, min_cell_count=ctx.opts.min_cell_count,
                                  check_counts=ctx.check_counts)  # fmt: skip
    written = sum(
        len(write_tte(analysis, out / "tte"))
        for analysis, (_, out) in zip(ctx.analyses, ctx.outputs(), strict=True)
    )
    return written, f"{plural(written, 'file')} for {plural(len(ctx.outputs()), 'study')}"


def models(ctx: Context) -> StepResult:
    """Fit every model of each study, on the frames the tte step built, into results.json."""
    ctx.results = []
    largest = max((a.cohort.patients.height for a in ctx.analyses), default=0)
    with replicate_runner(ctx.opts.workers, ctx.opts.scheduler, patients=largest) as runner:
        for _, out in ctx.outputs():
            analysis = ctx.analyses.pop(0)  # each study's frames are let go once it is fitted
            ctx.results.append(analyse(analysis, as_of=ctx.as_of, runner=runner))
            write_json(ctx.results[-1], out / "results.json")
            del analysis
    n = int(ctx.results[0]["cohort"]["n"] or 0)
    analysed = plural(len(ctx.results), "study")
    return n, f"{analysed} analysed; {plural(n, 'patient')} in the first cohort"


def reports(ctx: Context) -> StepResult:
    """Write each study's HTML report beside its results.json."""
    for results, (_, out) in zip(ctx.results, ctx.outputs(), strict=True):
        write_report(results, out, built_at=ctx.clock())
    return len(ctx.results), plural(len(ctx.results), "report")


def record_published(ctx: Context) -> None:
    """Store the build as published with its fingerprint and headline numbers."""
    with registry(ctx.opts.db, read_only=True) as con:
        facts = query(con, "queries/refresh/build_facts").to_dicts()[0]
    end_build(
        ctx.opts.db,
        ctx.run_id,
        at=ctx.clock(),
        status="published",
        fingerprint=ctx.fingerprint,
        **facts,
        **history.headline(ctx.results[0]),
    )


def write_history(opts: RefreshOptions) -> Path:
    """Rewrite DIR/index.html from the run log."""
    with registry(opts.db, read_only=True) as con:
        rows = query(con, "queries/refresh/history").to_dicts()
        noted = query(con, "queries/refresh/run_warnings", first_run=0).rows()
    threshold = load_study(opts.studies[0] if opts.studies else None).min_cell_count
    threshold = max(threshold, opts.min_cell_count or 0)
    warnings: dict[int, list[FileWarning]] = {}
    for run_id, kind, file, reason in noted:
        warnings.setdefault(run_id, []).append((kind, file, reason))
    held = lock_is_held(opts.db)
    return history.write_history_page(
        opts.publish, rows, threshold=threshold, warnings=warnings, lock_held=held
    )


def publish_build(ctx: Context) -> StepResult:
    """Finish the build folder, record it, switch `latest` to it and rewrite the history."""
    publish.finish_build(ctx.opts.publish, ctx.stamp)
    record_published(ctx)
    pause_point("publish:swap")
    publish.point_latest(ctx.opts.publish, ctx.stamp)
    write_history(ctx.opts)
    return 1, f"published {publish.BUILDS}/{ctx.stamp}"
