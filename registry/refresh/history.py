"""The history page DIR/index.html: every build, its headline numbers and what changed.

Rows come from sql/queries/refresh/history.sql; the page is a Jinja2 template beside this
module with two Plotly figures (the primary hazard ratio over builds, and the cumulative
incidence of the primary outcome at 1 and 5 years per arm), plotly.js embedded once.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from registry import catalogue
from registry.refresh.attention import KINDS, FileWarning
from registry.report.figures.style import ARM_COLOURS, base_layout, to_div
from registry.report.format import WITHHELD
from registry.report.write import write_atomically
from registry.resources import TEMPLATES, template_env
from registry.result_types import Arm, Results, hr_fit

Row = dict[str, Any]  # a row of the history table (a build's facts), not a result
ARMS: tuple[Arm, Arm] = ("treated", "untreated")
COUNTS = (("n_patients", "prev_patients"), ("n_cohort", None), ("events", "prev_events"))
TEMPLATE = "history.html.j2"
CIF_LINES = (("1y", "solid"), ("5y", "dot"))


def headline(results: Results) -> Row:
    """The numbers a build contributes to the history (primary outcome, primary model); None
    where the study leaves the primary outcome out or the model could not be fitted."""
    outcome = results["outcomes"].get(results["study"]["primary_outcome"])
    fit = hr_fit(outcome, catalogue.PRIMARY_MODEL) if outcome else None
    hr = None if fit is None or "error" in fit else fit
    facts: Row = {
        "n_cohort": results["cohort"]["n"],
        "events": outcome["events"] if outcome else None,
        "hr": hr and hr["hr"],
        "ci_lower": hr and hr["ci_lower"],
        "ci_upper": hr and hr["ci_upper"],
    }
    for arm in ARMS:
        cif = outcome["cif"][arm] if outcome else None
        years = None if cif is None or "error" in cif else cif["at_years"]
        facts[f"cif_1y_{arm}"] = years and years["1"]
        facts[f"cif_5y_{arm}"] = years and years["5"]
    return facts


def protect_counts(rows: list[Row], threshold: int) -> list[Row]:
    """Rows (oldest first) with the patients, cohort and events of a published build
    withheld where the count is small or lies 1..threshold-1 from one shown before (the
    difference would be a small count of new patients or events), and prev_* set to the
    last value shown, so that no difference on the page is a small count."""
    shown: dict[str, list[Any]] = {column: [] for column, _ in COUNTS}
    out = []
    for row in rows:
        if row["status"] != "published":
            out.append(row)
            continue
        new = dict(row)
        for column, previous in COUNTS:
            value, seen = row[column], shown[column]
            # against every value shown, not only the last: counts can also go down
            near = value is not None and any(0 < abs(value - v) < threshold for v in seen)
            hide = near or (value is not None and 0 < value < threshold)
            new[column] = WITHHELD if hide else value
            if previous:
                new[previous] = seen[-1] if seen else None
            if not hide and value is not None:
                seen.append(value)
        out.append(new)
    return out


def changes(row: Row, threshold: int) -> Row:
    """What changed since the previous published build shown, for one history row (after
    protect_counts); a withheld count or a small change is shown as withheld."""
    if row["status"] != "published":
        return {}
    first = not row["has_previous"]
    return {
        "new_patients": _change(row["n_patients"], 0 if first else row["prev_patients"], threshold),
        "new_events": _change(row["events"], 0 if first else row["prev_events"], threshold),
        "corrected_rows": row["corrected_rows"],
        "quarantined_rows": row["quarantined_rows"],
        "hr_moved": None if first else _delta(row["hr"], row["prev_hr"]),
        "first": first,
    }


def _change(now: Any, before: Any, threshold: int) -> float | str | None:
    """A count change, or withheld when either count is withheld or the change is small."""
    if isinstance(now, str) or isinstance(before, str):
        return WITHHELD
    return _small(_delta(now, before), threshold)


def _small(value: float | None, threshold: int) -> float | str | None:
    """A count change, or withheld when it is a small cell."""
    return WITHHELD if value is not None and 0 < abs(value) < threshold else value


def _delta(now: float | None, before: float | None) -> float | None:
    return None if now is None or before is None else now - before


def trend_figure(rows: list[Row]) -> go.Figure:
    """The primary hazard ratio with its 95 % CI over the published builds."""
    built = [r for r in rows if r["status"] == "published"]
    x = [r["stamp"] for r in built]
    hr = [r["hr"] for r in built]
    upper = [_delta(r["ci_upper"], r["hr"]) for r in built]
    lower = [_delta(r["hr"], r["ci_lower"]) for r in built]
    fig = go.Figure(
        go.Scatter(
            x=x,
            y=hr,
            mode="lines+markers",
            name="HR (time-varying, adjusted)",
            error_y={"type": "data", "symmetric": False, "array": upper, "arrayminus": lower},
        )
    )
    fig.add_hline(y=1.0, line_dash="dash", line_color="#888888")
    ticks = [0.125, 0.25, 0.5, 1, 2, 4, 8]  # plain labels: the default log axis writes 0.5 as "5"
    fig.update_layout(
        xaxis={"type": "category", "title": "Build"},
        yaxis={"type": "log", "tickvals": ticks, "ticktext": [f"{t:g}" for t in ticks],
               "title": "Hazard ratio"},
    )  # fmt: skip
    return base_layout(fig, title="Primary hazard ratio over builds (95 % CI)", height=380)


def incidence_figure(rows: list[Row]) -> go.Figure:
    """Cumulative incidence of the primary outcome at 1 and 5 years per arm over builds."""
    built = [r for r in rows if r["status"] == "published"]
    fig = go.Figure()
    for arm in ("treated", "untreated"):
        for year, dash in CIF_LINES:
            fig.add_trace(
                go.Scatter(
                    x=[r["stamp"] for r in built],
                    y=[r[f"cif_{year}_{arm}"] for r in built],
                    mode="lines+markers",
                    name=f"{arm}, {year[0]} year{'s' if year != '1y' else ''}",
                    line={"color": ARM_COLOURS[arm], "dash": dash},
                )
            )
    fig.update_layout(
        xaxis={"type": "category", "title": "Build"},
        yaxis={"tickformat": ".0%", "title": "Cumulative incidence"},
    )
    return base_layout(fig, title="Cumulative incidence over builds", height=380)


@cache
def environment() -> jinja2.Environment:
    """The history page's Jinja2 environment (autoescaping on)."""
    return template_env(TEMPLATES, "templates")


def render_history(
    rows: list[Row],
    *,
    current: str | None,
    threshold: int = 5,
    warnings: dict[int, list[FileWarning]] | None = None,
    lock_held: bool = True,
) -> str:
    """The whole history page as one self-contained HTML string, newest build first; counts
    are protected (small ones and those within the threshold of another shown value are
    withheld), each run lists the files that needed attention, and a 'running' run whose
    process is gone (nobody holds the lock) shows as 'interrupted'."""
    shown = [
        _attended(row, (warnings or {}).get(row["run_id"], []), lock_held)
        | {"changes": changes(row, threshold)}
        for row in protect_counts(rows, threshold)
    ]
    return (
        environment()
        .get_template(TEMPLATE)
        .render(
            rows=list(reversed(shown)),
            n_published=sum(r["status"] == "published" for r in rows),
            current=current,
            trend=to_div(trend_figure(rows), "history-hr"),
            incidence=to_div(incidence_figure(rows), "history-cif"),
            plotly_js=get_plotlyjs(),
            fmt=_fmt,
            signed=_signed,
        )
    )


def _attended(row: Row, warnings: list[FileWarning], lock_held: bool) -> Row:
    """The row with its warnings (parenthesised detail, which may quote a file's content,
    left to `registry status`) and 'interrupted' for a run whose process is gone."""
    status = "interrupted" if row["status"] == "running" and not lock_held else row["status"]
    listed = [
        (KINDS.get(k, k), f, re.sub(r"\((?![\d,]+\))[^()]*\)", "(…)", r)) for k, f, r in warnings
    ]
    return row | {"status": status, "warnings": listed}


def write_history_page(
    publish: Path,
    rows: list[Row],
    *,
    threshold: int = 5,
    warnings: dict[int, list[FileWarning]] | None = None,
    lock_held: bool = True,
) -> Path:
    """Write DIR/index.html atomically."""
    from registry.refresh.publish import current_stamp

    page = render_history(rows, current=current_stamp(publish), threshold=threshold,
                          warnings=warnings, lock_held=lock_held)  # fmt: skip
    return write_atomically(publish / "index.html", page)


def _fmt(value: Any, spec: str = ".2f") -> str:
    if value is None:
        return "–"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return format(value, spec) if isinstance(value, float) else str(value)


def _signed(value: float | int | str | None, spec: str = "+d") -> str:
    if isinstance(value, str):  # a suppressed small count
        return value
    return "–" if value is None else format(value, spec)
