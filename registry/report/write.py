"""The report stage: results -> index.html (Jinja2 + Plotly) and results.json.

The only stage that writes result files. Every number on the page is read from the results
dict, whose small counts were suppressed before it got here.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from functools import cache
from pathlib import Path
from typing import BinaryIO

import jinja2
from plotly.offline import get_plotlyjs

from registry.errors import ReportWriteError
from registry.report.checklist import checklist_rows, to_markdown
from registry.report.figures.style import DRAW_SCRIPT
from registry.report.format import count, describe, fixed, pvalue
from registry.report.sections import sections
from registry.resources import TEMPLATES, template_env, template_text
from registry.result_types import Results


def write_json(results: Results, path: Path) -> Path:
    """Write results atomically (a half-written results.json is never seen)."""
    return write_atomically(path, results_json(results) + "\n")


def results_json(value: object, depth: int = 0) -> str:
    """JSON indented by one space per level like json.dumps(indent=1), except that a list
    of plain values (a curve's thousands of numbers) stays on one line: one number per
    line made a third of results.json whitespace."""
    if isinstance(value, dict) and value:
        items = [f"{json.dumps(str(k))}: {results_json(v, depth + 1)}" for k, v in value.items()]
    elif isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        items = [results_json(v, depth + 1) for v in value]
    else:
        return json.dumps(value, allow_nan=False, separators=(", ", ": "))
    pad = "\n" + " " * (depth + 1)
    inner = pad + ("," + pad).join(items) + "\n" + " " * depth
    return "{" + inner + "}" if isinstance(value, dict) else "[" + inner + "]"


def write_atomically(path: Path, text: str) -> Path:
    """Write a text file through a temporary file and a rename, readable by others."""
    write_together([(path, text)])
    return path


def write_report(results: Results, out_dir: Path, *, built_at: dt.datetime) -> Path:
    """Write results.json, index.html and checklist.md side by side, all or none; return the
    page."""
    page = render_report(results, built_at=built_at)  # everything rendered before any write
    body = results_json(results) + "\n"
    checklist = to_markdown(checklist_rows(results, results["small_cell_threshold"]))
    write_together([(out_dir / "results.json", body), (out_dir / "index.html", page),
                    (out_dir / "checklist.md", checklist)])  # fmt: skip
    return out_dir / "index.html"


def write_together(files: list[tuple[Path, str | bytes]]) -> None:
    """Publish every file or none: each is written to a temporary file first, then all are
    renamed into place; if a rename fails, the files renamed before it get their previous
    content back (or are removed if they are new). No temporary file is left behind, and
    the error names the file: 'could not write /x/index.html: No space left on device'."""
    temps: list[tuple[Path, Path]] = []
    try:
        for path, text in files:
            temps.append((_write_temp(path, text), path))
        _rename_all(temps)
    finally:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)


def _write_temp(path: Path, text: str | bytes) -> Path:
    """`text` in a temporary file beside `path` (mode 644: the report is meant to be shared)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.stem}-", suffix=path.suffix
        )
    except OSError as exc:
        raise _cannot_write(path, exc) from exc
    tmp = Path(name)
    try:
        with os.fdopen(handle, "wb") as out:
            _fill(out, text.encode("utf-8") if isinstance(text, str) else text)
        os.chmod(tmp, 0o644)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _cannot_write(path, exc) from exc
    return tmp


def _fill(out: BinaryIO, text: bytes) -> None:
    out.write(text)


def _rename_all(temps: list[tuple[Path, Path]]) -> None:
    """Rename each temporary file over its target; on failure roll back the ones done."""
    done: list[tuple[Path, Path | None]] = []  # (target, hard link to its previous content)
    try:
        for tmp, path in temps:
            old = _keep_previous(path)
            done.append((path, old))
            try:
                os.replace(tmp, path)
            except OSError as exc:
                done.pop()
                if old is not None:
                    old.unlink(missing_ok=True)  # the file still has its previous content
                raise _cannot_write(path, exc) from exc
        done_ok, done = done, []
        for _, old in done_ok:
            if old is not None:
                old.unlink(missing_ok=True)
    finally:
        _roll_back(done)


def _keep_previous(path: Path) -> Path | None:
    """A hard link to the file's current content, to restore it on a rollback (None if the
    file is new or the file system has no hard links)."""
    if not path.exists():
        return None
    backup = path.with_name(f".{path.stem}-previous{path.suffix}")
    try:
        backup.unlink(missing_ok=True)
        os.link(path, backup)
    except OSError:
        return None
    return backup


def _roll_back(done: list[tuple[Path, Path | None]]) -> None:
    for path, old in reversed(done):
        if old is None:
            path.unlink(missing_ok=True)
        else:
            os.replace(old, path)


def _cannot_write(path: Path, exc: OSError) -> ReportWriteError:
    return ReportWriteError(f"could not write {path}: {exc.strerror or exc}")


@cache
def environment() -> jinja2.Environment:
    """The Jinja2 environment: autoescaping on, the report's number filters."""
    env = template_env(TEMPLATES, "templates")
    env.filters.update(fixed=fixed, pvalue=pvalue)
    return env


def render_report(results: Results, *, built_at: dt.datetime) -> str:
    """The whole page as one self-contained HTML string (plotly.js embedded once)."""
    env = environment()
    threshold = results["small_cell_threshold"]
    env.filters.update(
        count=lambda v: count(v, threshold), describe=lambda d, b: describe(d, b, threshold)
    )
    context = sections(results, threshold)
    context["checklist"] = checklist_rows(results, threshold)
    css = template_text("report.css")
    return env.get_template("report.html.j2").render(
        **context,
        css=css,
        plotly_js=get_plotlyjs() + DRAW_SCRIPT,
        built_at=built_at.strftime("%Y-%m-%d %H:%M"),
    )
