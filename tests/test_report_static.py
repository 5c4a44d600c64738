"""Manuscript figures (registry/report/static.py, `registry figures`): journal styling of a
copy of each report figure, the index, the browser lookup and its errors, and (slow, with
Debian's chromium) every figure of the demo results written as SVG, PDF and PNG."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, NoReturn

import plotly.graph_objects as go
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from registry import pipeline
from registry.cli import main
from registry.errors import FigureExportError
from registry.report import format as fmt
from registry.report import static
from registry.report.figure_list import ReportFigure, report_figures
from registry.report.figures import km_figure, trajectory_figure
from registry.report.figures.survival import at_risk_at, year_day
from registry.report.write import render_report

CHROMIUM = "/usr/bin/chromium"
MIN_PX, MAX_PX = 8 * 96 / 72, 10 * 96 / 72
SVG_NS = "{http://www.w3.org/2000/svg}"


def km_curve(**overrides: Any) -> dict[str, Any]:
    """A small curve followed for six years, as results.json holds it."""
    curve = {
        "times_days": [0.0, 200.0, 500.0, 900.0, 1300.0, 1700.0, 2200.0],
        "survival": [1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7],
        "ci_lower": [1.0, 0.9, 0.8, 0.75, 0.7, 0.6, 0.5],
        "ci_upper": [1.0, 0.99, 0.95, 0.92, 0.9, 0.85, 0.8],
        "at_risk": [120, 110, 90, 70, 40, 20, 8],
        "events": [0, 5, 5, 5, 5, 5, 5],
        "censored_times_days": [0.0],
        "censored": [0],
    }
    return curve | overrides


def km_of(**treated: Any) -> go.Figure:
    return km_figure(
        {"treated": km_curve(**treated), "untreated": km_curve()}, title="KM <b>", threshold=5
    )


def numbers(value: Any) -> list[float]:
    """A size as a list of numbers (plotly takes one size or one per point)."""
    values = value if isinstance(value, list) else [value]
    return [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]


def font_sizes(node: Any, parent: str = "") -> list[float]:
    """Every font size in a figure spec."""
    if isinstance(node, dict):
        own = numbers(node.get("size")) if parent.endswith("font") else []
        return own + [s for k, v in node.items() for s in font_sizes(v, k)]
    if isinstance(node, list):
        return [s for v in node for s in font_sizes(v, parent)]
    return []


# --- journal styling (pure) -------------------------------------------------------------


def test_km_gets_double_column_width_white_background_and_the_journal_font() -> None:
    fig = static.journal_style("km-adjacent", km_of())
    assert fig.layout.width == round(174 / 25.4 * 96) == 658
    assert fig.layout.paper_bgcolor == "white" and fig.layout.plot_bgcolor == "white"
    assert "Arial" in fig.layout.font.family and "Liberation Sans" in fig.layout.font.family
    assert fig.layout.hovermode is False
    assert fig.layout.title.text == "KM &lt;b&gt;"  # kept, still escaped


def test_single_column_figures_are_85_mm_wide() -> None:
    assert static.mm_to_px(static.column_mm("ps-overlap")) == 321
    assert static.column_mm("schoenfeld-treated") == 85
    assert static.column_mm("cif-adjacent") == static.column_mm("forest") == 174


def test_every_text_is_8_to_10_points() -> None:
    fig = static.journal_style("km-adjacent", km_of())
    sizes = font_sizes(fig.to_plotly_json())
    assert sizes and all(MIN_PX - 0.01 <= s <= MAX_PX + 0.01 for s in sizes), sizes
    # plotly.js would draw axis titles at 1.2 times the base size (10.8 pt) if not told
    assert fig.layout.xaxis.title.font.size == fig.layout.yaxis.title.font.size == 12
    assert fig.layout.yaxis2.ticksuffix == "  "  # risk-table row names clear of the counts


@given(
    st.recursive(
        st.one_of(st.integers(0, 80), st.floats(0, 80), st.text(max_size=3)),
        lambda kids: st.one_of(
            st.lists(kids, max_size=3),
            st.dictionaries(st.sampled_from(["font", "textfont", "marker", "size", "x"]), kids),
        ),
        max_leaves=20,
    )
)
def test_clamped_fonts_are_in_range_and_other_sizes_untouched(spec: Any) -> None:
    before = json.loads(json.dumps(spec))
    static.clamp_fonts(spec)
    assert all(MIN_PX - 0.01 <= s <= MAX_PX + 0.01 for s in font_sizes(spec) if s == s)  # not NaN

    def non_font(node: Any, parent: str = "") -> Any:  # the spec with font dicts blanked
        if isinstance(node, dict):
            return {k: None if k.endswith("font") else non_font(v, k) for k, v in node.items()}
        return [non_font(v, parent) for v in node] if isinstance(node, list) else node

    assert json.dumps(non_font(spec)) == json.dumps(non_font(before))


def test_the_risk_table_survives_the_styling_with_withheld_counts() -> None:
    fig = static.journal_style("km-adjacent", km_of(at_risk=[120, 110, 90, 70, None, None, 8]))
    rows = [t for t in fig.data if t.mode == "text"]
    assert [list(t.text) for t in rows] == [
        ["120", "90", "70", fmt.WITHHELD, fmt.WITHHELD, "8", "8"],
        ["120", "90", "70", "40", "20", "8", "8"],
    ]


def test_legend_sits_inside_the_curve_panel() -> None:
    fig = static.journal_style("km-adjacent", km_of())
    low, high = fig.layout.yaxis.domain
    assert 0 <= fig.layout.legend.x <= 1 and low <= fig.layout.legend.y <= high


def test_trajectory_points_show_their_means() -> None:
    rows = [
        {"instrument": "VAS", "arm": arm, "visit": v, "mean": m, "sd": 1.0, "n": 50}
        for arm, means in (("treated", (7.9, 1.3)), ("untreated", (7.3, 4.4)))
        for v, m in zip(("baseline", "1 month"), means, strict=True)
    ]
    fig = static.journal_style(
        "pro-vas-trajectory", trajectory_figure(rows, instrument="VAS", threshold=5)
    )
    assert all("text" in t.mode and t.texttemplate == "%{y:.1f}" for t in fig.data)
    positions = {t.name: t.textposition for t in fig.data}
    assert positions == {"Treated": "bottom center", "Untreated": "top center"}


def test_styling_leaves_the_report_figure_alone() -> None:
    fig = km_of()
    before = fig.to_json()
    static.journal_style("km-adjacent", fig)
    assert fig.to_json() == before


def test_file_names_are_numbered_in_page_order() -> None:
    assert static.file_stem(3, "km-adjacent") == "03_km_adjacent"
    assert static.file_stem(12, "tt-love-same-level") == "12_tt_love_same_level"


def test_index_lists_file_title_caption_width_and_section() -> None:
    item = ReportFigure("km-adjacent", "km", km_of())
    styled = static.StaticFigure("01_km_adjacent", item, static.journal_style(item.id, item.figure))
    text = static.index_markdown([styled], "png")
    row = text.splitlines()[-1]
    assert row == (
        "| 01_km_adjacent.png | KM <b> | Kaplan-Meier: Adjacent-level fracture | 174 mm "
        "| 5. Kaplan–Meier curves (index.html#km) |"
    )
    assert "300 dpi" in text


# --- the browser: lookup, errors, one session ---------------------------------------------


def test_a_browser_path_that_does_not_exist_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BROWSER_PATH", "/nonexistent/chromium")
    with pytest.raises(FigureExportError, match=r"BROWSER_PATH=/nonexistent/chromium .*apt-get"):
        static.find_browser()


def test_no_chromium_anywhere_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BROWSER_PATH", raising=False)
    monkeypatch.setattr(static.shutil, "which", lambda name: None)
    monkeypatch.setattr(static.os, "access", lambda path, mode: False)
    with pytest.raises(FigureExportError) as exc:
        static.find_browser()
    assert "no chromium found" in str(exc.value)
    assert "apt-get install --no-install-recommends chromium" in str(exc.value)


def test_one_browser_session_local_plotly_js_and_no_mathjax(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import kaleido

    sessions: list[dict[str, Any]] = []

    class FakeKaleido:
        def __init__(self, **kwargs: Any) -> None:
            sessions.append(kwargs)

        async def __aenter__(self) -> FakeKaleido:
            return self

        async def __aexit__(self, *args: Any) -> None:
            return None

        async def calc_fig(self, fig: go.Figure, opts: dict[str, Any]) -> bytes:
            return json.dumps(opts).encode()

    monkeypatch.setattr(kaleido, "Kaleido", FakeKaleido)
    item = ReportFigure("ps-overlap", "diagnostics", km_of())
    styled = static.StaticFigure("01_x", item, static.journal_style(item.id, item.figure))
    images = static.render([styled, styled], "png", "/usr/bin/chromium")
    assert len(sessions) == 1  # one browser for every figure
    assert sessions[0]["mathjax"] is False  # MathJax would come from a CDN
    assert Path(sessions[0]["plotlyjs"]).is_file()  # plotly.js from the installed package
    assert json.loads(images[0]) == {
        "format": "png",
        "width": 321,
        "height": styled.height,
        "scale": 300 / 96,
    }


def test_a_browser_that_fails_is_one_error_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import kaleido

    def broken(**kwargs: Any) -> NoReturn:
        raise RuntimeError("Browser closed unexpectedly\nlong trace")

    monkeypatch.setattr(kaleido, "Kaleido", broken)
    item = ReportFigure("forest", "hazard-ratios", km_of())
    styled = static.StaticFigure("01_x", item, item.figure)
    with pytest.raises(FigureExportError, match=r"could not draw .*Browser closed unexpectedly\)"):
        static.render([styled], "svg", "/usr/bin/chromium")


# --- the command's inputs -----------------------------------------------------------------

MINIMAL = {k: {} for k in static.RESULT_KEYS}


def run_cli(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, ["figures", *args], env=env)


def test_cli_without_chromium_exits_1_with_one_error_line(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps(MINIMAL))
    out = tmp_path / "figs"
    run = run_cli("--results", str(results), "--out", str(out),
                  env={"BROWSER_PATH": str(tmp_path / "no-such-chromium")})  # fmt: skip
    assert run.exit_code == 1, run.output
    lines = [line for line in run.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: BROWSER_PATH=")
    assert "Traceback" not in run.output and not out.exists()


def test_cli_checks_chromium_before_analysing_the_registry(tmp_path: Path) -> None:
    # no registry at --db either: the missing browser is named first, before any analysis
    run = run_cli("--db", str(tmp_path / "none.duckdb"), "--out", str(tmp_path / "figs"),
                  "--workers", "1", env={"BROWSER_PATH": str(tmp_path / "no-chromium")})  # fmt: skip
    assert run.exit_code == 1, run.output
    assert run.output.startswith("Error: BROWSER_PATH=") and "no registry" not in run.output


def test_cli_takes_the_runner_options() -> None:
    run = CliRunner().invoke(main, ["figures", "--help"])
    assert run.exit_code == 0 and "--workers" in run.output and "--scheduler" in run.output


def test_cli_missing_or_foreign_results_file_exits_1(tmp_path: Path) -> None:
    run = run_cli("--results", str(tmp_path / "none.json"), "--out", str(tmp_path / "o"))
    assert run.exit_code == 1 and "Error: no results file at" in run.output
    (tmp_path / "other.json").write_text('{"rows": [1, 2]}')
    run = run_cli("--results", str(tmp_path / "other.json"), "--out", str(tmp_path / "o"))
    assert run.exit_code == 1 and "is not a registry results.json" in run.output
    (tmp_path / "broken.json").write_text('{"study": ')
    run = run_cli("--results", str(tmp_path / "broken.json"), "--out", str(tmp_path / "o"))
    assert run.exit_code == 1 and "cannot read" in run.output


def test_cli_results_of_another_shape_exit_1_without_a_traceback(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps(MINIMAL))  # the keys are there, their content is not
    run = run_cli("--results", str(results), "--out", str(tmp_path / "o"),
                  env={"BROWSER_PATH": "/bin/true"})  # fmt: skip
    assert run.exit_code == 1, run.output
    assert run.output.startswith("Error: cannot draw the figures of") and "Traceback" not in (
        run.output
    )


def test_cli_results_with_db_is_a_usage_error(tmp_path: Path) -> None:
    run = run_cli("--results", "r.json", "--db", "x.duckdb", "--out", str(tmp_path))
    assert run.exit_code == 2 and "leave out --db and --study" in run.output


def test_cli_has_help_naming_the_formats() -> None:
    run = CliRunner().invoke(main, ["figures", "--help"])
    assert run.exit_code == 0 and "svg|pdf|png" in run.output and "--results" in run.output


# --- with Debian's chromium: every figure of the demo, in every format (slow) -------------


def _unavailable(reason: str) -> NoReturn:
    """Fail in CI (a missing browser there is a broken CI), skip on a developer machine."""
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{reason}; .ci/run installs chromium (apt-get install chromium)")
    pytest.skip(f"{reason}; install it with: sudo apt-get install --no-install-recommends chromium")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's output folder (registry.duckdb, results.json), built once."""
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"no chromium at {CHROMIUM}")
    out = tmp_path_factory.mktemp("static-demo")
    pipeline.run_demo(out, patients=1700, seed=20260101, as_of=dt.date(2026, 1, 1),
                      console=Console(quiet=True), built_at=dt.datetime(2026, 1, 2))  # fmt: skip
    return out


@pytest.fixture(scope="module")
def results(demo: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((demo / "results.json").read_text(encoding="utf-8"))
    return loaded


def expected_files(results: dict[str, Any], ext: str) -> list[str]:
    items = report_figures(results)  # type: ignore[arg-type]
    return [f"{static.file_stem(i, f.id)}.{ext}" for i, f in enumerate(items, start=1)]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def svg_texts(path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    return ["".join(t.itertext()) for t in root.iter(f"{SVG_NS}text")]


@pytest.mark.slow
def test_the_figures_are_the_ones_the_page_draws(results: dict[str, Any]) -> None:
    page = render_report(results, built_at=dt.datetime(2026, 1, 2))  # type: ignore[arg-type]
    drawn = re.findall(r'<div id="([a-z0-9-]+)" class="plotly-graph-div"', page)
    assert [f.id for f in report_figures(results)] == drawn  # type: ignore[arg-type]
    assert len(drawn) >= 20


@pytest.mark.slow
@pytest.mark.parametrize("ext", ["svg", "pdf", "png"])
def test_every_report_figure_is_written_in_each_format(
    results: dict[str, Any], demo: Path, tmp_path: Path, ext: str
) -> None:
    out = tmp_path / ext
    run = run_cli("--results", str(demo / "results.json"), "--out", str(out), "--format", ext)
    assert run.exit_code == 0, run.output
    files = expected_files(results, ext)
    assert sorted(p.name for p in out.iterdir()) == sorted([*files, "figures.md"])
    index = (out / "figures.md").read_text(encoding="utf-8")
    assert all(f"| {name} |" in index for name in files)
    assert f"Wrote {len(files)} figures" in run.output
    styled = {f"{s.file_stem}.{ext}": s for s in static.static_figures(results)}  # type: ignore[arg-type]
    for name in files:
        data = (out / name).read_bytes()
        width_mm = static.column_mm(styled[name].source.id)
        if ext == "svg":
            root = ET.fromstring(data)
            assert root.tag == f"{SVG_NS}svg" and root.get("width") == str(
                static.mm_to_px(width_mm)
            )
        elif ext == "pdf":
            assert data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:]
        else:
            width, height = png_size(data)
            assert abs(width - width_mm / 25.4 * 300) <= 2, (name, width)  # 300 dpi
            assert abs(height - styled[name].height * 300 / 96) <= 2, (name, height)


@pytest.mark.slow
def test_km_and_cif_svgs_hold_the_numbers_at_risk(results: dict[str, Any], demo: Path,
                                                   tmp_path: Path) -> None:  # fmt: skip
    run = run_cli("--results", str(demo / "results.json"), "--out", str(tmp_path))
    assert run.exit_code == 0, run.output
    threshold = results["small_cell_threshold"]
    km = results["outcomes"]["adjacent"]["km"]
    expected = [
        fmt.count(at_risk_at(km[arm], year_day(y)), threshold)
        for arm in ("treated", "untreated")
        for y in range(6)
        if year_day(y) <= km[arm]["times_days"][-1]
    ]
    for name in ("km_adjacent", "cif_adjacent"):
        (path,) = tmp_path.glob(f"*_{name}.svg")
        texts = svg_texts(path)
        assert "Number at risk" in texts
        assert all(value in texts for value in expected), (name, expected)


@pytest.mark.slow
def test_withheld_counts_stay_withheld_in_the_svg(results: dict[str, Any], tmp_path: Path) -> None:
    outcome = results["outcomes"]["adjacent"]
    curve = outcome["km"]["treated"]
    late = [None if t >= year_day(4) else n for t, n in zip(curve["times_days"],
                                                               curve["at_risk"], strict=True)]  # fmt: skip
    curves = {**outcome["km"], "treated": {**curve, "at_risk": late}}
    item = ReportFigure("km-adjacent", "km", km_figure(curves, title="KM", threshold=5))
    styled = static.StaticFigure("01_km", item, static.journal_style(item.id, item.figure))
    (svg,) = static.render([styled], "svg", static.find_browser())
    path = tmp_path / "km.svg"
    path.write_bytes(svg)
    texts = svg_texts(path)
    assert texts.count(fmt.WITHHELD) == 2  # years 4 and 5 of the treated row, as on the page


@pytest.mark.slow
def test_cli_draws_from_the_registry_like_report(demo: Path, results: dict[str, Any],
                                                 tmp_path: Path) -> None:  # fmt: skip
    run = run_cli("--db", str(demo / "registry.duckdb"), "--out", str(tmp_path),
                  "--as-of", "2026-01-01")  # fmt: skip
    assert run.exit_code == 0, run.output
    assert sorted(p.name for p in tmp_path.glob("*.svg")) == sorted(expected_files(results, "svg"))
