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

from registry import figures as F
from registry.cli import main
from registry.figures.models import FOREST_MODELS
from registry.figures.survival import year_day

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
    """Numbers at risk at years 0-5 computed independently: at_risk at the first time >= day."""
    times = np.asarray(curve["times_days"], dtype=float)
    out = []
    for year in range(6):
        i = int(np.searchsorted(times, year_day(year), side="left"))
        n = 0 if i == times.size else curve["at_risk"][i]
        out.append(f"<{threshold}" if n is None else f"{n:,}")
    return out


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
    results, out = demo
    frame = pl.read_parquet(out / "tte" / "outcomes.parquet").filter(
        pl.col("outcome") == "adjacent"
    )
    table = risk_table(F.km_figure(results["outcomes"]["adjacent"]["km"], title="", threshold=5))
    for arm, is_treated in (("treated", True), ("untreated", False)):
        durations = frame.filter(pl.col("treated").cast(pl.Boolean) == is_treated)["duration_days"]
        for year, text in enumerate(table[LABELS[arm]]):
            n = int((durations >= year_day(year)).sum())
            assert text == ("<5" if 0 < n < 5 else f"{n:,}"), (arm, year)


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
        [marks] = [t for t in fig.data if t.mode == "markers+text" and t.legendgroup == arm]
        at = o["cif"][arm]["at_years"]
        assert list(marks.text) == [f"{100 * at[y]:.1f} %" for y in ("1", "2", "5")]
    assert risk_table(fig)["Treated"] == expected_risk(o["km"]["treated"], 5)


@pytest.mark.slow
def test_demo_forest_lists_every_model_in_order_with_the_primary_marked(demo: Any) -> None:
    results, _ = demo
    fig = F.forest_figure(results["outcomes"])
    labels = list(fig.layout.yaxis.ticktext)
    assert len(labels) == len(results["outcomes"]) * (1 + len(FOREST_MODELS))
    first = labels[1 : 1 + len(FOREST_MODELS)]
    assert [lab.strip("<b>/").split(" · ")[0] for lab in first] == [m for _, m in FOREST_MODELS]
    fit = results["outcomes"]["adjacent"]["cox"]["time_varying_adjusted"]
    assert (
        first[0]
        == f"<b>Time-varying, adjusted (primary) · n {fit['n']:,} · events {fit['events']:,}</b>"
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
    """A 10-subject curve with a row per distinct duration (events and censorings)."""
    curve = {
        "times_days": [0.0, 100.0, 400.0, 800.0],
        "survival": [1.0, 0.9, 0.75, 0.5],
        "ci_lower": [1.0, 0.6, 0.4, 0.2],
        "ci_upper": [1.0, 0.98, 0.93, 0.8],
        "at_risk": [10, 10, 6, 3],
        "events": [0, 1, 1, 1],
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
    table = risk_table(F.km_figure({"treated": curve}, title="t", threshold=5))
    assert table == {"Treated": ["10", "6", "3", "0", "0", "0"]}


def test_suppressed_counts_show_as_below_threshold_never_zero() -> None:
    hostile = km_curve(at_risk=[None] * 4, events=[None] * 4, censored=[None] * 4)
    fig = F.km_figure({"treated": hostile, "untreated": hostile}, title="t", threshold=10)
    assert risk_table(fig)["Treated"] == ["<10", "<10", "<10", "0", "0", "0"]
    hover = named(fig, "Treated").customdata
    assert all(row[2] == "<10" and row[3] == "<10" for row in hover)
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
    [marks] = [t for t in fig.data if t.mode == "markers+text"]
    assert list(marks.text) == ["10.0 %"]
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


def test_forest_skips_failed_models_and_shows_suppressed_counts() -> None:
    outcome = {
        "cox": {
            "time_varying_adjusted": fit(0.9, events=None),
            "iptw": {"error": "no overlap"},
            "landmark": fit(1.1) | {"hr": None},
            "unadjusted": fit(1.2),
        },
        "fine_gray": fit(1.0),
    }
    fig = F.forest_figure({"adjacent": outcome, SCRIPT: {"cox": {}}}, threshold=5)
    labels = list(fig.layout.yaxis.ticktext)
    assert labels[:4] == [
        "<b>Adjacent-level fracture</b>",
        "<b>Time-varying, adjusted (primary) · n 100 · events <5</b>",
        "Ever-treated, unadjusted (immortal-time) · n 100 · events 20",
        "Fine-Gray (subdistribution) · n 100 · events 20",
    ]
    assert labels[4] == "<b>&lt;script&gt;alert(1)&lt;/script&gt;</b>"
    notes = fig.layout.annotations[-1].text
    assert "IPTW, landmark cohort: no overlap" in notes and "Landmark: no finite estimate" in notes
    assert "<script>alert" not in F.to_div(fig, "forest")


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


def test_binned_histograms_draw_suppressed_bins_at_zero_with_a_below_threshold_hover() -> None:
    hist = {
        "bin_edges": [0.0, 0.25, 0.5, 0.75, 1.0],
        "treated": [None, 10, 20, 0],
        "untreated": [7, None, None, 3],
    }
    fig = F.propensity_figure(hist)
    treated, untreated = fig.data
    assert list(treated.y) == [0, 10, 20, 0] and list(untreated.y) == [7, 0, 0, 3]
    assert treated.text[0] == "0.00-0.25: <5" and untreated.text[3] == "0.75-1.00: 3"
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
    assert "n <5" in points.text[0] and "n 30" in points.text[1]
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
    assert "n 41" in ticks[0] and "n &lt;5" not in ticks[1] and "n <5" in ticks[1]
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
    assert "n <5" in trace.text[0]


def test_quality_bars_show_suppressed_counts_as_below_threshold() -> None:
    fig = F.quality_figure(
        [{"label": "a.csv · bad_date", "count": None}, {"label": SCRIPT, "count": 12}], threshold=5
    )
    [bars] = fig.data
    assert list(bars.x) == [12, 0] and list(bars.text) == ["12", "<5"]
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
        censored=[300] * days,
    )
    fig = F.km_figure({"treated": curve, "untreated": curve}, title="t", threshold=5)
    assert max(len(t.x) for t in fig.data) == days
    assert len(F.to_div(fig, "km-big")) < 450_000
