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
from typing import Any

import jinja2
from plotly.offline import get_plotlyjs

from registry.figures.style import DRAW_SCRIPT
from registry.report_format import count, describe, fixed, pvalue
from registry.report_sections import sections
from registry.study import REPORTS_DIR

TEMPLATES = REPORTS_DIR / "templates"


def write_json(results: dict[str, Any], path: Path) -> Path:
    """Write results atomically (a half-written results.json is never seen)."""
    return write_atomically(path, results_json(results) + "\n")


def results_json(value: Any, depth: int = 0) -> str:
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
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=path.suffix)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; the report is meant to be shared
    os.replace(tmp, path)
    return path


def write_report(results: dict[str, Any], out_dir: Path, *, built_at: dt.datetime) -> Path:
    """Write results.json and index.html side by side; return the page's path."""
    write_json(results, out_dir / "results.json")
    return write_atomically(out_dir / "index.html", render_report(results, built_at=built_at))


@cache
def environment() -> jinja2.Environment:
    """The Jinja2 environment: autoescaping on, the report's number filters."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(fixed=fixed, pvalue=pvalue)
    return env


def render_report(results: dict[str, Any], *, built_at: dt.datetime) -> str:
    """The whole page as one self-contained HTML string (plotly.js embedded once)."""
    env = environment()
    threshold = int(results["small_cell_threshold"])
    env.filters.update(
        count=lambda v: count(v, threshold), describe=lambda d, b: describe(d, b, threshold)
    )
    context = sections(results, threshold)
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    return env.get_template("report.html.j2").render(
        **context,
        css=css,
        plotly_js=get_plotlyjs() + DRAW_SCRIPT,
        built_at=built_at.strftime("%Y-%m-%d %H:%M"),
    )
