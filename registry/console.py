"""Terminal output of the CLI: summaries and tables with rich (no logic of its own)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import polars as pl
from rich import box
from rich.console import Console
from rich.markup import escape as _escape
from rich.table import Table

from registry import catalogue
from registry.errors import IngestError
from registry.ingest import IngestResult, IngestRun, SkippedFile
from registry.ingest.run import entirely_quarantined
from registry.quality import summarise_checks
from registry.rekey import Rekeyed
from registry.report import format as fmt
from registry.result_types import HRFit, ModelError, Results, hr_fit


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
    if entirely_quarantined(outcome):
        out.print(
            f"  [bold red]every row of {escape(outcome.path.name)} was quarantined:[/] nothing "
            "of it reached the registry; check the export (columns shifted, another table?)"
        )
    if outcome.same_as_batch and not outcome.changed:
        out.print(f"  identical to batch {outcome.same_as_batch}: nothing changed")
    if outcome.repeats:
        out.print(f"  {outcome.repeats:,} exact repeated line(s) counted as unchanged")
    if any(outcome.ignored_columns):
        out.print(
            f"  [yellow]ignored unknown column(s):[/] {escape(', '.join(outcome.ignored_columns))}"
        )
    if outcome.quarantined:
        reasons = ", ".join(f"{escape(why)} ({n:,})" for why, n in outcome.top_reasons)
        counts = f"{outcome.quarantined:,} of {outcome.rows_read:,} rows"
        out.print(f"  [yellow]quarantined {counts}:[/] {reasons}")
        out.print(f"  See them with: registry quarantine --batch {outcome.batch_id}")


def print_skipped(out: Console, skipped: list[SkippedFile]) -> None:
    """Name every path given to ingest that is not ingested, with the reason."""
    for s in skipped:
        if s.ignored:
            out.print(f"[dim]{escape(s.path.name)}: {escape(s.reason)}[/]")
        else:
            out.print(f"[yellow]Not ingested:[/] {escape(str(s.path))}: {escape(s.reason)}")


def ingest_closing_line(run: IngestRun) -> str:
    """The last line of `registry ingest`: what was done and what needs attention."""
    done = f"{len(run.loaded)} file(s) committed"
    needs = [
        ("refused", [p.name for p in run.refused_paths]),
        ("not recognised", [s.path.name for s in run.unrecognised]),
        ("entirely quarantined", [r.path.name for r in run.all_quarantined]),
    ]
    parts = [f"{len(names)} {label} ({', '.join(names)})" for label, names in needs if names]
    if not parts:
        return f"[green]Done:[/] {done}."
    return f"[bold yellow]Needs attention:[/] {escape('; '.join(parts))}. {done}."


class IngestProgress:
    """Progress of `registry ingest` on stderr: a spinner on a terminal, log lines otherwise;
    each file's summary goes to `out` as soon as the file is committed."""

    def __init__(self, out: Console, err: Console) -> None:
        self.out, self.err = out, err
        self._status: Any = None

    def skipped(self, skipped: list[SkippedFile]) -> None:
        print_skipped(self.out, skipped)

    def start(self, path: Path, index: int, total: int) -> None:
        text = f"ingesting {path.name} ({index + 1} of {total})"
        if not self.err.is_terminal:
            self.err.print(f"ingest: {text}", markup=False)
        elif self._status is None:
            self._status = self.err.status(escape(text))
            self._status.start()
        else:
            self._status.update(escape(text))

    def done(self, outcome: IngestResult | IngestError) -> None:
        print_ingest(self.out, self.err, outcome)
        self.out.file.flush()

    def close(self) -> None:
        """Stop the spinner (also after an error or Ctrl-C)."""
        if self._status is not None:
            self._status.stop()
            self._status = None


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
    table = Table("check", "violations", "patients", box=box.SIMPLE_HEAD)
    table.columns[0].overflow = "fold"
    for r in summarise_checks(violations).iter_rows(named=True):
        style = "yellow" if r["violations"] else ""
        table.add_row(r["check"], f"{r['violations']:,}", f"{r['patients']:,}", style=style)
    out.print(table)
    if details:
        for r in violations.iter_rows(named=True):
            out.print(escape(f"{r['check']}: {r['table_name']} {r['patient_id']}: {r['detail']}"))


def print_attrition(out: Console, attrition: pl.DataFrame) -> None:
    """Print the attrition table of the cohort (fits 80 columns: the rule wraps, numbers do not)."""
    table = Table(box=box.SIMPLE_HEAD, title="Attrition", title_justify="left")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("rule", ratio=1, overflow="fold")
    for header in ("excluded", "left", "treated", "conserv."):
        table.add_column(header, justify="right", no_wrap=True)
    for r in attrition.iter_rows():
        step, rule, *counts, applies_to = r
        label = rule if applies_to in (None, "all") else f"{rule} ({applies_to} only)"
        cells = ("" if v is None else f"{v:,}" for v in counts)
        table.add_row(str(step), escape(str(label)), *cells)
    out.print(table)


def print_primary(out: Console, results: Results) -> None:
    """Print each outcome's hazard ratios, the primary (time-varying, adjusted) model first."""
    threshold = results["small_cell_threshold"]
    table = Table(box=box.SIMPLE_HEAD, title="Hazard ratios of treatment", title_justify="left")
    table.add_column("outcome / model", overflow="fold")
    table.add_column("HR (95% CI)", no_wrap=True)
    for header in ("p", "n", "events"):
        table.add_column(header, justify="right", no_wrap=True)
    reasons: list[str] = []
    for name, outcome in results["outcomes"].items():
        table.add_row(f"[bold]{escape(name)}[/]", "", "", "", "")
        for model in catalogue.terminal_models():  # the catalogue's order, primary first
            fit = hr_fit(outcome, model.key)
            table.add_row(*_model_row(model, fit, threshold))
            if "error" in fit:
                reasons.append(f"{name} / {model.key}: {escape(str(fit['error']))}")
    out.print(table)
    for reason in reasons:
        out.print(f"not estimable: {reason}")
    out.print(
        f"* primary analysis. '{fmt.WITHHELD}': a count below {threshold}, or one it could be "
        "worked back from (as in the report)."
    )


def _model_row(model: catalogue.Model, fit: HRFit | ModelError, threshold: int) -> list[str]:
    """A model's cells, written as the report writes them (registry/report/format.py)."""
    label = f"  {model.key}" + (" *" if model.primary else "")
    pooled = cast(dict[str, Any], fit).get("mi")  # over imputations (analysis/pooling.py)
    if pooled:
        label += f" (pooled, m={pooled['imputations']})"
    if "error" in fit:
        return [label, "not estimable", "", "", ""]
    n, events = (fmt.count(fit[k], threshold) for k in ("n", "events"))
    return [label, fmt.hr_text(fit), fmt.pvalue(fit["p"]), n, events]


def print_figures(out: Console, written: list[tuple[Path, str]], out_dir: Path) -> None:
    """The figure files written by `registry figures`, with their titles."""
    table = Table("file", "title", box=box.SIMPLE_HEAD)
    table.columns[1].overflow = "fold"
    for path, title in written[:-1]:
        table.add_row(escape(path.name), escape(title))
    out.print(table)
    out.print(f"Wrote {len(written) - 1} figures to {escape(str(out_dir))}; index: "
              f"{escape(str(written[-1][0]))}")  # fmt: skip
