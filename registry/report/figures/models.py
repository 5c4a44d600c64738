"""Model figures: forest plot of hazard ratios, covariate balance, propensity and weights
histograms, scaled Schoenfeld residuals."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import plotly.graph_objects as go

from registry import catalogue
from registry.constants import DAYS_PER_YEAR
from registry.report import format as fmt
from registry.report.figures.style import (
    ARMS,
    DEFAULT_THRESHOLD,
    Section,
    arm_colour,
    arm_label,
    base_layout,
    error_of,
    esc,
    note,
    outcome_label,
    rounded,
    variable_label,
    year_axis,
    year_ticks,
    years,
)
from registry.result_types import (
    Histogram,
    OutcomeResults,
    SchoenfeldSmooth,
    hr_fit,
)

PRIMARY_COLOUR = "#000000"
SECONDARY_COLOUR = "#6b6b6b"
SMD_LIMIT = 0.1
HR_PAD = 0.12  # log10 units of HR axis beyond the widest CI (about x/÷ 1.3)
POOLED_MARK = " †"  # a fit pooled over imputations (Rubin's rules), explained under the plot


@dataclass(frozen=True)
class ForestRow:
    """One line of the forest plot: an outcome header (fit None) or a model's estimate."""

    label: str
    outcome: str
    model: str = ""
    fit: Section | None = None


def not_plotted(fit: Section) -> str | None:
    """Why a fit cannot be drawn (its error, or a missing estimate), None if it can."""
    error = error_of(fit)
    if error is not None:
        return error
    if any(fit.get(k) is None or fit[k] <= 0 for k in ("hr", "ci_lower", "ci_upper")):
        return "no finite estimate"
    return None


def model_row(outcome: str, model: str, fit: Section, threshold: int) -> ForestRow:
    """The labelled forest row of a fitted model; the primary model's label is bold."""
    n, events = (fmt.count(fit.get(k), threshold) for k in ("n", "events"))
    pooled = POOLED_MARK if fmt.pooled_over(fit) else ""
    label = f"{catalogue.model(model).forest_label}{pooled} · n {n} · events {events}"
    return ForestRow(f"<b>{label}</b>" if is_primary(model) else label, outcome, model, fit)


def forest_rows(
    outcomes: dict[str, OutcomeResults], threshold: int
) -> tuple[list[ForestRow], list[str]]:
    """The rows of the forest plot, and a note for each model that was skipped."""
    rows: list[ForestRow] = []
    skipped: list[str] = []
    for name, outcome in outcomes.items():
        rows.append(ForestRow(f"<b>{outcome_label(name)}</b>", name))
        for model in catalogue.MODELS:
            fit = hr_fit(outcome, model.key)
            why = not_plotted(fit)
            if why is None:
                rows.append(model_row(name, model.key, fit, threshold))
            else:
                skipped.append(f"{outcome_label(name)}, {model.forest_label}: {esc(why)}")
    return rows, skipped


def forest_hover(row: ForestRow) -> str:
    """Hover text of one estimate."""
    fit = row.fit or {}
    return (
        f"{outcome_label(row.outcome)} · {catalogue.model(row.model).forest_label}<br>"
        f"HR {fmt.hr_text(fit)} · p {fmt.pvalue(fit.get('p'))}"
        + (f"<br>{fmt.pooled_over(fit)}" if fmt.pooled_over(fit) else "")
    )


def estimates(rows: list[ForestRow], *, primary: bool) -> list[tuple[int, ForestRow, Section]]:
    """(y, row, fit) of the rows with an estimate, primary model or the others."""
    return [(y, r, r.fit) for y, r in enumerate(rows) if r.fit and is_primary(r.model) == primary]


def add_estimates(fig: go.Figure, rows: list[ForestRow], *, primary: bool) -> None:
    """CI segments and point estimates of the primary (black diamonds) or other models."""
    picked = estimates(rows, primary=primary)
    if not picked:
        return
    colour = PRIMARY_COLOUR if primary else SECONDARY_COLOUR
    seg_x = [v for _, _, fit in picked for v in (fit["ci_lower"], fit["ci_upper"], None)]
    seg_y = [v for y, _, _ in picked for v in (y, y, None)]
    line = {"color": colour, "width": 2}
    fig.add_trace(go.Scatter(x=rounded(seg_x), y=seg_y, mode="lines", line=line, hoverinfo="skip"))
    marker: dict[str, Any] = {"color": colour, "symbol": "diamond" if primary else "square"}
    marker["size"] = 12 if primary else 8
    fig.add_trace(
        go.Scatter(
            x=[round(fit["hr"], 5) for _, _, fit in picked],
            y=[y for y, _, _ in picked],
            mode="markers",
            marker=marker,
            text=[forest_hover(r) for _, r, _ in picked],
            hovertemplate="%{text}<extra></extra>",
        )
    )


def hr_range(rows: list[ForestRow]) -> list[float]:
    """The log10 range of the HR axis: every CI with HR_PAD to spare, and at least 0.5-2."""
    lows = [r.fit["ci_lower"] for r in rows if r.fit] + [0.5]
    highs = [r.fit["ci_upper"] for r in rows if r.fit] + [2.0]
    return [math.log10(min(lows)) - HR_PAD, math.log10(max(highs)) + HR_PAD]


def is_primary(model: str) -> bool:
    """Whether a row's model is the primary one (drawn black and bold)."""
    return model == catalogue.PRIMARY_MODEL


def add_hr_column(fig: go.Figure, rows: list[ForestRow]) -> None:
    """The HR and CI of each row as text right of the plot."""
    for y, row in enumerate(rows):
        if row.fit is None:
            continue
        text = fmt.hr_text(row.fit)
        fig.add_annotation(
            text=f"<b>{text}</b>" if is_primary(row.model) else text,
            xref="paper",
            x=1.01,
            xanchor="left",
            yref="y",
            y=y,
            showarrow=False,
            font={"size": 12},
        )


def forest_figure(
    outcomes: dict[str, OutcomeResults], *, threshold: int = DEFAULT_THRESHOLD
) -> go.Figure:
    """Hazard ratios and 95 % CIs of every model by outcome, log scale, primary model marked."""
    rows, skipped = forest_rows(outcomes, threshold)
    fig = go.Figure()
    span = [-0.6, len(rows) - 0.4]
    fig.add_trace(
        go.Scatter(
            x=[1, 1],
            y=span,
            mode="lines",
            line={"color": "#999999", "dash": "dash", "width": 1},
            hoverinfo="skip",
            showlegend=False,
        )
    )
    add_estimates(fig, rows, primary=False)
    add_estimates(fig, rows, primary=True)
    add_hr_column(fig, rows)
    fig.update_xaxes(
        type="log",
        range=hr_range(rows),
        tickvals=[0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 4, 10],
        title_text="Hazard ratio, treated vs untreated (95 % CI, log scale)",
    )
    fig.update_yaxes(
        tickvals=list(range(len(rows))),
        ticktext=[r.label for r in rows],
        range=span[::-1],
        showgrid=False,
        zeroline=False,
    )
    fig.update_layout(showlegend=False, margin={"r": 130}, hovermode="closest")
    pooled = sorted({fmt.pooled_over(r.fit) for r in rows if r.fit and fmt.pooled_over(r.fit)})
    lines = [f"{POOLED_MARK.strip()} {p} (Rubin's rules)" for p in pooled]
    if skipped or lines:
        note(fig, [*lines, *(["Not shown:", *skipped] if skipped else [])])
    return base_layout(fig, title="Hazard ratios by outcome and model", height=150 + 22 * len(rows))


def love_plot(balance: Sequence[Section]) -> go.Figure:
    """Absolute standardised mean differences before and after weighting, per covariate."""
    rows = sorted(balance, key=lambda r: -abs(r.get("smd_before") or 0.0))
    names = [esc(variable_label(r.get("covariate"))) for r in rows]
    fig = go.Figure()
    for key, label, symbol in (
        ("smd_before", "Before weighting", "circle-open"),
        ("smd_after", "After weighting", "circle"),
    ):
        values = [None if r.get(key) is None else round(abs(r[key]), 5) for r in rows]
        colour = "#7f7f7f" if key == "smd_before" else "#1f3f77"
        fig.add_trace(
            go.Scatter(
                x=values,
                y=names,
                mode="markers",
                name=label,
                marker={"symbol": symbol, "size": 10, "color": colour, "line": {"width": 1.5}},
                hovertemplate="%{y}: |SMD| %{x:.3f}<extra>" + label + "</extra>",
            )
        )
    fig.add_vline(x=SMD_LIMIT, line_dash="dash", line_color="#999999", line_width=1)
    fig.update_yaxes(categoryorder="array", categoryarray=names[::-1], showgrid=False)
    fig.update_xaxes(rangemode="tozero", title_text="|Standardised mean difference|")
    if not rows:
        note(fig, ["No balance table."])
    return base_layout(fig, title="Covariate balance", height=200 + 28 * len(rows))


def bins(hist: Section) -> list[tuple[float, float]]:
    """(left, right) edges of each bin of a pre-binned histogram."""
    edges = hist.get("bin_edges") or []
    return list(pairwise(edges))


def add_binned_arm(
    fig: go.Figure, arm: str, edges: list[tuple[float, float]], counts: list[Any], threshold: int
) -> None:
    """One arm's pre-binned counts as bars; suppressed bins drawn at 0, labelled "<5"."""
    if len(counts) != len(edges):
        raise ValueError(f"{arm}: {len(counts)} counts for {len(edges)} bins")
    fig.add_trace(
        go.Bar(
            x=[round((lo + hi) / 2, 6) for lo, hi in edges],
            width=[round(hi - lo, 6) for lo, hi in edges],
            y=[c or 0 for c in counts],
            name=arm_label(arm),
            marker={"color": arm_colour(arm)},
            opacity=0.55,
            text=[
                f"{lo:.2f}–{hi:.2f}: {fmt.count(c, threshold)}"
                for (lo, hi), c in zip(edges, counts, strict=True)
            ],
            textposition="none",
            hovertemplate="%{text}<extra>" + arm_label(arm) + "</extra>",
        )
    )


def binned_figure(hist: Section, *, title: str, x_title: str, threshold: int) -> go.Figure:
    """Overlapping per-arm histograms from bin edges and counts (never from raw values)."""
    edges = bins(hist)
    fig = go.Figure()
    for arm in [a for a in ARMS if a in hist] + [a for a in hist if a not in (*ARMS, "bin_edges")]:
        add_binned_arm(fig, arm, edges, hist[arm] or [], threshold)
    fig.update_layout(barmode="overlay", bargap=0, hovermode="x unified")
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text="Patients", rangemode="tozero")
    if not edges:
        note(fig, ["No histogram."])
    return base_layout(fig, title=title, height=400)


def propensity_figure(hist: Histogram | None, *, threshold: int = DEFAULT_THRESHOLD) -> go.Figure:
    """Propensity score distribution per arm (overlap), from pre-binned counts."""
    return binned_figure(
        hist or {}, title="Propensity score by arm", x_title="Propensity score", threshold=threshold
    )


def weights_figure(hist: Histogram | None, *, threshold: int = DEFAULT_THRESHOLD) -> go.Figure:
    """Stabilised IPTW weights per arm, from pre-binned counts."""
    return binned_figure(
        hist or {},
        title="Stabilised weights by arm",
        x_title="Stabilised weight",
        threshold=threshold,
    )


def schoenfeld_hover(smooth: Section, threshold: int) -> list[str]:
    """Hover text of each residual bin."""
    rows = zip(
        smooth["time_days"],
        smooth["residual_mean"],
        smooth["residual_lower"],
        smooth["residual_upper"],
        smooth.get("n") or [None] * len(smooth["time_days"]),
        strict=True,
    )
    return [
        f"Year {t / DAYS_PER_YEAR:.1f} · mean {fmt.number(m, '.3f')} "
        f"({fmt.number(lo, '.3f')} to {fmt.number(hi, '.3f')}) · n {fmt.count(n, threshold)}"
        for t, m, lo, hi, n in rows
    ]


def gap(a: float | None, b: float | None) -> float | None:
    """a - b for error bar lengths, None if either is missing."""
    return None if a is None or b is None else round(a - b, 6)


def residual_trace(smooth: Section, threshold: int) -> go.Scatter:
    """Mean residual per time bin with its 95 % CI as error bars."""
    mean, lower, upper = (smooth[k] for k in ("residual_mean", "residual_lower", "residual_upper"))
    error = {
        "type": "data",
        "array": [gap(u, m) for u, m in zip(upper, mean, strict=True)],
        "arrayminus": [gap(m, lo) for m, lo in zip(mean, lower, strict=True)],
        "color": "#1f3f77",
        "thickness": 1.2,
        "width": 4,
    }
    return go.Scatter(
        x=years(smooth["time_days"]),
        y=rounded(mean, 6),
        mode="markers",
        marker={"color": "#1f3f77", "size": 8},
        showlegend=False,
        error_y=error,
        text=schoenfeld_hover(smooth, threshold),
        hovertemplate="%{text}<extra></extra>",
    )


def schoenfeld_figure(
    smooth: SchoenfeldSmooth, *, term: str, threshold: int = DEFAULT_THRESHOLD
) -> go.Figure:
    """Binned scaled Schoenfeld residuals of a term over time, with the model's beta."""
    fig = go.Figure(residual_trace(smooth, threshold))
    beta = smooth.get("beta")
    if beta is not None:
        fig.add_hline(
            y=beta,
            line_dash="dash",
            line_color="#c0392b",
            line_width=1.5,
            annotation_text=f"β = {beta:.3f} (Cox model)",
            annotation_position="top right",
        )
    last = max((t for t in smooth["time_days"] if t is not None), default=0.0)
    fig.update_xaxes(**year_axis(year_ticks(last)))
    label = variable_label(term)
    fig.update_yaxes(title_text=f"β(t) for {esc(label)}")
    return base_layout(fig, title=f"Scaled Schoenfeld residuals: {label}", height=420)
