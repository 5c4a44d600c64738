"""The `registry` command: a thin shell over the library."""

from __future__ import annotations

import datetime as dt
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import duckdb
from rich.console import Console

from registry import console
from registry.config import load_settings
from registry.constants import DEMO_PATIENTS, DEMO_SEED
from registry.db import limits
from registry.errors import Interrupted, RegistryError

F = TypeVar("F", bound=Callable[..., Any])
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def funnel(command: F) -> F:
    """Turn RegistryError into a red 'Error:' line and its exit code (--debug: traceback);
    Ctrl-C into one 'Interrupted:' line and exit 130."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            # every DuckDB connection of the command spills within the settings' limits
            with limits(lambda: load_settings().duckdb_limits()):
                return command(*args, **kwargs)
        except (KeyboardInterrupt, duckdb.InterruptException):
            err.print("[bold red]Interrupted:[/] the command stopped (Ctrl-C) before it finished")
            sys.exit(130)
        except (RegistryError, duckdb.Error, OSError) as exc:
            if click.get_current_context().find_root().params.get("debug"):
                raise
            # a database or file-system failure (locked, not a registry, no space, no
            # permission) is one line too; --debug shows where it came from
            message = str(exc) if isinstance(exc, RegistryError) else f"{type(exc).__name__}: {exc}"
            label = "Interrupted" if isinstance(exc, Interrupted) else "Error"
            err.print(f"[bold red]{label}:[/] {console.escape(message)}")
            sys.exit(exc.exit_code if isinstance(exc, RegistryError) else 1)

    return wrapper  # type: ignore[return-value]


db_option = click.option(
    "--db",
    type=click.Path(path_type=Path),
    help="Registry file (default registry.duckdb, or REGISTRY_DB).",
)
as_of_option = click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Date treated as today for date rules (default: today).",
)


def as_of_date(value: dt.datetime | None) -> dt.date:
    """The CLI is the only place that reads today's date."""
    return value.date() if value else dt.date.today()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of short error messages.")
@click.version_option(package_name="vertebral-registry")
def main(debug: bool) -> None:
    """A longitudinal registry of vertebral compression fractures with survival analysis."""


@main.command()
@db_option
@funnel
def init(db: Path | None) -> None:
    """Create the registry database or bring its schema up to date."""
    from registry.pipeline import init_registry

    s = load_settings(db=db)
    applied = init_registry(s.db)
    out.print(console.init_message(s.db, applied))


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@db_option
@as_of_option
@funnel
def ingest(paths: tuple[Path, ...], db: Path | None, as_of: dt.datetime | None) -> None:
    """Load contract files (CSV, Parquet, or an Excel workbook with one sheet per table)
    or folders of them into the registry."""
    from registry.pipeline import ingest_into

    s = load_settings(db=db)
    progress = console.IngestProgress(out, err)
    try:
        run = ingest_into(s, list(paths), as_of=as_of_date(as_of), reporter=progress)
    finally:
        progress.close()
    out.print(console.ingest_closing_line(run))
    sys.exit(run.exit_code)


@main.group()
def convert() -> None:
    """Turn another system's export into a contract folder for `registry ingest`."""


@convert.command("redcap")
@click.option(
    "--records",
    type=click.Path(path_type=Path),
    required=True,
    help="REDCap records export (flat CSV, raw variable names as headers).",
)
@click.option(
    "--dictionary",
    type=click.Path(path_type=Path),
    help="REDCap data dictionary CSV (default: the shipped one).",
)
@click.option(
    "--mapping",
    type=click.Path(path_type=Path),
    help="Mapping TOML: contract table -> instrument and fields (default: shipped).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder for the contract CSVs.",
)
@click.option(
    "--values",
    type=click.Choice(["auto", "raw", "label"]),
    default="auto",
    show_default=True,
    help="Whether the export holds raw codes or labels.",
)
@funnel
def convert_redcap(records: Path, dictionary: Path | None, mapping: Path | None,
                   out_dir: Path, values: str) -> None:  # fmt: skip
    """Convert a REDCap records export into the six contract CSVs."""
    from registry.convert.redcap_files import conversion_lines
    from registry.convert.redcap_files import convert_redcap as run

    done = run(records, dictionary, mapping, out_dir, values=values)
    for line in conversion_lines(done):
        out.print(line, markup=False)


@main.command()
@db_option
@click.option("--batch", type=int, help="Only this ingest batch (default: each file's latest).")
@click.option("--limit", type=int, default=50, show_default=True, help="Rows to show.")
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the rows (with every field, ids pseudonymised) as CSV to send back to sites.",
)
@click.option("--site", help="Only rows of this site's patients (patients.site_id).")
@funnel
def quarantine(
    db: Path | None, batch: int | None, limit: int, csv_path: Path | None, site: str | None
) -> None:
    """Show quarantined rows with their file, line, column and rule, or write them as CSV."""
    from registry.pipeline import quarantined_rows
    from registry.quarantine import write_sendback

    s = load_settings(db=db)
    rows = quarantined_rows(s.db, batch=batch, site=site)
    if csv_path is None:
        console.print_quarantine(out, rows, limit=limit)
        return
    out.print(console.sendback_message(write_sendback(rows, csv_path), csv_path, site))


@main.command()
@db_option
@click.option(
    "--new-key-env",
    required=True,
    metavar="VAR",
    help="Name of the environment variable holding the new key (never the key itself).",
)
@click.option(
    "--old-key-env",
    metavar="VAR",
    help="Name of the environment variable holding the current key (keyed registries).",
)
@click.option(
    "--ids",
    "id_files",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="CSV/Parquet file with a patient_id column of raw ids (repeatable); keyed registries.",
)
@funnel
def rekey(
    db: Path | None, new_key_env: str, old_key_env: str | None, id_files: tuple[Path, ...]
) -> None:
    """Re-pseudonymise every stored patient id under a new key, in one transaction."""
    from registry.pipeline import rekey_into

    new_key = key_from_env(new_key_env)
    old_key = key_from_env(old_key_env) if old_key_env else None
    done = rekey_into(load_settings(db=db).db, old_key=old_key, new_key=new_key,
                      id_files=list(id_files))  # fmt: skip
    out.print(console.rekey_message(done, new_key_env))


@main.command("record-key")
@db_option
@click.option(
    "--key-env",
    required=True,
    metavar="VAR",
    help="Name of the environment variable holding the registry's key (never the key itself).",
)
@click.option(
    "--ids",
    "id_files",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="CSV/Parquet file with a patient_id column of raw ids (repeatable).",
)
@funnel
def record_key(db: Path | None, key_env: str, id_files: tuple[Path, ...]) -> None:
    """Record the key of a registry built before keys were checked, verified on raw ids."""
    from registry.pipeline import record_key_into

    checked = record_key_into(load_settings(db=db).db, key=key_from_env(key_env),
                              id_files=list(id_files))  # fmt: skip
    out.print(f"Recorded the key's check value; it turns the raw ids into all {checked:,} "
              "stored patients. Ingests with another key, or none, are now refused.")  # fmt: skip


def key_from_env(name: str) -> str:
    """A key from the environment variable `name` (keys never appear on the command line)."""
    value = os.environ.get(name, "")
    if not value:
        raise RegistryError(
            f"environment variable {name} is not set or empty; export the key in it "
            "(keys are read from the environment so that `ps` cannot show them)"
        )
    return value


@main.command()
@db_option
@click.option("--details", is_flag=True, help="List every violation, not only the counts.")
@funnel
def check(db: Path | None, details: bool) -> None:
    """Run the cross-table data-quality rules in sql/checks and list the violations."""
    from registry.pipeline import check_registry

    s = load_settings(db=db)
    violations = check_registry(s.db)
    console.print_checks(out, violations, details=details)


study_option = click.option(
    "--study",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Study specification (default reports/adjacent_refracture.toml).",
)


@main.command()
@db_option
@study_option
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder for the Parquet files and data_dictionary.csv.",
)
@click.option("--csv", is_flag=True, help="Also write CSV copies.")
@funnel
def tte(db: Path | None, study: Path | None, out_dir: Path, csv: bool) -> None:
    """Build the cohort and time-to-event frames and write them for R or Stata."""
    from registry.pipeline import export_tte

    written = export_tte(load_settings(db=db).db, study, out_dir, csv=csv)
    out.print(f"Wrote {len(written)} files to {out_dir} (see data_dictionary.csv).")


def runner_options(command: F) -> F:
    """--workers and --scheduler: where bootstrap replicates and imputations run."""
    workers = click.option("--workers", type=int, metavar="N",
                           help="Local processes for bootstrap replicates and imputations "
                           "(default: REGISTRY_WORKERS, else every core).")  # fmt: skip
    scheduler = click.option("--scheduler", metavar="ADDRESS",
                             help="Dask scheduler (tcp://host:8786) to run them on instead "
                             "(default: REGISTRY_DASK_SCHEDULER, else none).")  # fmt: skip
    return workers(scheduler(command))


def analysis_options(command: F) -> F:
    """--db, --study, --out and --as-of, shared by `analyze` and `report`."""
    out_option = click.option(
        "--out",
        "out_dir",
        type=click.Path(path_type=Path),
        required=True,
        help="Folder for results.json (and index.html with `report`).",
    )
    for option in (as_of_option, out_option, study_option, db_option):
        command = option(command)
    return command


@main.command()
@analysis_options
@runner_options
@funnel
def analyze(db: Path | None, study: Path | None, out_dir: Path, as_of: dt.datetime | None,
            workers: int | None, scheduler: str | None) -> None:  # fmt: skip
    """Fit every model of the study (KM, Cox, competing risks, IPTW, PROs) into results.json."""
    from registry.pipeline import analyse_registry

    s = load_settings(db=db, workers=workers, dask_scheduler=scheduler)
    results = analyse_registry(
        s.db, study, out_dir, as_of=as_of_date(as_of), min_cell_count=s.min_cell_count,
        workers=s.workers, scheduler=s.dask_scheduler,
    )  # fmt: skip
    console.print_primary(out, results)
    out.print(f"Wrote {out_dir / 'results.json'}")


@main.command()
@analysis_options
@runner_options
@funnel
def report(db: Path | None, study: Path | None, out_dir: Path, as_of: dt.datetime | None,
           workers: int | None, scheduler: str | None) -> None:  # fmt: skip
    """Run the analysis and write the HTML report (index.html) beside results.json."""
    from registry.pipeline import report_registry

    s = load_settings(db=db, workers=workers, dask_scheduler=scheduler)
    page = report_registry(s.db, study, out_dir, as_of=as_of_date(as_of),
                           built_at=dt.datetime.now(), min_cell_count=s.min_cell_count,
                           workers=s.workers, scheduler=s.dask_scheduler)  # fmt: skip
    out.print(f"Wrote {page} and {out_dir / 'results.json'}")


@main.command()
@db_option
@study_option
@click.option(
    "--results",
    "results_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Draw from this results.json (of `analyze` or `report`) instead of the registry.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder for the figure files and their index, figures.md.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["svg", "pdf", "png"]),
    default="svg",
    show_default=True,
    help="File format (PNG at 300 dpi).",
)
@as_of_option
@runner_options
@funnel
def figures(db: Path | None, study: Path | None, results_path: Path | None, out_dir: Path,
            fmt: str, as_of: dt.datetime | None, workers: int | None,
            scheduler: str | None) -> None:  # fmt: skip
    """Write every report figure as a static file for a manuscript (journal widths and
    fonts, numbers at risk under the curves), with an index figures.md.

    Draws from the registry (analysed as `registry report` does) or, with --results, from
    an existing results.json. Needs chromium (Debian's, or BROWSER_PATH); exit 1 without it.
    """
    from registry.pipeline import analyse_registry
    from registry.report.static import find_browser, load_results, write_figures

    if results_path is not None and (db is not None or study is not None):
        raise click.UsageError("--results draws from a results.json: leave out --db and --study")
    find_browser()  # no chromium: say so before minutes of analysis, not after
    if results_path is not None:
        results, source = load_results(results_path), str(results_path)
    else:
        s = load_settings(db=db, workers=workers, dask_scheduler=scheduler)
        results = analyse_registry(s.db, study, None, as_of=as_of_date(as_of),
                                   min_cell_count=s.min_cell_count, workers=s.workers,
                                   scheduler=s.dask_scheduler)  # fmt: skip
        source = str(s.db)
    console.print_figures(out, write_figures(results, out_dir, fmt, source=source), out_dir)


@main.command()
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Folder to write."
)
@click.option(
    "--patients", type=int, default=DEMO_PATIENTS, show_default=True, help="Number of patients."
)
@click.option("--seed", type=int, default=DEMO_SEED, show_default=True, help="Random seed.")
@click.option(
    "--treatment-hr",
    type=float,
    default=1.0,
    show_default=True,
    help="Hazard ratio of adjacent fracture from the day of treatment.",
)
@click.option(
    "--scenario",
    type=click.Choice(["default", "early-adjacent", "tv-confounding"]),
    default="default",
    show_default=True,
    help="Scenario: hazard shapes, or tv-confounding (early pain drives treatment and risk).",
)
@click.option(
    "--dirty",
    type=float,
    default=0.0,
    show_default=True,
    help="Fraction of rows per file broken on purpose, to exercise quarantine.",
)
@click.option(
    "--missing",
    type=click.Choice(["none", "mcar", "mar", "mnar"]),
    default="none",
    show_default=True,
    help="How BMD and glucocorticoids go missing: none (~2 % blanks), completely at random, "
    "at random given treatment and new fracture, or not at random (lower BMD, more missing).",
)
@click.option(
    "--missing-rate",
    type=click.FloatRange(0.0, 1.0),
    default=0.3,
    show_default=True,
    help="Target share of BMD missing (glucocorticoids: half of it); ignored with --missing none.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet"]),
    default="csv",
    show_default=True,
    help="File format.",
)
@funnel
def synth(
    out_dir: Path,
    patients: int,
    seed: int,
    treatment_hr: float,
    scenario: str,
    dirty: float,
    missing: str,
    missing_rate: float,
    fmt: str,
) -> None:
    """Write a synthetic cohort in the import contract, with truth.json."""
    from registry.pipeline import synthesise

    written = synthesise(
        out_dir,
        patients=patients,
        seed=seed,
        treatment_hr=treatment_hr,
        scenario=scenario,
        dirty=dirty,
        missing=missing,
        missing_rate=missing_rate,
        fmt=fmt,
    )
    out.print(f"Wrote {len(written)} files to {out_dir} ({patients:,} patients).")
    out.print(f"Next: registry ingest {out_dir}")


@main.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("build/demo"),
    show_default=True,
    help="Folder for the demo cohort, database and results.",
)
@click.option(
    "--patients", type=int, default=DEMO_PATIENTS, show_default=True, help="Number of patients."
)
@click.option("--seed", type=int, default=DEMO_SEED, show_default=True, help="Random seed.")
@as_of_option
@click.option("--force", is_flag=True, help="Write into a folder that holds other files too.")
@runner_options
@funnel
def demo(out_dir: Path, patients: int, seed: int, as_of: dt.datetime | None, force: bool,
         workers: int | None, scheduler: str | None) -> None:  # fmt: skip
    """Synthesise the default cohort, load it into a fresh registry and run every stage.

    The registry is always DIR/registry.duckdb (REGISTRY_DB and registry.toml's db are not
    used); every other setting is: REGISTRY_PSEUDONYM_KEY for ingest, REGISTRY_MIN_CELL_COUNT
    for the analysis and report, REGISTRY_WORKERS and REGISTRY_DASK_SCHEDULER (or --workers,
    --scheduler) for where its imputations and bootstrap replicates run. A folder that holds
    anything a previous demo did not write is refused (exit 2) unless --force; the demo's own
    folder is reused run after run.
    """
    from registry.pipeline import run_demo

    settings = load_settings(workers=workers, dask_scheduler=scheduler)
    run_demo(out_dir, patients=patients, seed=seed, as_of=as_of_date(as_of), console=out,
             built_at=dt.datetime.now(), settings=settings, force=force)  # fmt: skip


publish_option = click.option(
    "--publish",
    "publish_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("reports_out"),
    show_default=True,
    help="Folder of the builds, the `latest` link, the history page and refresh.log.",
)


@main.command()
@db_option
@click.option(
    "--inbox",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("inbox"),
    show_default=True,
    help="Folder the nightly exports arrive in (files, or one sub-folder per export).",
)
@publish_option
@click.option(
    "--study",
    "studies",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Study specification; repeat for several (default reports/adjacent_refracture.toml).",
)
@as_of_option
@click.option("--force", is_flag=True, help="Rebuild the reports even when nothing changed.")
@runner_options
@funnel
def refresh(db: Path | None, inbox: Path, publish_dir: Path, studies: tuple[Path, ...],
            as_of: dt.datetime | None, force: bool, workers: int | None,
            scheduler: str | None) -> None:  # fmt: skip
    """Nightly run: migrate, ingest the inbox, check, build, fit, report and publish atomically.

    Exit status: 0 done; 2 done, but files of the inbox need attention (refused, not
    recognised, or every row quarantined; they are listed, and in `registry status`);
    1 the run failed (the previous report stays current) or the inbox does not exist;
    130 interrupted.
    """
    from registry.refresh import refresh_from_settings
    from registry.refresh.attention import detail_lines

    clock = functools.partial(dt.datetime.now, dt.UTC)  # the CLI is the only clock reader
    settings = load_settings(db=db, workers=workers, dask_scheduler=scheduler)
    outcome = refresh_from_settings(settings, inbox=inbox, publish_dir=publish_dir,
                                    studies=studies, force=force, as_of=as_of_date(as_of),
                                    clock=clock, tty=err.is_terminal)  # fmt: skip
    out.print(outcome.message, markup=False)
    for line in detail_lines(outcome.warnings):
        err.print(line, markup=False)
    if outcome.exit_code:
        sys.exit(outcome.exit_code)


@main.command()
@db_option
@publish_option
@click.option("--limit", type=int, default=10, show_default=True, help="Number of runs to show.")
@funnel
def status(db: Path | None, publish_dir: Path, limit: int) -> None:
    """Show the last refresh runs (status, duration, failed step) and the current report."""
    from registry.refresh.status import status_lines

    for line in status_lines(load_settings(db=db).db, publish_dir, limit=limit):
        out.print(line, markup=False)


if __name__ == "__main__":  # pragma: no cover
    main()
