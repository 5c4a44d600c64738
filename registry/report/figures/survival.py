"""Kaplan-Meier and cumulative incidence figures, with a numbers-at-risk table under the axis."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from registry.constants import DAYS_PER_YEAR
from registry.report import format as fmt
from registry.report.figures.style import (
    DOTTED_BAND_ARMS,
    ByArm,
    Section,
    arm_colour,
    arm_label,
    band_colour,
    base_layout,
    error_of,
    esc,
    note,
    rounded,
    scatter,
    year_axis,
    year_ticks,
    years,
)
from registry.result_types import Arm, KMCurve, ModelError


def year_day(year: int) -> int:
    """The day of a whole year, as the analysis rounds it (1 -> 365, 3 -> 1096, 5 -> 1826)."""
    return round(year * DAYS_PER_YEAR)


def at_risk_at(curve: Section, day: float) -> int | None:
    """Subjects with duration >= day: at_risk at the first curve time >= day, 0 past the end.

    The analysis keeps, besides the rows where the curve steps, the first row on or after
    each whole year, so that for a year's day this is exact; after the last row nobody is
    left. None means suppressed.
    """
    times = curve["times_days"]
    i = bisect_left(times, day)
    if i == len(times):
        return 0
    value: int | None = curve["at_risk"][i]
    return value


def fitted(curves: ByArm | None) -> list[tuple[str, Section]]:
    """The (arm, curve) pairs that were estimated, skipping errors and empty curves."""
    return [
        (arm, curve)
        for arm, curve in (curves or {}).items()
        if error_of(curve) is None and curve.get("times_days")
    ]


def skipped_note(fig: go.Figure, what: str, curves: ByArm | None, *, below: int = 10) -> None:
    """Say which arms could not be estimated (their error message), if any."""
    failed = [
        f"{arm_label(arm)}: {esc(error_of(c))}" for arm, c in (curves or {}).items() if error_of(c)
    ]
    if failed:
        note(fig, [f"{what} not shown:", *failed], below=below)


# Pixel layout of a curve panel above a numbers-at-risk table: the panel, the gap holding its
# tick labels, the "Years" title and the table heading, one row per arm, and the margins.
TOP_PX = 80
CURVE_PX = 300
GAP_PX = 72
ROW_PX = 22
BOTTOM_PX = 12
PLAIN_BOTTOM_PX = 60


def frame(table_rows: int) -> go.Figure:
    """One plot, or a plot above a numbers-at-risk table of `table_rows` rows sharing its x axis.

    Heights are fixed in pixels (see figure_height) so that the table sits right under the
    axis title and ends just above the bottom edge.
    """
    if table_rows == 0:
        fig = make_subplots(rows=1, cols=1)
        fig.update_layout(margin={"t": TOP_PX, "b": PLAIN_BOTTOM_PX})
        return fig
    table = ROW_PX * table_rows
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        row_heights=[CURVE_PX, table],
        vertical_spacing=GAP_PX / (CURVE_PX + GAP_PX + table),
    )
    fig.update_layout(margin={"t": TOP_PX, "b": BOTTOM_PX})
    return fig


def figure_height(fig: go.Figure, table_rows: int) -> int:
    """The height that gives the curve panel CURVE_PX and each table row ROW_PX pixels."""
    table = GAP_PX + ROW_PX * table_rows if table_rows else 0
    return TOP_PX + CURVE_PX + table + int(fig.layout.margin.b)


def add_step(fig: go.Figure, arm: str, x: list[Any], y: list[Any], **kwargs: Any) -> None:
    """A step curve of one arm (right-continuous: horizontal, then vertical)."""
    line = {"color": arm_colour(arm), "width": 2, "shape": "hv", "dash": kwargs.pop("dash", None)}
    kwargs.setdefault("legendgroup", arm)
    fig.add_trace(scatter(x=x, y=y, mode="lines", line=line, **kwargs), row=1, col=1)


def add_band(fig: go.Figure, arm: str, x: list[Any], curve: Section) -> None:
    """The 95 % confidence band of one arm, step-shaped, toggled with its curve.

    A light fill; for DOTTED_BAND_ARMS also dotted edges, so two overlapping bands stay apart.
    """
    common = {"x": x, "mode": "lines", "legendgroup": arm, "showlegend": False}
    common["hoverinfo"] = "skip"
    dotted = arm in DOTTED_BAND_ARMS
    edge = {"width": 1 if dotted else 0, "shape": "hv", "color": band_colour(arm, 0.7)}
    if dotted:
        edge["dash"] = "dot"
    fig.add_trace(scatter(y=rounded(curve["ci_lower"]), line=edge, **common), row=1, col=1)
    fig.add_trace(
        scatter(
            y=rounded(curve["ci_upper"]),
            line=edge,
            fill="tonexty",
            fillcolor=band_colour(arm),
            **common,
        ),
        row=1,
        col=1,
    )


# Per point only the variable parts go into customdata; the template is written once per trace.
CENSOR_HOVER = "Year %{x:.1f} (day %{customdata[0]}) · censored %{customdata[1]:,}"
KM_HOVER = (
    "Year %{x:.1f} (day %{customdata[0]}) · survival %{customdata[1]}"
    " · at risk %{customdata[2]} · events %{customdata[3]}"
)


def km_hover(curve: Section, threshold: int) -> list[list[Any]]:
    """Hover values of every point of a Kaplan-Meier curve: day, survival (CI), at risk, events."""
    rows = zip(
        curve["times_days"],
        curve["survival"],
        curve["ci_lower"],
        curve["ci_upper"],
        curve["at_risk"],
        curve["events"],
        strict=True,
    )
    return [
        [
            round(t),
            f"{fmt.percent(s)} ({fmt.percent_ci(lo, hi)})",
            fmt.count(n, threshold),
            fmt.count(d, threshold),
        ]
        for t, s, lo, hi, n, d in rows
    ]


def add_censor_marks(fig: go.Figure, arm: str, curve: Section) -> None:
    """Small "+" marks where subjects were censored (not where the count is suppressed),
    on the curve: its value at the last row on or before the censoring day."""
    # results.json before curves were thinned held `censored` per row of times_days
    key = "censored_times_days" if "censored_times_days" in curve else "times_days"
    times: list[float] = curve[key]
    marks = [(t, c) for t, c in zip(times, curve.get("censored") or [], strict=True) if c]
    if not marks:
        return
    steps = curve["times_days"]
    days = [t for t, _ in marks]
    surv = [curve["survival"][max(bisect_right(steps, t) - 1, 0)] for t in days]
    marker = {"symbol": "cross-thin", "size": 7, "line": {"width": 1.3, "color": arm_colour(arm)}}
    fig.add_trace(
        scatter(
            x=years(days),
            y=rounded(surv),
            mode="markers",
            marker=marker,
            legendgroup=arm,
            showlegend=False,
            customdata=[[round(t), c] for t, c in marks],
            hovertemplate=CENSOR_HOVER + f"<extra>{arm_label(arm)}</extra>",
        ),
        row=1,
        col=1,
    )


def add_km_arm(fig: go.Figure, arm: str, curve: Section, threshold: int) -> None:
    """Curve and censoring marks of one arm (its band is drawn before every curve)."""
    x = years(curve["times_days"])
    add_step(
        fig,
        arm,
        x,
        rounded(curve["survival"]),
        name=arm_label(arm),
        customdata=km_hover(curve, threshold),
        hovertemplate=f"{KM_HOVER}<extra>{arm_label(arm)}</extra>",
    )
    add_censor_marks(fig, arm, curve)


def add_risk_table(fig: go.Figure, km_by_arm: ByArm, ticks: list[int], threshold: int) -> None:
    """Numbers at risk at each whole year, one text row per arm, in the second subplot row."""
    arms = fitted(km_by_arm)
    add_risk_rows(fig, arms, ticks, threshold)
    style_risk_strip(fig, [arm_label(arm) for arm, _ in arms])


def followed_ticks(curve: Section, ticks: list[int]) -> list[int]:
    """The year ticks up to the end of a curve: past it the count would be a misleading 0."""
    end = curve["times_days"][-1]
    return [y for y in ticks if year_day(y) <= end]


def add_risk_rows(
    fig: go.Figure, arms: list[tuple[str, Section]], ticks: list[int], threshold: int
) -> None:
    """One text trace per arm: the number at risk under each year tick up to the curve's end."""
    for arm, curve in arms:
        shown = followed_ticks(curve, ticks)
        counts = [at_risk_at(curve, year_day(y)) for y in shown]
        fig.add_trace(
            go.Scatter(
                x=shown,
                y=[arm_label(arm)] * len(shown),
                mode="text",
                text=[fmt.count(n, threshold) for n in counts],
                textfont={"color": arm_colour(arm), "size": 12},
                legendgroup=arm,
                showlegend=False,
                hoverinfo="skip",
            ),
            row=2,
            col=1,
        )


def style_risk_strip(fig: go.Figure, labels: list[str]) -> None:
    """The at-risk strip: arm names as rows (first arm on top), no grid, a small heading."""
    fig.update_yaxes(
        categoryorder="array",
        categoryarray=labels[::-1],
        range=[-0.5, len(labels) - 0.5],
        showgrid=False,
        showline=False,
        ticks="",
        row=2,
        col=1,
    )
    fig.update_xaxes(showgrid=False, showline=False, ticks="", showticklabels=False, row=2, col=1)
    fig.add_annotation(
        text="Number at risk",
        xref="paper",
        yref="y2 domain",
        x=0,
        y=1.0,
        xanchor="left",
        yanchor="bottom",
        yshift=2,
        showarrow=False,
        font={"size": 12},
    )


def last_day(*groups: Sequence[tuple[str, Section]]) -> float:
    """The last time of any curve (0 if there are none)."""
    return max((c["times_days"][-1] for group in groups for _, c in group), default=0.0)


def lowest(arms: Sequence[tuple[str, Section]], key: str) -> float:
    """The smallest non-missing value of a key over the curves (1 if there is none)."""
    values = [v for _, c in arms for v in c[key] if v is not None]
    return min(values, default=1.0)


def survival_floor(arms: Sequence[tuple[str, Section]]) -> float:
    """The bottom of the survival axis: 5 points under the lowest band, on a 5 % grid."""
    low = min(lowest(arms, "ci_lower"), lowest(arms, "survival"))
    return max(0.0, math.floor((low - 0.05) * 20) / 20)


def style_time_axes(fig: go.Figure, ticks: list[int], rows: int) -> None:
    """Years on the x axis of the curves, with labels under the curves even above a table."""
    fig.update_xaxes(**year_axis(ticks), showticklabels=True, row=1, col=1)
    if rows == 2:
        fig.update_xaxes(range=year_axis(ticks)["range"], row=2, col=1)


def km_figure(
    km_by_arm: dict[Arm, KMCurve | ModelError], *, title: str, threshold: int
) -> go.Figure:
    """Kaplan-Meier curves per arm with 95 % bands, censoring marks and numbers at risk."""
    arms = fitted(km_by_arm)
    fig = frame(len(arms))
    for arm, curve in arms:
        add_band(fig, arm, years(curve["times_days"]), curve)
    for arm, curve in arms:
        add_km_arm(fig, arm, curve, threshold)
    ticks = year_ticks(last_day(arms))
    if arms:
        add_risk_table(fig, km_by_arm, ticks, threshold)
    style_time_axes(fig, ticks, 2 if arms else 1)
    fig.update_yaxes(
        range=[survival_floor(arms), 1.01],
        tickformat=".0%",
        title_text="Event-free survival",
        row=1,
        col=1,
    )
    skipped_note(fig, "Curves", km_by_arm, below=10 if arms else 75)
    return base_layout(fig, title=title, height=figure_height(fig, len(arms)))
