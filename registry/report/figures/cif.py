"""Cumulative incidence figures: the outcome per arm with death as the competing event."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from registry.constants import DAYS_PER_YEAR
from registry.report import format as fmt
from registry.report.figures.style import (
    ARMS,
    ByArm,
    Section,
    arm_colour,
    arm_label,
    base_layout,
    rounded,
    year_ticks,
    years,
)
from registry.report.figures.survival import (
    CURVE_PX,
    add_band,
    add_risk_table,
    add_step,
    figure_height,
    fitted,
    frame,
    last_day,
    skipped_note,
    style_time_axes,
    year_day,
)
from registry.result_types import Arm, CIFCurve, KMCurve, ModelError

RISK_YEARS = (1, 2, 5)  # absolute risks written on the curves
LABEL_GAP_PX = 6  # between a risk label and its point
LABEL_PX = 18  # height of a risk label with its background
LABEL_BACKGROUND = "rgba(255,255,255,0.8)"
CIF_HOVER = "Year %{x:.1f} (day %{customdata[0]}) · WHAT %{customdata[1]}"


def cif_hover(curve: Section) -> list[list[Any]]:
    """Hover values of every point of a cumulative incidence curve: day, value (CI)."""
    rows = zip(curve["times_days"], curve["cif"], curve["ci_lower"], curve["ci_upper"], strict=True)
    return [[round(t), f"{fmt.percent(v)} ({fmt.percent_ci(lo, hi)})"] for t, v, lo, hi in rows]


def add_cif_arm(fig: go.Figure, arm: str, curve: Section) -> None:
    """The outcome's cumulative incidence in one arm (its band is drawn before every curve)."""
    add_step(
        fig,
        arm,
        years(curve["times_days"]),
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


def risk_points(curve: Section) -> list[tuple[int, float]]:
    """(year, absolute risk) at 1, 2 and 5 years, where the analysis estimated it."""
    at = curve.get("at_years") or {}
    return [(y, at[str(y)]) for y in RISK_YEARS if at.get(str(y)) is not None]


def value_at(curve: Section, day: float) -> float | None:
    """The cumulative incidence of a (step) curve at a day, None before its first time."""
    i = bisect_right(curve["times_days"], day)
    value: float | None = curve["cif"][i - 1] if i else None
    return value


def goes_above(arm: str, year: int, value: float, arms: Sequence[tuple[str, Section]]) -> bool:
    """Whether a risk label goes above its point: yes unless another arm's curve is higher
    there (on a tie the first arm, treated, goes above), so it points away from the other arm."""
    other = [v for a, c in arms if a != arm and (v := value_at(c, year_day(year))) is not None]
    if not other:
        return True
    return value > max(other) or (value == max(other) and arm == ARMS[0])


def label_spot(point: tuple[int, float], above: bool, top: float) -> dict[str, Any]:
    """Where a risk label goes: LABEL_GAP_PX above or below its point, kept inside 0..top.

    A label that would leave the plot sits on that edge instead, beside its point (left of
    the last one, which is near the right end of the axis).
    """
    year, value = point
    room = (LABEL_GAP_PX + LABEL_PX) * top / CURVE_PX
    fits = (value + room <= top) if above else (value - room >= 0)
    if fits:
        shift = LABEL_GAP_PX if above else -LABEL_GAP_PX
        return {"y": value, "yanchor": "bottom" if above else "top", "yshift": shift}
    edge = {"y": top, "yanchor": "top"} if above else {"y": 0.0, "yanchor": "bottom"}
    left = year == RISK_YEARS[-1]
    side = {
        "xanchor": "right" if left else "left",
        "xshift": -LABEL_GAP_PX if left else LABEL_GAP_PX,
    }
    return {**edge, **side}


def add_risk_label(
    fig: go.Figure, arm: str, point: tuple[int, float], spot: dict[str, Any]
) -> None:
    """One absolute risk written next to its point on a translucent white background."""
    fig.add_annotation(
        text=fmt.percent(point[1]),
        x=round(year_day(point[0]) / DAYS_PER_YEAR, 4),
        xref="x",
        yref="y",
        **({"xanchor": "center"} | spot),
        showarrow=False,
        font={"color": arm_colour(arm), "size": 12},
        bgcolor=LABEL_BACKGROUND,
        borderpad=1,
    )


def add_risk_marks(
    fig: go.Figure, arm: str, curve: Section, arms: Sequence[tuple[str, Section]], top: float
) -> None:
    """Absolute risks at 1, 2 and 5 years: a point on the curve of one arm and its label,
    on the side away from the other arm's curve."""
    points = risk_points(curve)
    if not points:
        return
    fig.add_trace(
        go.Scatter(
            x=[round(year_day(y) / DAYS_PER_YEAR, 4) for y, _ in points],
            y=[round(v, 5) for _, v in points],
            mode="markers",
            marker={"color": arm_colour(arm), "size": 6},
            legendgroup=arm,
            showlegend=False,
            hovertemplate=[
                f"{y}-year risk {fmt.percent(v)}<extra>{arm_label(arm)}</extra>" for y, v in points
            ],
        ),
        row=1,
        col=1,
    )
    for point in points:
        spot = label_spot(point, goes_above(arm, *point, arms), top)
        add_risk_label(fig, arm, point, spot)


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


def follow_up_ends(km_by_arm: ByArm | None) -> dict[str, float]:
    """The last time of each arm's Kaplan-Meier curve: where its follow-up ends."""
    return {arm: curve["times_days"][-1] for arm, curve in fitted(km_by_arm)}


def cif_top(curves: Sequence[tuple[str, Section]]) -> float:
    """The top of the cumulative incidence axis: just above the highest band, on a 5 % grid."""
    return min(1.0, math.ceil((highest(curves, ("ci_upper", "cif")) + 0.03) * 20) / 20)


def cif_axis(fig: go.Figure, top: float) -> None:
    """Cumulative incidence in percent, from 0 to `top`."""
    fig.update_yaxes(
        range=[0, top], tickformat=".0%", title_text="Cumulative incidence", row=1, col=1
    )


def failed_cif(cif_by_arm: ByArm, cif_death_by_arm: ByArm | None) -> Section:
    """Every curve of the figure by name, for the note on those that were not estimated."""
    deaths = {f"death, {arm}": c for arm, c in (cif_death_by_arm or {}).items()}
    return {**(cif_by_arm or {}), **deaths}


def cif_figure(
    cif_by_arm: dict[Arm, CIFCurve | ModelError],
    cif_death_by_arm: dict[Arm, CIFCurve | ModelError] | None,
    *,
    title: str,
    threshold: int,
    km_by_arm_for_risk_table: dict[Arm, KMCurve | ModelError] | None,
) -> go.Figure:
    """Cumulative incidence per arm with 95 % bands, death as dashed lines, risks at 1/2/5 years."""
    ends = follow_up_ends(km_by_arm_for_risk_table)
    arms = [(arm, extend_to(c, ends.get(arm))) for arm, c in fitted(cif_by_arm)]
    deaths = [(arm, extend_to(c, ends.get(arm))) for arm, c in fitted(cif_death_by_arm)]
    fig = frame(len(ends))
    top = cif_top([*arms, *deaths])
    for arm, curve in arms:
        add_band(fig, arm, years(curve["times_days"]), curve)
    for arm, curve in arms:
        add_cif_arm(fig, arm, curve)
    for arm, curve in deaths:
        add_death_arm(fig, arm, curve)
    for arm, curve in arms:
        add_risk_marks(fig, arm, curve, arms, top)
    ticks = year_ticks(last_day(arms, deaths))
    if ends:
        add_risk_table(fig, km_by_arm_for_risk_table or {}, ticks, threshold)
    style_time_axes(fig, ticks, 2 if ends else 1)
    cif_axis(fig, top)
    below = 10 if ends else 75
    skipped_note(fig, "Curves", failed_cif(cif_by_arm, cif_death_by_arm), below=below)
    return base_layout(fig, title=title, height=figure_height(fig, len(ends)))
