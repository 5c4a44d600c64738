"""The look shared by every report figure: template, arm colours, number formats, div ids."""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from registry import catalogue
from registry.constants import DAYS_PER_YEAR

# A part of results.json as the figure helpers read it; the public figure functions take
# the result types (registry/result_types.py).
Section = Mapping[str, Any]
ByArm = Mapping[Any, Section]  # curves or fits by arm (keys: Arm)

DEFAULT_THRESHOLD = 5
WIDTH = 860
FONT = "Helvetica Neue, Helvetica, Arial, sans-serif"
ARMS = ("treated", "untreated")
ARM_COLOURS = {"treated": "#1f77b4", "untreated": "#e07b22"}
ARM_LABELS = {"treated": "Treated", "untreated": "Untreated"}
OTHER_COLOUR = "#7f7f7f"
# Readable names of model covariates and terms; others are shown with spaces for underscores.
VARIABLE_LABELS = {
    "age": "Age",
    "male": "Male sex",
    "sex": "Sex",
    "bmd_t_score": "BMD T-score",
    "n_index_levels": "Index levels",
    "glucocorticoids": "Glucocorticoids",
    "prior_vertebral_fractures": "Prior vertebral fractures",
    "treated": "Treated",
    # the target trial's treatment-initiation model (registry/analysis/target_trial/weights.py)
    "vas": "Latest pain (VAS)",
    "vas_missing": "Pain (VAS) not recorded",
    "odi": "Latest disability (ODI)",
    "odi_missing": "Disability (ODI) not recorded",
}
# Confidence bands: light fills; one arm's band also gets dotted edges so overlaps stay readable.
BAND_ALPHA = 0.1
DOTTED_BAND_ARMS = ("untreated",)
_AXIS = {
    "showgrid": True,
    "gridcolor": "#e6e6e6",
    "showline": True,
    "linecolor": "#444444",
    "ticks": "outside",
    "zeroline": False,
    "automargin": True,
}
# A small template of our own: plotly_white would embed ~7 kB of unused trace defaults per div.
TEMPLATE = go.layout.Template(
    layout={
        "font": {"family": FONT, "size": 13, "color": "#222222"},
        "title": {"x": 0.01, "xanchor": "left", "font": {"size": 16}},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "colorway": [ARM_COLOURS["treated"], ARM_COLOURS["untreated"], OTHER_COLOUR],
        "xaxis": _AXIS,
        "yaxis": _AXIS,
        "hoverlabel": {"font": {"family": FONT, "size": 12}, "align": "left"},
        "legend": {
            "orientation": "h",
            "x": 0,
            "y": 1.02,
            "yanchor": "bottom",
            "traceorder": "normal",
        },
        "margin": {"l": 70, "r": 30, "t": 80, "b": 50},
    }
)
_DIV_ID = re.compile(r"^[a-z][a-z0-9_-]*$")


def scatter(**props: Any) -> dict[str, Any]:
    """A scatter trace as a dict for fig.add_trace: validated once as it is added, where a
    go.Scatter is validated and then copied again (twice the time for curves of 1,800 points)."""
    return {"type": "scatter", **props}


def esc(text: object) -> str:
    """HTML-escape a label from the data (plotly renders a subset of HTML in text)."""
    return html.escape(str(text), quote=False)


def arm_colour(arm: str) -> str:
    """The colour of an arm, the same in every figure."""
    return ARM_COLOURS.get(arm, OTHER_COLOUR)


def arm_label(arm: str) -> str:
    """The display name of an arm."""
    return ARM_LABELS.get(arm, esc(arm))


def outcome_label(outcome: str) -> str:
    """The display name of an outcome."""
    return esc(catalogue.outcome_label(outcome))


def variable_label(name: object) -> str:
    """The readable name of a covariate or model term (not escaped: escape where it is shown)."""
    text = str(name)
    return VARIABLE_LABELS.get(text, text.replace("_", " "))


def band_colour(arm: str, alpha: float = BAND_ALPHA) -> str:
    """The arm colour as a translucent rgba() for confidence bands."""
    hexa = arm_colour(arm).lstrip("#")
    red, green, blue = (int(hexa[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({red},{green},{blue},{alpha})"


def years(days: Sequence[float | None]) -> list[float | None]:
    """Days to years, rounded to keep the embedded JSON short."""
    return [None if d is None else round(d / DAYS_PER_YEAR, 4) for d in days]


def rounded(values: Sequence[float | None], digits: int = 4) -> list[float | None]:
    """Round values for embedding (plot precision, not analysis precision)."""
    return [None if v is None else round(v, digits) for v in values]


def year_ticks(last_day: float) -> list[int]:
    """Whole years from 0 to the end of follow-up, at least 0..5."""
    return list(range(max(5, math.ceil(last_day / DAYS_PER_YEAR - 0.01)) + 1))


def year_axis(ticks: list[int]) -> dict[str, Any]:
    """An x axis in years with a tick per whole year, its title just under the tick labels."""
    title = {"text": "Years", "standoff": 4}
    return {"tickvals": ticks, "range": [-0.2, ticks[-1] + 0.2], "title": title}


def base_layout(fig: go.Figure, *, title: str, height: int) -> go.Figure:
    """Apply the template, title and size shared by every figure."""
    fig.update_layout(
        template=TEMPLATE,
        title={"text": esc(title)},
        width=WIDTH,
        height=height,
    )
    return fig


def note(fig: go.Figure, lines: Sequence[str], *, below: int = 75) -> go.Figure:
    """Small grey lines `below` px under the plot, right-aligned (skipped models, empty input)."""
    shown = [line if len(line) <= 110 else line[:109] + "…" for line in lines[:8]]
    if len(lines) > len(shown):
        shown.append(f"… and {len(lines) - len(shown)} more")
    fig.add_annotation(
        text="<br>".join(shown),
        xref="paper",
        yref="paper",
        x=1,
        y=0,
        yshift=-below,
        yanchor="top",
        xanchor="right",
        showarrow=False,
        align="right",
        font={"size": 11, "color": "#666666"},
    )
    fig.update_layout(margin={"b": below + 30 + 15 * len(shown)})
    return fig


def error_of(section: object) -> str | None:
    """The error message of a failed model, or None if it was fitted."""
    if isinstance(section, dict) and "error" in section:
        return str(section["error"])
    return None if isinstance(section, dict) else "missing"


def div_id(*parts: str) -> str:
    """A stable div id from its parts ("km", "adjacent" -> "km-adjacent")."""
    slug = "-".join(re.sub(r"[^a-z0-9]+", "-", p.lower()).strip("-") for p in parts)
    if not _DIV_ID.match(slug):
        raise ValueError(f"cannot make a div id from {parts!r}")
    return slug


def _figure_ids() -> dict[str, str]:
    ids = {
        "forest": "Hazard ratios of every model, by outcome",
        "love": "Covariate balance before and after weighting (primary outcome)",
        "ps-overlap": "Propensity score by arm (primary outcome)",
        "weights": "Stabilised weights by arm (primary outcome)",
        "quality": "Quarantined rows and check violations",
        "mi-distributions": "Observed and imputed values of each imputed covariate",
        "mi-convergence": "Convergence of the chained equations",
    }
    for key, label in ((o.key, o.label) for o in catalogue.OUTCOMES):
        ids[div_id("km", key)] = f"Kaplan-Meier: {label}"
        ids[div_id("km-landmark", key)] = f"Kaplan-Meier from the landmark: {label}"
        ids[div_id("km-weighted", key)] = f"IPTW-weighted Kaplan-Meier: {label}"
        ids[div_id("cif", key)] = f"Cumulative incidence with death competing: {label}"
        ids[div_id("schoenfeld", key, "treated")] = f"Schoenfeld residuals, treatment: {label}"
        ids[div_id("tt", key)] = f"Target trial, risk under each strategy: {label}"
        ids[div_id("tt-love", key)] = f"Target trial, balance of the clones: {label}"
    for instrument in ("VAS", "ODI"):
        ids[div_id("pro", instrument, "box")] = f"{instrument} by visit and arm"
        ids[div_id("pro", instrument, "trajectory")] = f"{instrument} mean and 95 % CI by visit"
    return ids


# Stable div ids of the report (id -> caption); other ids come from div_id(...).
FIGURE_IDS: dict[str, str] = _figure_ids()


# Defined once per page, after plotly.js: figures are queued as the page is read and drawn
# one per task afterwards, so the text shows at once and the page stays responsive while
# a million-patient report draws its curves; printing draws whatever is still queued. A
# figure in a closed <details> (the target trial's diagnostics) is drawn when it is opened.
DRAW_SCRIPT = """
window.registryDraw = (function () {
  var queue = [], waiting = false;
  function draw(job) {
    var div = document.getElementById(job[0]);
    if (!div) return;
    // inside a closed <details> nothing can be measured: draw when it is first opened
    var closed = div.closest("details:not([open])");
    if (closed) closed.addEventListener("toggle", function () { draw(job); }, {once: true});
    else Plotly.newPlot(job[0], job[1].data, job[1].layout, job[2]);
  }
  function next() {
    if (queue.length) draw(queue.shift());
    waiting = queue.length > 0;
    if (waiting) setTimeout(next, 0);
  }
  window.addEventListener("beforeprint", function () { while (queue.length) draw(queue.shift()); });
  return function (id, spec, config) {
    queue.push([id, spec, config]);
    if (!waiting) { waiting = true; setTimeout(next, 0); }
  };
})();
"""
# A div on a page without DRAW_SCRIPT draws at once.
_DRAW_NOW = "function (i, s, c) { Plotly.newPlot(i, s.data, s.layout, c); }"
CONFIG = {"displaylogo": False, "responsive": True}


def to_div(fig: go.Figure, div_id: str) -> str:
    """The figure as an HTML fragment with a fixed div id (plotly.js is included once per page;
    the figure is drawn by DRAW_SCRIPT's queue)."""
    if not _DIV_ID.match(div_id):
        raise ValueError(f"not a safe div id: {div_id!r}")
    size = {k: fig.layout[k] for k in ("width", "height")}
    style = "; ".join(f"{k}:{'100%' if v is None else f'{v}px'}" for k, v in size.items())
    spec = fig.to_json()  # plotly's encoder writes < > / as \u escapes: no "</script>"
    args = f"{json.dumps(div_id)}, {spec}, {json.dumps(CONFIG)}"
    call = f"(window.registryDraw || {_DRAW_NOW})({args});"
    return (
        f'<div style="{style};"><div id="{div_id}" class="plotly-graph-div" '
        f'style="height:100%; width:100%;"></div><script>{call}</script></div>'
    )
