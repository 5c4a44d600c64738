"""Terminal output of the CLI: summaries and tables with rich (no logic of its own)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.markup import escape as _escape
from rich.table import Table

from registry.checks import summarise_checks
from registry.errors import IngestError
from registry.ingest import IngestResult
from registry.rekey import Rekeyed


def escape(text: str) -> str:
    """Escape rich markup in text that came from data or files."""
    return _escape(text)


def init_message(db: Path, applied: list[str]) -> str:
    """What `registry init` did."""
    if not applied:
        return f"{db} is up to date; nothing to apply."
    return (
        f"Initialised {db}: applied {', '.join(applied)}.\nNext: registry ingest FOLDER --db {db}"
    )


def ingest_line(r: IngestResult) -> str:
    """One line of counts for an ingested file."""
    return (
        f"{escape(r.path.name)} -> {r.table} (batch {r.batch_id}): read {r.rows_read:,} · "
        f"inserted {r.inserted:,} · updated {r.updated:,} · unchanged {r.unchanged:,} · "
        f"quarantined {r.quarantined:,}"
    )


def print_ingest(out: Console, err: Console, outcome: IngestResult | IngestError) -> None:
    """Print the summary of one file, or its refusal."""
    if isinstance(outcome, IngestError):
        err.print(f"[bold red]Error:[/] {escape(str(outcome))}")
        return
    out.print(ingest_line(outcome))
    if outcome.same_as_batch and not outcome.changed:
        out.print(f"  identical to batch {outcome.same_as_batch}: nothing changed")
    if outcome.repeats:
        out.print(f"  {outcome.repeats:,} exact repeated line(s) counted as unchanged")
    if outcome.ignored_columns:
        out.print(
            f"  [yellow]ignored unknown column(s):[/] {escape(', '.join(outcome.ignored_columns))}"
        )
    if outcome.quarantined:
        reasons = ", ".join(f"{escape(why)} ({n:,})" for why, n in outcome.top_reasons)
        counts = f"{outcome.quarantined:,} of {outcome.rows_read:,} rows"
        out.print(f"  [yellow]quarantined {counts}:[/] {reasons}")
        out.print(f"  See them with: registry quarantine --batch {outcome.batch_id}")


def print_quarantine(out: Console, rows: pl.DataFrame, *, limit: int) -> None:
    """Print quarantined rows as a table that folds to fit 80 columns."""
    if rows.is_empty():
        out.print("No quarantined rows.")
        return
    table = Table(show_lines=True)
    table.add_column("batch", justify="right", no_wrap=True)
    table.add_column("file / line", overflow="fold", max_width=18)
    table.add_column("rule / column", overflow="fold", min_width=15, max_width=22)
    table.add_column("value / why", overflow="fold", ratio=1)
    for r in rows.head(limit).iter_rows(named=True):
        rule = r["rule"] if r["column_name"] is None else f"{r['rule']}\n{r['column_name']}"
        value = "" if r["value"] is None else f"{r['value']}\n"
        table.add_row(
            escape(str(r["batch_id"])),
            escape(f"{r['file_name']}\nline {r['line']}"),
            escape(rule),
            escape(f"{value}{r['detail']}"),
        )
    out.print(table)
    if rows.height > limit:
        out.print(f"... {rows.height - limit:,} more; use --limit to see them.")


def sendback_message(written: int, path: Path, site: str | None) -> str:
    """What `registry quarantine --csv` wrote."""
    whose = f" of site {escape(site)}" if site else ""
    return f"Wrote {written:,} quarantined rows{whose} to {escape(str(path))} (ids pseudonymised)."


def rekey_message(done: Rekeyed, new_key_env: str) -> str:
    """What `registry rekey` changed and what to do next."""
    lost = done.blanked
    blanked = f"; {lost:,} quarantined rows of unknown patients lost their id" if lost else ""
    return (
        f"Re-keyed {done.patients:,} patients: {done.rows:,} rows of the six tables, "
        f"{done.quarantined:,} quarantined rows, {done.audit:,} audit rows{blanked}.\n"
        f"Next: set REGISTRY_PSEUDONYM_KEY to the key in {escape(new_key_env)} wherever ingest "
        "or refresh runs, then destroy the old key."
    )


def print_checks(out: Console, violations: pl.DataFrame, *, details: bool) -> None:
    """Print violation counts per check (and each violation with --details)."""
    table = Table("check", "violations", "patients")
    for r in summarise_checks(violations).iter_rows(named=True):
        style = "yellow" if r["violations"] else ""
        table.add_row(r["check"], f"{r['violations']:,}", f"{r['patients']:,}", style=style)
    out.print(table)
    if details:
        for r in violations.iter_rows(named=True):
            out.print(escape(f"{r['check']}: {r['table_name']} {r['patient_id']}: {r['detail']}"))


def print_attrition(out: Console, attrition: pl.DataFrame) -> None:
    """Print the attrition table of the cohort."""
    table = Table("step", "rule", "excluded", "remaining", "treated", "conservative", "applies to")
    for r in attrition.iter_rows():
        table.add_row(*("" if v is None else f"{v:,}" if isinstance(v, int) else str(v) for v in r))
    out.print(table)


def print_primary(out: Console, results: dict[str, Any]) -> None:
    """Print each outcome's hazard ratios, the primary (time-varying) model first."""
    table = Table("outcome", "model", "HR", "95% CI", "p", "n", "events")
    for name, outcome in results["outcomes"].items():
        for model in ("time_varying_adjusted", "time_varying", "iptw", "landmark", "unadjusted"):
            fit = outcome["cox"][model]
            if "error" in fit:
                table.add_row(name, model, "-", escape(fit["error"]), "", "", "")
                continue
            ci = f"{_num(fit['ci_lower'], '.2f')}-{_num(fit['ci_upper'], '.2f')}"
            hr, p = _num(fit["hr"], ".2f"), _num(fit["p"], ".3g")
            table.add_row(name, model, hr, ci, p, _count(fit["n"]), _count(fit["events"]))
    out.print(table)


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _count(value: int | None) -> str:
    return "<min" if value is None else f"{value:,}"
