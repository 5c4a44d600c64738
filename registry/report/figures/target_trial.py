"""Target-trial figures: the two strategies' cumulative incidence with CI bands above a table
of unweighted clones at risk, and the covariate balance of the clones before and after weighting.

They read results.json's `target_trial.outcomes.<outcome>` as published (counts withheld as
None); the colours are the arms' (treat as treated, no_treat as untreated)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from registry.report import format as fmt
from registry.report.figures.cif import cif_axis, cif_top
from registry.report.figures.models import love_plot
from registry.report.figures.style import (
    Section,
    arm_colour,
    base_layout,
    esc,
    note,
    rounded,
    scatter,
    year_ticks,
    years,
)
from registry.report.figures.survival import (
    add_band,
    add_step,
    figure_height,
    frame,
    style_risk_strip,
    style_time_axes,
)

STRATEGIES = ("treat", "no_treat")
STRATEGY_ARMS = {"treat": "treated", "no_treat": "untreated"}  # colours and legend groups
RIGHT_PX = 60
TT_HOVER = "Year %{x:.1f} (day %{customdata[0]}) · risk %{customdata[1]}"


def drawn(strategies: Mapping[str, Section]) -> list[tuple[str, Section]]:
    """(strategy, curve) of the strategies whose curve has points, treat first."""
    curves = [(s, timed((strategies.get(s) or {}).get("curve") or {})) for s in STRATEGIES]
    return [(s, c) for s, c in curves if c["day"]]


def timed(curve: Section) -> dict[str, list[Any]]:
    """A curve's points that have a day (a curve with a missing day would not draw)."""
    keys = ("day", "risk", "lower", "upper")
    rows = [r for r in zip(*(curve.get(k) or [] for k in keys), strict=False) if r[0] is not None]
    return {k: [r[i] for r in rows] for i, k in enumerate(keys)}


def as_cif(curve: Section) -> dict[str, Any]:
    """A strategy's curve under the names of the cumulative-incidence helpers."""
    return {
        "times_days": curve["day"],
        "cif": curve["risk"],
        "ci_lower": curve["lower"],
        "ci_upper": curve["upper"],
    }


def tt_hover(curve: Section) -> list[list[Any]]:
    """Hover values of every point of a strategy's curve: day, risk (CI)."""
    rows = zip(curve["day"], curve["risk"], curve["lower"], curve["upper"], strict=True)
    return [[round(d), f"{fmt.percent(r)} ({fmt.percent_ci(lo, hi)})"] for d, r, lo, hi in rows]


def add_strategy(fig: go.Figure, strategy: str, curve: Section, label: str) -> None:
    """One strategy's cumulative incidence as a step curve in its arm's colour."""
    arm = STRATEGY_ARMS[strategy]
    add_step(
        fig,
        arm,
        years(curve["day"]),
        rounded(curve["risk"]),
        name=esc(label),
        customdata=tt_hover(curve),
        hovertemplate=TT_HOVER + f"<extra>{esc(label)}</extra>",
    )


def at_risk_days(strategies: Mapping[str, Section], strategy: str) -> list[Any]:
    """The days of a strategy's clones-at-risk row (empty when not estimable)."""
    return list(((strategies.get(strategy) or {}).get("at_risk") or {}).get("day") or [])


def add_at_risk_rows(
    fig: go.Figure, strategies: Mapping[str, Section], labels: Mapping[str, str], threshold: int
) -> list[str]:
    """Unweighted clones at risk at each published day, one text row per strategy (withheld
    counts as the report writes them); the row labels, treat first."""
    shown = []
    for strategy in STRATEGIES:
        if not at_risk_days(strategies, strategy):
            continue
        at_risk = strategies[strategy]["at_risk"]
        label = esc(labels[strategy])
        shown.append(label)
        fig.add_trace(
            scatter(
                x=years(at_risk["day"]),
                y=[label] * len(at_risk["day"]),
                mode="text",
                cliponaxis=False,  # "withheld" under the last year is wider than the axis pad
                text=[fmt.count(n, threshold) for n in at_risk["n"]],
                textfont={"color": arm_colour(STRATEGY_ARMS[strategy]), "size": 12},
                legendgroup=STRATEGY_ARMS[strategy],
                showlegend=False,
                hoverinfo="skip",
            ),
            row=2,
            col=1,
        )
    return shown


def strategy_figure(
    strategies: Mapping[str, Section], *, labels: Mapping[str, str], title: str, threshold: int
) -> go.Figure:
    """Cumulative incidence under each strategy (death competing) with 95 % bands, and the
    unweighted clones at risk under it."""
    curves = drawn(strategies)
    rows = sum(
        bool(((strategies.get(s) or {}).get("at_risk") or {}).get("day")) for s in STRATEGIES
    )
    fig = frame(rows)
    for strategy, curve in curves:
        add_band(fig, STRATEGY_ARMS[strategy], years(curve["day"]), as_cif(curve))
    for strategy, curve in curves:
        add_strategy(fig, strategy, curve, labels[strategy])
    last = max((c["day"][-1] for _, c in curves), default=0.0)
    ticks = year_ticks(last)
    if rows:
        shown = add_at_risk_rows(fig, strategies, labels, threshold)
        style_risk_strip(fig, shown)
        fig.layout.annotations[-1].text = "Clones at risk (unweighted)"
        fig.update_layout(margin={"r": RIGHT_PX})  # room for "withheld" under the last year
    style_time_axes(fig, ticks, 2 if rows else 1)
    cif_axis(fig, cif_top([(s, as_cif(c)) for s, c in curves]))
    if not curves:
        note(fig, ["No curves: the target trial was not estimable."], below=10 if rows else 75)
    return base_layout(fig, title=title, height=figure_height(fig, rows))


def balance_figure(balance: Sequence[Section]) -> go.Figure:
    """The love plot of the clones at the end of the grace period, unweighted and weighted."""
    rows = [
        {"covariate": r.get("covariate"), "smd_before": r.get("smd_unweighted"),
         "smd_after": r.get("smd_weighted")}
        for r in balance
    ]  # fmt: skip
    fig = love_plot(rows)
    fig.update_layout(
        title={"text": "Covariate balance of the clones at the end of the grace period"}
    )
    return fig
