"""The nightly refresh: ordered, timed, idempotent steps with a run log and atomic publish.

`run_refresh` holds the registry's refresh lock, migrates, ingests the inbox, checks, and
when the data or study changed (or with force) builds the time-to-event tables, models and
reports into a new build folder, then publishes it by switching `latest`. Every step is
recorded in `refresh_runs`; a failure records the step and message, leaves the current
report in place and raises RefreshFailed with a one-line reason.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from registry.config import Settings
from registry.db import limits, query
from registry.errors import RegistryError
from registry.pipeline import init_registry
from registry.refresh import attention, publish, runlog, steps
from registry.refresh.hooks import pause_point
from registry.refresh.lock import lock_path, refresh_lock
from registry.refresh.logs import StepProgress, refresh_logging
from registry.refresh.steps import Clock, Context, RefreshOptions, StepResult
from registry.refresh.wording import plural

__all__ = ["STEPS", "RefreshFailed", "RefreshOptions", "RefreshOutcome", "run_refresh"]
log = logging.getLogger("registry.refresh")
Step = Callable[[Context], StepResult]
BUILD_STEPS: tuple[tuple[str, Step], ...] = (
    ("tte", steps.tte),
    ("models", steps.models),
    ("reports", steps.reports),
    ("publish", steps.publish_build),
)
STEPS = ("migrate", "ingest", "checks", *(name for name, _ in BUILD_STEPS))


class RefreshFailed(RegistryError):
    """A step of the refresh failed; the published report was left as it was."""


@dataclass(frozen=True)
class RefreshOutcome:
    """How a refresh ended: 'published' or 'no work', with a one-line message and the files
    that need attention (refused, not recognised, entirely quarantined)."""

    run_id: int
    status: str
    message: str
    stamp: str | None = None
    warnings: tuple[attention.FileWarning, ...] = ()

    @property
    def exit_code(self) -> int:
        """0 when all went well, 2 when the run went on but something needs attention."""
        return 2 if self.warnings else 0


def check_inbox(inbox: Path) -> None:
    """A missing inbox is an error, never an empty night: the path is probably wrong."""
    if not inbox.is_dir():
        raise RegistryError(
            f"the inbox {inbox} does not exist; pass --inbox with the folder the exports "
            f"arrive in, or create it (mkdir -p {inbox}); nothing was run or published"
        )


def refresh_from_settings(
    settings: Settings,
    *,
    inbox: Path,
    publish_dir: Path,
    studies: tuple[Path, ...],
    force: bool,
    as_of: dt.date,
    clock: Clock,
    tty: bool,
) -> RefreshOutcome:
    """Run a refresh with logging to DIR/refresh.log and stderr (a progress bar on a TTY)."""
    opts = RefreshOptions(
        db=settings.db,
        inbox=inbox,
        publish=publish_dir,
        studies=studies,
        force=force,
        pseudonym_key=settings.pseudonym_key,
        min_cell_count=settings.min_cell_count,
        workers=settings.workers,
        scheduler=settings.dask_scheduler,
    )
    check_inbox(inbox)
    with (
        limits(settings.duckdb_limits()),
        refresh_logging(publish_dir, tty=tty, total=len(STEPS)) as progress,
    ):
        return run_refresh(opts, as_of=as_of, clock=clock, progress=progress)


def run_refresh(
    opts: RefreshOptions, *, as_of: dt.date, clock: Clock, progress: StepProgress | None = None
) -> RefreshOutcome:
    """Run every step of one refresh under the registry's lock."""
    check_inbox(opts.inbox)
    started = clock()
    with refresh_lock(lock_path(opts.db), started=started.isoformat(timespec="seconds")):
        pause_point("migrate")
        applied = init_registry(opts.db)
        run_id = runlog.begin_run(opts.db, started=started, as_of=as_of)
        runlog.start_step(opts.db, run_id, "migrate", at=started)
        runlog.end_step(opts.db, run_id, "migrate", at=clock(), status="ok", rows=len(applied),
                        message=f"{plural(len(applied), 'migration')} applied")  # fmt: skip
        ctx = Context(opts, run_id, runlog.build_stamp(started, run_id), as_of, clock)
        log.info("refresh run %d (build %s), as of %s", run_id, ctx.stamp, as_of)
        publish.sweep(opts.publish, published=runlog.published_stamps(opts.db))
        return _run_steps(ctx, progress or StepProgress())


def _run_steps(ctx: Context, progress: StepProgress) -> RefreshOutcome:
    progress.advance("migrate")
    _run_step(ctx, "ingest", steps.ingest, progress)
    _run_step(ctx, "checks", steps.checks, progress)
    ctx.fingerprint = steps.fingerprint(ctx)
    reason = _unchanged(ctx)
    if reason:
        return _no_work(ctx, reason)
    publish.work_dir(ctx.opts.publish, ctx.stamp).mkdir(parents=True)
    for name, step in BUILD_STEPS:
        _run_step(ctx, name, step, progress)
    message = _with_attention(f"published {publish.build_dir(ctx.opts.publish, ctx.stamp)}", ctx)
    log.info("%s; current report: %s", message, ctx.opts.publish / publish.LATEST / "index.html")
    return RefreshOutcome(ctx.run_id, "published", message, ctx.stamp, tuple(ctx.warnings))


def _with_attention(message: str, ctx: Context) -> str:
    """The run's message, with what needs attention appended (also logged, one per file)."""
    for line in attention.detail_lines(ctx.warnings, indent="", most=len(ctx.warnings)):
        log.warning("needs attention: %s", line)
    return f"{message}; {attention.headline(ctx.warnings)}" if ctx.warnings else message


def _run_step(ctx: Context, name: str, step: Step, progress: StepProgress) -> None:
    runlog.start_step(ctx.opts.db, ctx.run_id, name, at=ctx.clock())
    progress.begin(name)
    pause_point(name)
    try:
        rows, message = step(ctx)
    except Exception as exc:
        raise _fail(ctx, name, exc) from exc
    runlog.end_step(ctx.opts.db, ctx.run_id, name, at=ctx.clock(), status="ok", rows=rows,
                    message=message)  # fmt: skip
    log.info("%s: %s", name, message)
    progress.advance(name)


def _fail(ctx: Context, name: str, exc: Exception) -> RefreshFailed:
    """Record the failed step, drop the unfinished build, keep the current report."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    at = ctx.clock()
    runlog.end_step(ctx.opts.db, ctx.run_id, name, at=at, status="failed", message=message)
    runlog.end_build(ctx.opts.db, ctx.run_id, at=at, status="failed", failed_step=name,
                     message=message, fingerprint=ctx.fingerprint or None)  # fmt: skip
    shutil.rmtree(publish.work_dir(ctx.opts.publish, ctx.stamp), ignore_errors=True)
    _try_history(ctx)
    current = publish.current_stamp(ctx.opts.publish)
    kept = f"build {current} is still current" if current else "no build is published yet"
    log.error("step %s failed: %s", name, message)
    failed = RefreshFailed(f"refresh run {ctx.run_id} failed at step {name}: {message} ({kept})")
    failed.exit_code = exc.exit_code if isinstance(exc, RegistryError) else 1  # 2: refused
    return failed


def _try_history(ctx: Context) -> None:
    try:
        steps.write_history(ctx.opts)
    except Exception as exc:  # the history page must never hide the real failure
        log.warning("could not rewrite the history page: %s", exc)


def _unchanged(ctx: Context) -> str | None:
    """Why there is nothing to build (same fingerprint as the last published build), or None."""
    with runlog.registry(ctx.opts.db, read_only=True) as con:
        last = query(con, "queries/refresh/last_published").to_dicts()
    if ctx.opts.force or not last or last[0]["fingerprint"] != ctx.fingerprint:
        return None
    stamp = last[0]["stamp"]
    if publish.current_stamp(ctx.opts.publish) != stamp:  # a run killed before `latest` moved
        publish.point_latest(ctx.opts.publish, stamp)
    return f"no new data and no changed study since build {stamp}"


def _no_work(ctx: Context, reason: str) -> RefreshOutcome:
    for name, _ in BUILD_STEPS:
        runlog.skip_step(ctx.opts.db, ctx.run_id, name, at=ctx.clock(), message=reason)
    runlog.end_build(ctx.opts.db, ctx.run_id, at=ctx.clock(), status="skipped",
                     fingerprint=ctx.fingerprint, message=reason)  # fmt: skip
    _try_history(ctx)  # the page shows runs killed before this one and this run's warnings
    message = _with_attention(f"Nothing to do: {reason} (use --force to rebuild)", ctx) + "."
    log.info(message)
    return RefreshOutcome(ctx.run_id, "no work", message, None, tuple(ctx.warnings))
