"""Missing-data figures: observed against imputed values per imputed covariate, and the
convergence of the chained equations (mean and SD of the imputed values per iteration).

They read results.json's `missing_data.distributions` and `missing_data.chains` as published:
shares per bin (a withheld share is None and leaves a gap) and one trace per imputation."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from registry.report.figures.style import base_layout, esc, note, rounded, variable_label

OBSERVED_COLOUR = "#5b6670"
IMPUTED_COLOUR = "#c0392b"
TRACE_COLOUR = "rgba(31,95,153,0.55)"
PER_ROW = 3  # panels side by side
PANEL_PX = 260
NO_BOX = "<extra></extra>"  # hover without the trace-name box


def bin_labels(entry: Mapping[str, Any]) -> list[str]:
    """'no'/'yes' for a binary covariate, '−3.0 to −2.0' for each bin of a continuous one."""
    shares = entry.get("observed") or entry.get("imputed") or []
    if entry.get("binary"):
        return ["no", "yes"][: len(shares)] + [f"{i}" for i in range(2, len(shares))]
    edges = list(entry.get("edges") or [])
    if len(edges) != len(shares) + 1 or any(e is None for e in edges):
        return [f"bin {i + 1}" for i in range(len(shares))]
    return [f"{signed(lo)} to {signed(hi)}" for lo, hi in pairwise(edges)]


def signed(value: float) -> str:
    """A bin edge with a true minus sign."""
    return f"{value:.1f}".replace("-", "\N{MINUS SIGN}")


def grid(panels: int) -> tuple[int, int]:
    """(rows, cols) of a grid of panels, at most PER_ROW side by side."""
    cols = max(1, min(PER_ROW, panels))
    return max(1, math.ceil(panels / cols)), cols


def shares(values: Sequence[Any] | None) -> list[float | None]:
    """Shares as percentages for the bars (None stays a gap)."""
    return [None if v is None else round(100 * v, 2) for v in values or []]


def distribution_figure(distributions: Mapping[str, Mapping[str, Any]]) -> go.Figure:
    """Per imputed covariate, the share of observed and of imputed values in each bin."""
    names = list(distributions)
    rows, cols = grid(len(names))
    titles = [esc(variable_label(n)) for n in names] or [""]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.08)
    for i, name in enumerate(names):
        entry, place = distributions[name], {"row": i // cols + 1, "col": i % cols + 1}
        labels, hover = bin_labels(entry), esc(variable_label(name))
        for key, label, colour in (
            ("observed", "Observed", OBSERVED_COLOUR),
            ("imputed", "Imputed", IMPUTED_COLOUR),
        ):
            fig.add_trace(
                go.Bar(
                    x=labels,
                    y=shares(entry.get(key)),
                    name=label,
                    legendgroup=key,
                    marker_color=colour,
                    showlegend=i == 0,
                    hovertemplate=f"{hover} %{{x}}: %{{y:.1f}} %<extra>{label}</extra>",
                ),
                **place,
            )
    # the legend above the panel titles, not on them
    fig.update_layout(barmode="group", bargap=0.25, legend={"y": 1.1}, margin={"t": 110})
    fig.update_yaxes(rangemode="tozero", ticksuffix=" %")
    fig.update_yaxes(title_text="Share of values", col=1)
    if not names:
        note(fig, ["Nothing was imputed."])
    title = "Share of values per bin: observed, and imputed (every imputation together)"
    return base_layout(fig, title=title, height=120 + PANEL_PX * rows)


def convergence_figure(chains: Mapping[str, Mapping[str, Any]]) -> go.Figure:
    """Mean (left) and SD (right) of each variable's imputed values after each iteration, one
    line per imputation and one row per variable: chains that mix and stay level converged."""
    names = list(chains)
    titles = [f"{esc(variable_label(n))}: {stat}" for n in names for stat in ("mean", "SD")]
    rows = max(1, len(names))
    fig = make_subplots(
        rows=rows, cols=2, subplot_titles=titles or None, vertical_spacing=min(0.3 / rows, 0.12)
    )
    for i, name in enumerate(names):
        for col, stat in ((1, "mean"), (2, "sd")):
            for j, trace in enumerate((chains[name] or {}).get(stat) or []):
                fig.add_trace(
                    go.Scatter(
                        x=list(range(1, len(trace) + 1)),
                        y=rounded(list(trace)),
                        mode="lines",
                        line={"color": TRACE_COLOUR, "width": 1.2},
                        showlegend=False,
                        hovertemplate=f"imputation {j + 1}, iteration %{{x}}: %{{y}}{NO_BOX}",
                    ),
                    row=i + 1,
                    col=col,
                )
    fig.update_xaxes(title_text="Iteration", row=rows)
    if not names:
        note(fig, ["No convergence traces were kept."])
    title = "Convergence of the chained equations: one line per imputation"
    return base_layout(fig, title=title, height=120 + PANEL_PX * rows)
