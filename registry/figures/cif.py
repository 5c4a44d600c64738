"""Cumulative incidence figures: the outcome per arm with death as the competing event."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from registry.figures.style import (
    DAYS_PER_YEAR,
    Section,
    arm_colour,
    arm_label,
    base_layout,
    pct,
    pct_ci,
    rounded,
    year_ticks,
    years,
)
from registry.figures.survival import (
    add_band,
    add_risk_table,
    add_step,
    fitted,
    frame,
    last_day,
    skipped_note,
    style_time_axes,
    year_day,
)

RISK_YEARS = (1, 2, 5)  # absolute risks written on the curves
CIF_HOVER = "Year %{x:.1f} (day %{customdata[0]}) · WHAT %{customdata[1]}"


def cif_hover(curve: Section) -> list[list[Any]]:
    """Hover values of every point of a cumulative incidence curve: day, value (CI)."""
    rows = zip(curve["times_days"], curve["cif"], curve["ci_lower"], curve["ci_upper"], strict=True)
    return [[round(t), f"{pct(v)} ({pct_ci(lo, hi)})"] for t, v, lo, hi in rows]


def add_cif_arm(fig: go.Figure, arm: str, curve: Section) -> None:
    """Band and curve of the outcome's cumulative incidence in one arm."""
    x = years(curve["times_days"])
    add_band(fig, arm, x, curve)
    add_step(
        fig,
        arm,
        x,
        rounded(curve["cif"]),
        name=arm_label(arm),
        customdata=cif_hover(curve),
        hovertemplate=CIF_HOVER.replace("WHAT", "cumulative incidence")
        + f"<extra>{arm_label(arm)}</extra>",
    )


def add_death_arm(fig: go.Figure, arm: str, curve: Section) -> None:
    """The cumulative incidence of death (the competing event) as a dashed line, no band."""
    add_step(
        fig,
        arm,
        years(curve["times_days"]),
        rounded(curve["cif"]),
        dash="dash",
        name=f"Death (competing), {arm_label(arm).lower()}",
        legendgroup="death (competing)",
        customdata=cif_hover(curve),
        hovertemplate=CIF_HOVER.replace("WHAT", "death")
        + f"<extra>death, {arm_label(arm).lower()}</extra>",
    )


def label_position(arm: str, year: int) -> str:
    """Treated labels above-left of the curve, others below-right (below-left at the end)."""
    if arm == "treated":
        return "top left"
    return "bottom left" if year == RISK_YEARS[-1] else "bottom right"


def add_risk_marks(fig: go.Figure, arm: str, curve: Section) -> None:
    """Absolute risks at 1, 2 and 5 years written next to the curve of one arm."""
    at = curve.get("at_years") or {}
    points: list[tuple[int, float]] = [
        (y, at[str(y)]) for y in RISK_YEARS if at.get(str(y)) is not None
    ]
    if not points:
        return
    fig.add_trace(
        go.Scatter(
            x=[year_day(y) / DAYS_PER_YEAR for y, _ in points],
            y=[round(v, 5) for _, v in points],
            mode="markers+text",
            marker={"color": arm_colour(arm), "size": 6},
            text=[pct(v) for _, v in points],
            textposition=[label_position(arm, y) for y, _ in points],
            textfont={"color": arm_colour(arm), "size": 12},
            legendgroup=arm,
            showlegend=False,
            hovertemplate=[
                f"{y}-year risk {pct(v)}<extra>{arm_label(arm)}</extra>" for y, v in points
            ],
        ),
        row=1,
        col=1,
    )


def highest(arms: Sequence[tuple[str, Section]], keys: Sequence[str]) -> float:
    """The largest non-missing value of some keys over the curves (0 if there is none)."""
    values = [v for _, c in arms for k in keys for v in c.get(k, []) if v is not None]
    return max(values, default=0.0)


def extend_to(curve: Section, day: float | None) -> Section:
    """A cumulative incidence held flat to `day` (the arm's end of follow-up) with one more row."""
    if day is None or day <= curve["times_days"][-1]:
        return curve
    keys = ("times_days", "cif", "ci_lower", "ci_upper")
    return {**curve, **{k: [*curve[k], day if k == "times_days" else curve[k][-1]] for k in keys}}


def follow_up_ends(km_by_arm: dict[str, Any] | None) -> dict[str, float]:
    """The last time of each arm's Kaplan-Meier curve: where its follow-up ends."""
    return {arm: curve["times_days"][-1] for arm, curve in fitted(km_by_arm)}


def cif_axis(fig: go.Figure, curves: Sequence[tuple[str, Section]]) -> None:
    """Cumulative incidence in percent, from 0 to just above the highest band."""
    top = min(1.0, math.ceil((highest(curves, ("ci_upper", "cif")) + 0.03) * 20) / 20)
    fig.update_yaxes(
        range=[0, top], tickformat=".0%", title_text="Cumulative incidence", row=1, col=1
    )


def failed_cif(cif_by_arm: dict[str, Any], cif_death_by_arm: dict[str, Any] | None) -> Section:
    """Every curve of the figure by name, for the note on those that were not estimated."""
    deaths = {f"death, {arm}": c for arm, c in (cif_death_by_arm or {}).items()}
    return {**(cif_by_arm or {}), **deaths}


def cif_figure(
    cif_by_arm: dict[str, Any],
    cif_death_by_arm: dict[str, Any] | None,
    *,
    title: str,
    threshold: int,
    km_by_arm_for_risk_table: dict[str, Any] | None,
) -> go.Figure:
    """Cumulative incidence per arm with 95 % bands, death as dashed lines, risks at 1/2/5 years."""
    ends = follow_up_ends(km_by_arm_for_risk_table)
    arms = [(arm, extend_to(c, ends.get(arm))) for arm, c in fitted(cif_by_arm)]
    deaths = [(arm, extend_to(c, ends.get(arm))) for arm, c in fitted(cif_death_by_arm)]
    rows = 2 if ends else 1
    fig = frame(rows)
    for arm, curve in arms:
        add_cif_arm(fig, arm, curve)
        add_risk_marks(fig, arm, curve)
    for arm, curve in deaths:
        add_death_arm(fig, arm, curve)
    ticks = year_ticks(last_day(arms, deaths))
    if rows == 2:
        add_risk_table(fig, km_by_arm_for_risk_table or {}, ticks, threshold)
    style_time_axes(fig, ticks, rows)
    cif_axis(fig, [*arms, *deaths])
    below = 10 if rows == 2 else 75
    skipped_note(fig, "Curves", failed_cif(cif_by_arm, cif_death_by_arm), below=below)
    return base_layout(fig, title=title, height=560 if rows == 2 else 460)
