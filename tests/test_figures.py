"""Report figures: traces, numbers at risk, suppressed counts, skipped models, escaping,
deterministic and light HTML; on the demo's results.json and on tiny hand-made sections."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import polars as pl
import pytest
from click.testing import CliRunner

from registry import catalogue
from registry.cli import main
from registry.report import figures as F
from registry.report.figures.style import DRAW_SCRIPT
from registry.report.figures.survival import year_day

ARMS = ("treated", "untreated")
LABELS = {"treated": "Treated", "untreated": "Untreated"}
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """The demo's results.json (run once through the CLI) and its output folder."""
    out = tmp_path_factory.mktemp("figures-demo")
    run = CliRunner().invoke(main, ["demo", "--out", str(out), "--as-of", "2026-01-01"])
    assert run.exit_code == 0, run.output
    return json.loads((out / "results.json").read_text(encoding="utf-8")), out


def risk_table(fig: go.Figure) -> dict[str, list[str]]:
    """The numbers-at-risk rows of a figure, by arm label."""
    return {t.y[0]: list(t.text) for t in fig.data if t.mode == "text" and t.yaxis == "y2"}


def named(fig: go.Figure, name: str) -> go.Scatter:
    """The one trace with this legend name."""
    [trace] = [t for t in fig.data if t.name == name]
    return trace


def expected_risk(curve: dict[str, Any], threshold: int) -> list[str]:
    """Numbers at risk at years 0-5 up to the curve's end, computed independently: at_risk at
    the first time >= day (no column past the last time, where it would read 0)."""
    times = np.asarray(curve["times_days"], dtype=float)
    out = []
    for year in range(6):
        i = int(np.searchsorted(times, year_day(year), side="left"))
        if i == times.size:
            break
        n = curve["at_risk"][i]
        out.append("withheld" if n is None else f"{n:,}")
    return out


def risk_labels(fig: go.Figure, arm: str) -> list[Any]:
    """The absolute-risk labels of an arm (annotations in its colour on the curve panel)."""
    return [
        a
        for a in fig.layout.annotations
        if a.yref == "y" and a.font.color == F.ARM_COLOURS[arm] and "%" in a.text
    ]


def side(label: Any) -> str:
    """Where a risk label sits: "above"/"below" its point, or on the "top"/"bottom" edge."""
    if label.yshift:
        return "above" if label.yshift > 0 else "below"
    return "top" if label.yanchor == "top" else "bottom"


def all_divs(results: dict[str, Any]) -> dict[str, str]:
    """Every figure the demo results can give, as HTML fragments by div id."""
    t, outcomes = results["small_cell_threshold"], results["outcomes"]
    figs: dict[str, go.Figure] = {"forest": F.forest_figure(outcomes, threshold=t)}
    for name, o in outcomes.items():
        figs[f"km-{name}"] = F.km_figure(o["km"], title=name, threshold=t)
        figs[f"km-landmark-{name}"] = F.km_figure(o["km_landmark"], title=name, threshold=t)
        figs[f"km-weighted-{name}"] = F.km_figure(
            o["cox"]["iptw"]["weighted_km"], title=name, threshold=t
        )
        figs[f"cif-{name}"] = F.cif_figure(
            o["cif"], o["cif_death"], title=name, threshold=t, km_by_arm_for_risk_table=o["km"]
        )
    figs["love"] = F.love_plot(outcomes["adjacent"]["cox"]["iptw"]["balance"])
    for instrument in ("VAS", "ODI"):
        figs[f"pro-{instrument.lower()}-trajectory"] = F.trajectory_figure(
            results["pro"]["trajectories"], instrument=instrument, threshold=t
        )
    return {div_id: F.to_div(fig, div_id) for div_id, fig in figs.items()}


# --- the demo's results.json ------------------------------------------------------------


@pytest.mark.slow
def test_demo_km_curves_have_the_json_points_and_numbers_at_risk(demo: Any) -> None:
    results, _ = demo
    t = results["small_cell_threshold"]
    for name, outcome in results["outcomes"].items():
        fig = F.km_figure(outcome["km"], title=name, threshold=t)
        table = risk_table(fig)
        for arm in ARMS:
            curve = outcome["km"][arm]
            trace = named(fig, LABELS[arm])
            assert trace.line.shape == "hv"
            assert len(trace.x) == len(curve["times_days"])  # no points added
            assert table[LABELS[arm]] == expected_risk(curve, t)


@pytest.mark.slow
def test_demo_numbers_at_risk_count_subjects_with_duration_at_least_t(demo: Any) -> None:
    """Published numbers at risk are round_km's: the rounded-up (to 5) cumulative events and
    censorings over all, minus those before the day (so always a multiple of 5)."""
    results, out = demo
    frame = pl.read_parquet(out / "tte" / "outcomes.parquet").filter(
        pl.col("outcome") == "adjacent"
    )
    table = risk_table(F.km_figure(results["outcomes"]["adjacent"]["km"], title="", threshold=5))

    def up(n: int) -> int:
        return -(-n // 5) * 5

    for arm, is_treated in (("treated", True), ("untreated", False)):
        rows = frame.filter(pl.col("treated").cast(pl.Boolean) == is_treated)
        durations, events = rows["duration_days"], rows["event"] == 1
        for year, text in enumerate(table[LABELS[arm]]):
            before = durations < year_day(year)
            n = up(int(events.sum())) + up(int((~events).sum()))
            n -= up(int((events & before).sum())) + up(int((~events & before).sum()))
            assert text == f"{n:,}" and n % 5 == 0, (arm, year)


@pytest.mark.slow
def test_demo_cif_has_bands_death_lines_and_risks_at_1_2_5_years(demo: Any) -> None:
    results, _ = demo
    o = results["outcomes"]["adjacent"]
    fig = F.cif_figure(
        o["cif"], o["cif_death"], title="cif", threshold=5, km_by_arm_for_risk_table=o["km"]
    )
    deaths = [t for t in fig.data if t.legendgroup == "death (competing)"]
    assert len(deaths) == 2 and all(t.line.dash == "dash" for t in deaths)
    assert sum(1 for t in fig.data if t.fill == "tonexty") == 2
    for arm in ARMS:
        [marks] = [t for t in fig.data if t.mode == "markers" and t.legendgroup == arm]
        at = o["cif"][arm]["at_years"]
        assert list(marks.y) == [round(at[y], 5) for y in ("1", "2", "5")]
        labels = risk_labels(fig, arm)
        assert [a.text for a in labels] == [f"{100 * at[y]:.1f} %" for y in ("1", "2", "5")]
        assert all(a.bgcolor.startswith("rgba(255,255,255,") for a in labels)
    assert risk_table(fig)["Treated"] == expected_risk(o["km"]["treated"], 5)


@pytest.mark.slow
def test_demo_cif_labels_point_away_from_the_other_arm_and_stay_inside(demo: Any) -> None:
    results, _ = demo
    for name, o in results["outcomes"].items():
        fig = F.cif_figure(
            o["cif"], o["cif_death"], title=name, threshold=5, km_by_arm_for_risk_table=o["km"]
        )
        top = fig.layout.yaxis.range[1]
        sides = {arm: [side(a) for a in risk_labels(fig, arm)] for arm in ARMS}
        for i, year in enumerate(("1", "2", "5")):
            treated, untreated = (o["cif"][arm]["at_years"][year] for arm in ARMS)
            if treated is None or untreated is None:  # withheld: the labels shift, stop here
                break
            high, low = ("treated", "untreated") if treated >= untreated else ARMS[::-1]
            assert sides[high][i] in ("above", "top") and sides[low][i] in ("below", "bottom")
        for arm in ARMS:
            assert all(0 <= a.y <= top for a in risk_labels(fig, arm))


@pytest.mark.slow
def test_demo_landmark_risk_table_stops_at_the_end_of_the_curves(demo: Any) -> None:
    results, _ = demo
    km = results["outcomes"]["adjacent"]["km_landmark"]
    fig = F.km_figure(km, title="landmark", threshold=5)
    for arm in ARMS:
        [row] = [t for t in fig.data if t.mode == "text" and t.y[0] == LABELS[arm]]
        end = km[arm]["times_days"][-1]
        assert max(year_day(x) for x in row.x) <= end and "0" not in list(row.text)
        assert list(row.text) == expected_risk(km[arm], 5)


@pytest.mark.slow
def test_demo_forest_lists_every_model_in_order_with_the_primary_marked(demo: Any) -> None:
    results, _ = demo
    fig = F.forest_figure(results["outcomes"])
    labels = list(fig.layout.yaxis.ticktext)
    models = catalogue.MODELS
    assert len(labels) == len(results["outcomes"]) * (1 + len(models))
    first = labels[1 : 1 + len(models)]
    shown = [lab.strip("<b>/").split(" · ")[0].removesuffix(" †") for lab in first]
    assert shown == [m.forest_label for m in models]
    fit = results["outcomes"]["adjacent"]["cox"]["time_varying_adjusted"]
    pooled = " †" if "mi" in fit else ""  # pooled over imputations
    assert (
        first[0] == f"<b>Time-varying, adjusted (primary){pooled} · n {fit['n']:,} · "
        f"events {fit['events']:,}</b>"
    )
    [primary] = [t for t in fig.data if t.mode == "markers" and t.marker.symbol == "diamond"]
    assert len(primary.x) == len(results["outcomes"])
    assert primary.x[0] == pytest.approx(fit["hr"], rel=1e-4)
    assert fig.layout.xaxis.type == "log"


@pytest.mark.slow
def test_demo_divs_are_deterministic_light_and_without_random_ids(demo: Any) -> None:
    results, _ = demo
    first, second = all_divs(results), all_divs(json.loads(json.dumps(results)))
    assert first == second
    assert sum(len(d.encode()) for d in first.values()) < 1_500_000
    for div_id, html in first.items():
        assert f'id="{div_id}"' in html
        assert '"uid"' not in html and "plotly.min.js" not in html


@pytest.mark.slow
def test_demo_trajectories_and_love_plot(demo: Any) -> None:
    results, _ = demo
    fig = F.trajectory_figure(results["pro"]["trajectories"], instrument="VAS")
    assert [t.name for t in fig.data] == ["Treated", "Untreated"]
    assert list(fig.data[0].x) == ["baseline", "1 month", "6 months", "12 months"]
    assert list(fig.layout.yaxis.range) == [-0.2, 10.2]
    balance = results["outcomes"]["adjacent"]["cox"]["iptw"]["balance"]
    love = F.love_plot(balance)
    assert sorted(love.data[1].x) == sorted(round(abs(r["smd_after"]), 5) for r in balance)


# --- tiny hand-made sections --------------------------------------------------------------


def km_curve(**overrides: Any) -> dict[str, Any]:
    """A 10-subject curve with a row per distinct duration (events and censorings); the
    censorings as the analysis writes them, in their own lists."""
    curve = {
        "times_days": [0.0, 100.0, 400.0, 800.0],
        "survival": [1.0, 0.9, 0.75, 0.5],
        "ci_lower": [1.0, 0.6, 0.4, 0.2],
        "ci_upper": [1.0, 0.98, 0.93, 0.8],
        "at_risk": [10, 10, 6, 3],
        "events": [0, 1, 1, 1],
        "censored_times_days": [0.0, 100.0, 400.0, 800.0],
        "censored": [0, 3, 2, 2],
    }
    return curve | overrides


def test_at_risk_at_counts_subjects_still_followed_at_t() -> None:
    curve = km_curve()
    assert [F.at_risk_at(curve, d) for d in (0, 100, 101, 365, 400, 730, 800, 801)] == [
        10,
        10,
        6,
        6,
        6,
        3,
        3,
        0,
    ]
    fig = F.km_figure({"treated": curve}, title="t", threshold=5)
    assert risk_table(fig) == {"Treated": ["10", "6", "3"]}  # the curve ends at day 800
    [row] = [t for t in fig.data if t.mode == "text"]
    assert list(row.x) == [0, 1, 2]


def test_suppressed_counts_show_as_below_threshold_never_zero() -> None:
    hostile = km_curve(at_risk=[None] * 4, events=[None] * 4, censored=[None] * 4)
    fig = F.km_figure({"treated": hostile, "untreated": hostile}, title="t", threshold=10)
    assert risk_table(fig)["Treated"] == ["withheld", "withheld", "withheld"]
    hover = named(fig, "Treated").customdata
    assert all(row[2] == "withheld" and row[3] == "withheld" for row in hover)
    assert not [t for t in fig.data if t.mode == "markers"]  # no censoring mark is guessed


def test_censoring_marks_only_where_someone_was_censored() -> None:
    fig = F.km_figure({"treated": km_curve(censored=[0, 3, None, 0])}, title="t", threshold=5)
    [marks] = [t for t in fig.data if t.mode == "markers"]
    assert list(marks.x) == [round(100 / 365.25, 4)] and list(marks.y) == [0.9]
    assert marks.legendgroup == "treated"


def test_km_legend_groups_band_curve_and_marks_of_an_arm() -> None:
    fig = F.km_figure({"treated": km_curve(), "untreated": km_curve()}, title="t", threshold=5)
    groups = {t.legendgroup for t in fig.data}
    assert groups == {"treated", "untreated"}
    assert [t.name for t in fig.data if t.showlegend is not False] == ["Treated", "Untreated"]
    assert fig.layout.yaxis.range[0] == pytest.approx(0.15)  # 5 points under the lowest CI


def test_failed_arm_is_skipped_with_a_note() -> None:
    fig = F.km_figure(
        {"treated": km_curve(), "untreated": {"error": "no events"}}, title="t", threshold=5
    )
    assert [t.name for t in fig.data if t.name] == ["Treated"]
    assert "Untreated: no events" in fig.layout.annotations[-1].text


def cif_curve(values: list[float], **overrides: Any) -> dict[str, Any]:
    """A cumulative incidence with a step at 1, 2 and 5 years (the values there)."""
    times = [0.0, *(float(year_day(y)) for y in (1, 2, 5))]
    cif = [0.0, *values]
    at_years = dict(zip(("1", "2", "5"), values, strict=True))
    return {
        "times_days": times,
        "cif": cif,
        "ci_lower": [max(0.0, v - 0.01) for v in cif],
        "ci_upper": [v + 0.01 for v in cif],
        "at_years": at_years,
    } | overrides


def cif_of(treated: dict[str, Any], untreated: dict[str, Any]) -> go.Figure:
    km = {"treated": km_curve(times_days=[0.0, 2000.0]), "untreated": km_curve()}
    return F.cif_figure(
        {"treated": treated, "untreated": untreated},
        None,
        title="t",
        threshold=5,
        km_by_arm_for_risk_table=km,
    )


def test_cif_label_of_the_higher_arm_goes_above_the_lower_below() -> None:
    fig = cif_of(cif_curve([0.10, 0.20, 0.30]), cif_curve([0.15, 0.20, 0.25]))
    assert [side(a) for a in risk_labels(fig, "treated")] == ["below", "above", "above"]
    assert [side(a) for a in risk_labels(fig, "untreated")] == ["above", "below", "below"]
    labels = risk_labels(fig, "treated") + risk_labels(fig, "untreated")
    assert all(a.bgcolor == "rgba(255,255,255,0.8)" and a.showarrow is False for a in labels)
    assert [a.x for a in risk_labels(fig, "treated")] == [
        round(year_day(y) / 365.25, 4) for y in (1, 2, 5)
    ]


def test_cif_labels_near_zero_or_the_top_stay_inside_the_plot() -> None:
    fig = cif_of(cif_curve([0.002, 0.003, 0.004]), cif_curve([0.001, 0.001, 0.001]))
    top = fig.layout.yaxis.range[1]
    lower = risk_labels(fig, "untreated")
    assert [side(a) for a in lower] == ["bottom"] * 3  # would be cut off under the x axis
    assert all(a.y == 0 and a.yanchor == "bottom" for a in lower)
    assert [a.xanchor for a in lower] == ["left", "left", "right"]  # beside the point
    higher = cif_of(cif_curve([0.5, 0.7, 0.97]), cif_curve([0.1, 0.2, 0.3]))
    labels = risk_labels(higher, "treated")
    assert side(labels[-1]) == "top" and labels[-1].y == higher.layout.yaxis.range[1] == 1.0
    for a in lower + labels:
        assert 0 <= a.y <= max(top, 1.0)


def test_cif_bands_are_light_under_strong_curves() -> None:
    fig = cif_of(cif_curve([0.1, 0.2, 0.3]), cif_curve([0.1, 0.2, 0.3]))
    bands = [t for t in fig.data if t.fill == "tonexty"]
    assert [b.fillcolor for b in bands] == ["rgba(31,119,180,0.1)", "rgba(224,123,34,0.1)"]
    edges = [t for t in fig.data if t.hoverinfo == "skip" and t.legendgroup == "untreated"]
    assert {t.line.dash for t in edges if t.mode == "lines"} == {"dot"}
    last_band = max(i for i, t in enumerate(fig.data) if t.fill == "tonexty")
    curves = [i for i, t in enumerate(fig.data) if t.name in ("Treated", "Untreated")]
    assert min(curves) > last_band  # no band is drawn over a curve
    assert named(fig, "Treated").line.width == 2


def test_at_risk_table_sits_under_the_axis_title_without_space_below() -> None:
    fig = F.km_figure({"treated": km_curve(), "untreated": km_curve()}, title="t", threshold=5)
    assert fig.layout.xaxis.title.text == "Years" and fig.layout.xaxis.title.standoff <= 6
    assert fig.layout.xaxis.showticklabels is True and fig.layout.xaxis2.title.text is None
    assert fig.layout.margin.b <= 15 and list(fig.layout.yaxis2.range) == [-0.5, 1.5]
    plot_px = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    table_px = plot_px * (fig.layout.yaxis2.domain[1] - fig.layout.yaxis2.domain[0])
    gap_px = plot_px * (fig.layout.yaxis.domain[0] - fig.layout.yaxis2.domain[1])
    assert table_px == pytest.approx(44) and 50 <= gap_px <= 90  # 22 px per arm
    [heading] = [a for a in fig.layout.annotations if a.text == "Number at risk"]
    assert heading.yref == "y2 domain" and heading.yanchor == "bottom"


def test_cif_without_a_risk_table_has_one_row_and_skips_errors() -> None:
    cif = {
        "times_days": [0.0, 50.0],
        "cif": [0.0, 0.1],
        "ci_lower": [0.0, 0.05],
        "ci_upper": [0.0, 0.2],
        "at_years": {"1": 0.1, "2": None, "5": None},
    }
    fig = F.cif_figure(
        {"treated": cif, "untreated": {"error": "singular"}},
        None,
        title="t",
        threshold=5,
        km_by_arm_for_risk_table=None,
    )
    assert not risk_table(fig) and "yaxis2" not in fig.layout
    [marks] = [t for t in fig.data if t.mode == "markers"]
    assert list(marks.y) == [0.1]
    assert [a.text for a in risk_labels(fig, "treated")] == ["10.0 %"]
    assert "Untreated: singular" in fig.layout.annotations[-1].text


def test_cif_is_held_flat_to_the_end_of_follow_up() -> None:
    cif = {
        "times_days": [0.0, 50.0],
        "cif": [0.0, 0.1],
        "ci_lower": [0.0, 0.05],
        "ci_upper": [0.0, 0.2],
        "at_years": {},
    }
    fig = F.cif_figure(
        {"treated": cif},
        {"treated": cif},
        title="t",
        threshold=5,
        km_by_arm_for_risk_table={"treated": km_curve()},
    )
    curve = named(fig, "Treated")
    assert list(curve.y) == [0.0, 0.1, 0.1] and curve.x[-1] == round(800 / 365.25, 4)


def fit(hr: float, **extra: Any) -> dict[str, Any]:
    return {
        "hr": hr,
        "ci_lower": hr / 2,
        "ci_upper": hr * 2,
        "p": 0.5,
        "n": 100,
        "events": 20,
    } | extra


def with_models(fine_gray: dict[str, Any] | None = None, **cox: dict[str, Any]) -> Any:
    """An outcome's models as results.json holds them: every one present, those not given
    as not fitted (a missing model is a KeyError, not a skipped row)."""
    names = ("unadjusted", "adjusted", "time_varying", "time_varying_adjusted", "landmark",
             "iptw", "piecewise", "death_cause_specific")  # fmt: skip
    failed = {"error": "not fitted"}
    return {"cox": {n: cox.get(n, failed) for n in names}, "fine_gray": fine_gray or failed}


def test_forest_skips_failed_models_and_shows_suppressed_counts() -> None:
    outcome = with_models(
        time_varying_adjusted=fit(0.9, events=None),
        iptw={"error": "no overlap"},
        landmark=fit(1.1) | {"hr": None},
        unadjusted=fit(1.2),
        fine_gray=fit(1.0),
    )
    fig = F.forest_figure({"adjacent": outcome, SCRIPT: with_models()}, threshold=5)
    labels = list(fig.layout.yaxis.ticktext)
    assert labels[:4] == [
        "<b>Adjacent-level fracture</b>",
        "<b>Time-varying, adjusted (primary) · n 100 · events withheld</b>",
        "Ever-treated, unadjusted (immortal-time) · n 100 · events 20",
        "Fine–Gray subdistribution · n 100 · events 20",
    ]
    assert labels[4] == "<b>&lt;script&gt;alert(1)&lt;/script&gt;</b>"
    notes = fig.layout.annotations[-1].text
    assert "IPTW, landmark cohort: no overlap" in notes and "Landmark: no finite estimate" in notes
    assert "<script>alert" not in F.to_div(fig, "forest")


def test_forest_writes_intervals_with_an_en_dash_and_pads_the_axis() -> None:
    outcome = with_models(time_varying_adjusted=fit(0.91) | {"ci_lower": 0.66, "ci_upper": 4.03})
    fig = F.forest_figure({"adjacent": outcome})
    [column] = [a for a in fig.layout.annotations if a.xref == "paper" and a.y == 1]
    assert column.text == "<b>0.91 (0.66–4.03)</b>"
    [points] = [t for t in fig.data if t.mode == "markers"]
    assert "HR 0.91 (0.66–4.03) · p" in points.text[0]
    low, high = fig.layout.xaxis.range
    assert high - math.log10(4.03) >= 0.1 and math.log10(0.5) - low >= 0.1


def test_love_plot_escapes_covariate_names() -> None:
    fig = F.love_plot(
        [
            {"covariate": SCRIPT, "smd_before": -0.3, "smd_after": 0.01},
            {"covariate": "age", "smd_before": 0.05, "smd_after": None},
        ]
    )
    assert list(fig.data[0].x) == [0.3, 0.05] and list(fig.data[1].x) == [0.01, None]
    assert fig.layout.shapes[0].x0 == 0.1 and fig.layout.shapes[0].line.dash == "dash"
    html = F.to_div(fig, "love")
    assert "<script>alert" not in html and "alert(1)" in html
    assert list(fig.data[0].y) == ["&lt;script&gt;alert(1)&lt;/script&gt;", "Age"]


def test_love_plot_and_schoenfeld_use_readable_variable_names() -> None:
    names = ["bmd_t_score", "n_index_levels", "glucocorticoids", "prior_vertebral_fractures"]
    names += ["male", "age", "treated", "some_new_var", "a<b_c"]
    fig = F.love_plot(
        [
            {"covariate": n, "smd_before": 0.5 - i / 100, "smd_after": 0.0}
            for i, n in enumerate(names)
        ]
    )
    assert list(fig.data[0].y) == [
        "BMD T-score",
        "Index levels",
        "Glucocorticoids",
        "Prior vertebral fractures",
        "Male sex",
        "Age",
        "Treated",
        "some new var",
        "a&lt;b c",
    ]
    smooth = {"time_days": [100], "residual_mean": [0.1], "residual_lower": [0.0]}
    smooth |= {"residual_upper": [0.2], "n": [40], "beta": 0.1}
    schoenfeld = F.schoenfeld_figure(smooth, term="bmd_t_score")
    assert schoenfeld.layout.title.text == "Scaled Schoenfeld residuals: BMD T-score"
    assert schoenfeld.layout.yaxis.title.text == "β(t) for BMD T-score"


@pytest.mark.slow
def test_demo_love_plot_has_no_raw_variable_names(demo: Any) -> None:
    results, _ = demo
    love = F.love_plot(results["outcomes"]["adjacent"]["cox"]["iptw"]["balance"])
    assert love.data[0].y and not [n for n in love.data[0].y if "_" in n or n.islower()]


def test_binned_histograms_draw_suppressed_bins_at_zero_with_a_below_threshold_hover() -> None:
    hist = {
        "bin_edges": [0.0, 0.25, 0.5, 0.75, 1.0],
        "treated": [None, 10, 20, 0],
        "untreated": [7, None, None, 3],
    }
    fig = F.propensity_figure(hist)
    treated, untreated = fig.data
    assert list(treated.y) == [0, 10, 20, 0] and list(untreated.y) == [7, 0, 0, 3]
    assert treated.text[0] == "0.00–0.25: withheld" and untreated.text[3] == "0.75–1.00: 3"
    assert list(treated.x) == [0.125, 0.375, 0.625, 0.875] and fig.layout.barmode == "overlay"
    assert F.weights_figure(hist).layout.xaxis.title.text == "Stabilised weight"
    with pytest.raises(ValueError, match="3 counts for 4 bins"):
        F.propensity_figure({"bin_edges": hist["bin_edges"], "treated": [1, 2, 3]})


def test_schoenfeld_points_error_bars_and_beta_line() -> None:
    smooth = {
        "time_days": [100, 500],
        "residual_mean": [0.1, None],
        "residual_lower": [-0.1, None],
        "residual_upper": [0.4, None],
        "n": [None, 30],
        "beta": -0.2,
    }
    fig = F.schoenfeld_figure(smooth, term=SCRIPT)
    [points] = fig.data
    assert list(points.error_y.array) == [0.3, None] and list(points.error_y.arrayminus) == [
        0.2,
        None,
    ]
    assert "n withheld" in points.text[0] and "n 30" in points.text[1]
    assert fig.layout.shapes[0].y0 == -0.2
    assert (
        fig.layout.title.text
        == "Scaled Schoenfeld residuals: &lt;script&gt;alert(1)&lt;/script&gt;"
    )


def quartiles(median: float, n: int | None) -> dict[str, Any]:
    return {
        "q1": median - 1,
        "median": median,
        "q3": median + 1,
        "lowerfence": median - 2,
        "upperfence": median + 2,
        "mean": median,
        "sd": 1.5,
        "n": n,
    }


def test_pro_boxes_from_quartiles_grouped_by_visit() -> None:
    data = {
        "untreated": {"baseline": quartiles(7, 40), "1 month": quartiles(4, None)},
        "treated": {
            "1 month": quartiles(2, 30),
            "baseline": quartiles(8, 41),
            "6 months": {"q1": None, "median": None, "n": None},
        },
    }
    fig = F.pro_box_figure(data, instrument="ODI")
    treated, untreated = fig.data
    assert treated.name == "Treated" and list(treated.x) == ["baseline", "1 month"]
    assert list(treated.q1) == [7, 1] and list(treated.sd) == [1.5, 1.5]
    assert fig.layout.boxmode == "group" and list(fig.layout.yaxis.range) == [-2, 102]
    ticks = list(fig.layout.xaxis.ticktext)
    assert "n 41" in ticks[0] and "n withheld" in ticks[1]
    assert "6 months" in ticks[2] and list(untreated.x) == ["baseline", "1 month"]


def test_trajectory_mean_and_95_ci() -> None:
    rows: list[dict[str, Any]] = [
        {
            "instrument": "VAS",
            "arm": "treated",
            "visit": "1 month",
            "n": 100,
            "mean": 2.0,
            "sd": 1.0,
        },
        {
            "instrument": "VAS",
            "arm": "treated",
            "visit": "baseline",
            "n": None,
            "mean": 8.0,
            "sd": 1.0,
        },
        {
            "instrument": "ODI",
            "arm": "treated",
            "visit": "baseline",
            "n": 50,
            "mean": 60.0,
            "sd": 9.0,
        },
    ]
    fig = F.trajectory_figure(rows, instrument="VAS")
    [trace] = fig.data
    assert list(trace.x) == ["baseline", "1 month"]
    assert trace.error_y.array[0] is None
    assert trace.error_y.array[1] == pytest.approx(1.96 * 1.0 / math.sqrt(100), abs=1e-3)
    assert "n withheld" in trace.text[0]


def test_quality_bars_show_suppressed_counts_as_below_threshold() -> None:
    fig = F.quality_figure(
        [{"label": "a.csv · bad_date", "count": None}, {"label": SCRIPT, "count": 12}], threshold=5
    )
    [bars] = fig.data
    assert list(bars.x) == [12, 0] and list(bars.text) == ["12", "withheld"]
    assert "<script>alert" not in F.to_div(fig, "quality")
    assert "No quarantined rows" in F.quality_figure([]).layout.annotations[0].text


def test_empty_sections_give_an_empty_figure_not_an_error() -> None:
    assert F.km_figure({}, title="t", threshold=5).data == ()
    assert F.cif_figure({}, {}, title="t", threshold=5, km_by_arm_for_risk_table={}).data == ()
    for fig in (
        F.forest_figure({}),
        F.love_plot([]),
        F.propensity_figure({"bin_edges": []}),
        F.pro_box_figure({}, instrument="VAS"),
        F.trajectory_figure([], instrument="VAS"),
    ):
        assert isinstance(fig, go.Figure)


def test_figure_ids_and_to_div() -> None:
    for div_id in (
        "km-adjacent",
        "cif-adjacent",
        "forest",
        "love",
        "ps-overlap",
        "weights",
        "schoenfeld-adjacent-treated",
        "pro-vas-box",
        "quality",
    ):
        assert div_id in F.FIGURE_IDS
    assert F.div_id("schoenfeld", "any_new", "bmd t-score") == "schoenfeld-any-new-bmd-t-score"
    assert "km-same-level" in F.FIGURE_IDS
    fig = F.km_figure({"treated": km_curve()}, title=SCRIPT, threshold=5)
    html = F.to_div(fig, "km-adjacent")
    assert html == F.to_div(
        F.km_figure({"treated": km_curve()}, title=SCRIPT, threshold=5), "km-adjacent"
    )
    assert F.to_div(fig, "schoenfeld-bmd_t_score").count('id="schoenfeld-bmd_t_score"') == 1
    assert 'id="km-adjacent"' in html and '"displaylogo": false' in html
    assert "<script>alert" not in html
    with pytest.raises(ValueError):
        F.to_div(fig, 'x" onload="alert(1)')


def test_one_colour_per_arm_in_every_figure() -> None:
    km = F.km_figure({"treated": km_curve(), "untreated": km_curve()}, title="t", threshold=5)
    box = F.pro_box_figure({"treated": {"baseline": quartiles(5, 9)}}, instrument="VAS")
    assert named(km, "Treated").line.color == box.data[0].marker.color == F.ARM_COLOURS["treated"]
    assert named(km, "Untreated").line.color == F.ARM_COLOURS["untreated"]


def test_a_curve_with_a_point_per_day_stays_light() -> None:
    days = 1800  # a million patients still give at most one row per distinct day
    surv = np.linspace(1.0, 0.6, days).tolist()
    curve = km_curve(
        times_days=np.arange(days, dtype=float).tolist(),
        survival=surv,
        ci_lower=[s - 0.01 for s in surv],
        ci_upper=[min(1.0, s + 0.01) for s in surv],
        at_risk=list(range(1_000_000, 1_000_000 - days, -1)),
        events=[120] * days,
        censored_times_days=np.arange(days, dtype=float).tolist(),
        censored=[300] * days,
    )
    fig = F.km_figure({"treated": curve, "untreated": curve}, title="t", threshold=5)
    assert max(len(t.x) for t in fig.data) == days
    assert len(F.to_div(fig, "km-big")) < 450_000


def test_censoring_marks_between_steps_sit_on_the_curve() -> None:
    # the analysis drops rows where only censorings happen: their marks come from own lists
    curve = km_curve(censored_times_days=[250.0, 800.0], censored=[4, 2])
    fig = F.km_figure({"treated": curve}, title="t", threshold=5)
    [marks] = [t for t in fig.data if t.mode == "markers"]
    assert list(marks.x) == [round(250 / 365.25, 4), round(800 / 365.25, 4)]
    assert list(marks.y) == [0.9, 0.5]  # the step value on or before each day
    assert [row[1] for row in marks.customdata] == [4, 2]
    none = F.km_figure(
        {"treated": km_curve(censored_times_days=[], censored=[])}, title="t", threshold=5
    )
    assert not [t for t in none.data if t.mode == "markers"]


def test_divs_queue_their_figure_for_the_page_to_draw() -> None:
    html = F.to_div(F.km_figure({"treated": km_curve()}, title=SCRIPT, threshold=5), "km-x")
    assert html.count("<script>") == html.count("</script>") == 1  # the title stays escaped
    assert "(window.registryDraw ||" in html and 'class="plotly-graph-div"' in html
    assert "window.registryDraw =" in DRAW_SCRIPT and "beforeprint" in DRAW_SCRIPT
