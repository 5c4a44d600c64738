"""Patient-reported outcome figures (box plots, mean trajectories) and the data-quality bars."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import plotly.graph_objects as go

from registry.constants import Z95
from registry.report import format as fmt
from registry.report.figures.style import (
    ARMS,
    DEFAULT_THRESHOLD,
    Section,
    arm_colour,
    arm_label,
    base_layout,
    esc,
    note,
)
from registry.result_types import QuantilesByArm, Trajectory

VISITS = ("baseline", "1 month", "6 months", "12 months")
INSTRUMENT_RANGES = {"VAS": (0.0, 10.0), "ODI": (0.0, 100.0)}
QUARTILES = ("q1", "median", "q3", "lowerfence", "upperfence")
QUALITY_COLOUR = "#8c564b"


def visit_order(visits: Iterable[str]) -> list[str]:
    """The study visits in time order, then any other visits in the order first seen."""
    seen = list(dict.fromkeys(visits))
    return [v for v in VISITS if v in seen] + [v for v in seen if v not in VISITS]


def arm_order(arms: Iterable[str]) -> list[str]:
    """Treated, untreated, then any other arm in the order first seen."""
    seen = list(dict.fromkeys(arms))
    return [a for a in ARMS if a in seen] + [a for a in seen if a not in ARMS]


def score_axis(fig: go.Figure, instrument: str) -> None:
    """The y axis of an instrument: its full scale (0-10 VAS, 0-100 ODI), padded by 2 %."""
    low, high = INSTRUMENT_RANGES.get(instrument.upper(), (None, None))
    if low is None or high is None:
        fig.update_yaxes(title_text=esc(instrument))
        return
    pad = (high - low) * 0.02
    fig.update_yaxes(range=[low - pad, high + pad], title_text=esc(instrument))


def box_complete(stats: Any) -> bool:
    """Whether a visit has every quartile needed to draw its box."""
    return isinstance(stats, dict) and all(stats.get(k) is not None for k in QUARTILES)


def add_box_arm(
    fig: go.Figure, arm: str, by_visit: Mapping[str, Section], visits: list[str]
) -> None:
    """One arm's precomputed boxes (quartiles, fences, mean and SD), one per visit."""
    shown = [v for v in visits if box_complete(by_visit.get(v))]
    if not shown:
        return
    stats = [by_visit[v] for v in shown]
    columns = {k: [round(s[k], 4) for s in stats] for k in QUARTILES}
    # The mean is drawn as a dashed line; mean +- SD diamonds would cross the scale's ends.
    if all(s.get("mean") is not None and s.get("sd") is not None for s in stats):
        columns |= {k: [round(s[k], 4) for s in stats] for k in ("mean", "sd")}
    fig.add_trace(
        go.Box(
            x=[esc(v) for v in shown],
            name=arm_label(arm),
            marker={"color": arm_colour(arm)},
            boxmean=True,
            offsetgroup=arm,
            legendgroup=arm,
            **columns,
        )
    )


def visit_tick(visit: str, quantiles: Section, arms: list[str], threshold: int) -> str:
    """A visit's tick label with the n of each arm under it, in the arm's colour."""
    parts = []
    for arm in arms:
        stats = (quantiles.get(arm) or {}).get(visit)
        n = stats.get("n") if isinstance(stats, dict) else None
        text = fmt.count(n, threshold) if isinstance(stats, dict) else fmt.MISSING
        parts.append(f"<span style='color:{arm_colour(arm)}'>n {text}</span>")
    return f"{esc(visit)}<br>" + " · ".join(parts)


def pro_box_figure(
    pro_quantiles: QuantilesByArm, *, instrument: str, threshold: int = DEFAULT_THRESHOLD
) -> go.Figure:
    """Box plots of an instrument by visit and arm, from precomputed quartiles."""
    by_arm = cast(Mapping[str, Mapping[str, Section]], pro_quantiles)  # arm -> visit -> stats
    arms = arm_order(by_arm)
    visits = visit_order(v for arm in arms for v in (by_arm.get(arm) or {}))
    fig = go.Figure()
    for arm in arms:
        add_box_arm(fig, arm, by_arm.get(arm) or {}, visits)
    fig.update_layout(boxmode="group")
    ticks = [visit_tick(v, by_arm, arms, threshold) for v in visits]
    fig.update_xaxes(
        type="category",
        categoryorder="array",
        categoryarray=[esc(v) for v in visits],
        tickvals=[esc(v) for v in visits],
        ticktext=ticks,
    )
    score_axis(fig, instrument)
    if not fig.data:
        note(fig, ["No quartiles to show."])
    return base_layout(fig, title=f"{instrument} by visit and arm", height=440)


def mean_ci(row: Section) -> float | None:
    """Half-width of the 95 % CI of a mean (1.96 SD / sqrt(n)), None if n or SD is missing."""
    n, sd = row.get("n"), row.get("sd")
    if n is None or sd is None or n <= 0:
        return None
    return round(Z95 * sd / math.sqrt(n), 5)


def trajectory_hover(row: Section, threshold: int) -> str:
    """Hover text of one visit's mean."""
    half = mean_ci(row)
    mean = row.get("mean")
    ci = "" if half is None or mean is None else f" (95 % CI {mean - half:.1f}-{mean + half:.1f})"
    n = fmt.count(row.get("n"), threshold)
    return f"{esc(row.get('visit'))} · mean {fmt.number(mean, '.1f')}{ci} · n {n}"


def add_trajectory_arm(fig: go.Figure, arm: str, rows: list[Section], threshold: int) -> None:
    """One arm's means with 95 % CI error bars, joined across visits."""
    fig.add_trace(
        go.Scatter(
            x=[esc(r.get("visit")) for r in rows],
            y=[None if r.get("mean") is None else round(r["mean"], 4) for r in rows],
            mode="lines+markers",
            name=arm_label(arm),
            line={"color": arm_colour(arm), "width": 2},
            marker={"size": 8},
            error_y={"type": "data", "array": [mean_ci(r) for r in rows], "thickness": 1.5},
            offsetgroup=arm,
            legendgroup=arm,
            text=[trajectory_hover(r, threshold) for r in rows],
            hovertemplate=f"%{{text}}<extra>{arm_label(arm)}</extra>",
        )
    )


def trajectory_figure(
    trajectories: Sequence[Trajectory], *, instrument: str, threshold: int = DEFAULT_THRESHOLD
) -> go.Figure:
    """Mean and 95 % CI of an instrument at each visit, per arm."""
    rows = [r for r in trajectories if r.get("instrument") == instrument]
    visits = visit_order(str(r.get("visit")) for r in rows)
    fig = go.Figure()
    for arm in arm_order(str(r.get("arm")) for r in rows):
        mine = {str(r.get("visit")): r for r in rows if str(r.get("arm")) == arm}
        add_trajectory_arm(fig, arm, [mine[v] for v in visits if v in mine], threshold)
    fig.update_layout(scattermode="group", scattergap=0.7)
    escaped = [esc(v) for v in visits]
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=escaped)
    score_axis(fig, instrument)
    if not rows:
        note(fig, [f"No {esc(instrument)} assessments."])
    return base_layout(fig, title=f"{instrument}: mean and 95 % CI by visit", height=420)


def quality_figure(rows: list[dict[str, Any]], *, threshold: int = DEFAULT_THRESHOLD) -> go.Figure:
    """Horizontal bars of quarantined rows by (file, rule) and of check violations."""
    ordered = sorted(rows, key=lambda r: -(r.get("count") or 0))
    labels = [esc(r.get("label")) for r in ordered]
    counts = [fmt.count(r.get("count"), threshold) for r in ordered]
    fig = go.Figure(
        go.Bar(
            x=[r.get("count") or 0 for r in ordered],
            y=labels,
            orientation="h",
            marker={"color": QUALITY_COLOUR},
            text=counts,
            textposition="outside",
            cliponaxis=False,
            customdata=counts,
            hovertemplate="%{y}: %{customdata}<extra></extra>",
        )
    )
    fig.update_yaxes(categoryorder="array", categoryarray=labels[::-1], showgrid=False)
    fig.update_xaxes(rangemode="tozero", title_text="Rows")
    fig.update_layout(margin={"r": 60})
    if not rows:
        note(fig, ["No quarantined rows and no check violations."])
    return base_layout(fig, title="Data quality", height=180 + 26 * len(rows))
