"""Manuscript figures: the report's figures restyled for a journal and written as static
SVG, PDF or PNG files through plotly's static export (kaleido driving a local chromium).

Styling is pure (a styled copy of each figure; the report's own figure is left as it is);
`render` is the only function that starts a browser, once for all the figures.
"""

from __future__ import annotations

import asyncio
import html
import json
import math
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import plotly
import plotly.graph_objects as go

from registry.errors import FigureExportError, RegistryError
from registry.report.figure_list import ReportFigure, report_figures
from registry.report.figures.style import FIGURE_IDS, TEMPLATE
from registry.report.write import write_together
from registry.result_types import Results

FORMATS = ("svg", "pdf", "png")
FONT = "Arial, Helvetica, 'Liberation Sans', 'DejaVu Sans', sans-serif"
CSS_DPI = 96  # plotly's sizes are CSS pixels: 96 to the inch
PNG_DPI = 300
PX_PER_PT = CSS_DPI / 72
SINGLE_MM, DOUBLE_MM = 85.0, 174.0  # journal column widths
TEXT_PT = 9.0  # body text; every text of a figure is kept within MIN_PT..MAX_PT
MIN_PT, MAX_PT = 8.0, 10.0
TITLE_PT = 10.0
# Figures read at a single column's width (one panel, short labels); every other one
# (curves above a risk table, the forest and love plots' labelled rows, box plots with the n
# of each arm under each visit, the imputation diagnostics' panels) needs two.
SINGLE_COLUMN = ("ps-overlap", "weights", "schoenfeld-", "pro-vas-trajectory", "pro-odi-trajectory")
HEIGHT_SHARE = {SINGLE_MM: 0.7, DOUBLE_MM: 0.8}  # of the report's plot-area height
RESULT_KEYS = ("study", "small_cell_threshold", "outcomes", "cohort", "pro", "data_quality")
LEGEND_BG = "rgba(255,255,255,0.85)"
BROWSER_HINT = (
    "install Debian's chromium (sudo apt-get install --no-install-recommends chromium) "
    "or set BROWSER_PATH to a Chromium or Chrome executable"
)


@dataclass(frozen=True)
class StaticFigure:
    """A report figure styled for print, with the file name it is written under."""

    file_stem: str
    source: ReportFigure
    figure: go.Figure

    @property
    def width(self) -> int:
        """Width in CSS pixels."""
        return int(self.figure.layout.width)

    @property
    def height(self) -> int:
        """Height in CSS pixels."""
        return int(self.figure.layout.height)


def column_mm(fig_id: str) -> float:
    """The printed width of a figure: a single or a double journal column."""
    return SINGLE_MM if fig_id.startswith(SINGLE_COLUMN) else DOUBLE_MM


def mm_to_px(mm: float) -> int:
    """Millimetres as CSS pixels (96 to the inch)."""
    return round(mm / 25.4 * CSS_DPI)


def pt_to_px(pt: float) -> float:
    """Typographic points as CSS pixels."""
    return round(pt * PX_PER_PT, 2)


def png_scale() -> float:
    """The PNG scale factor that gives PNG_DPI at the printed width."""
    return PNG_DPI / CSS_DPI


def file_stem(position: int, fig_id: str) -> str:
    """A stable, readable file name: '03_km_adjacent' for the third figure of the page."""
    return f"{position:02d}_{fig_id.replace('-', '_')}"


def static_figures(results: Results) -> list[StaticFigure]:
    """Every report figure of these results, styled for a journal, in page order."""
    return [
        StaticFigure(file_stem(i, item.id), item, journal_style(item.id, item.figure))
        for i, item in enumerate(report_figures(results), start=1)
    ]


def journal_style(fig_id: str, figure: go.Figure) -> go.Figure:
    """A copy of a report figure for print: white, sans-serif at 8-10 pt, a journal column
    wide, the legend inside the plot, no hover (what it showed is on the figure)."""
    spec = figure.to_plotly_json()
    clamp_fonts(spec)
    fig = go.Figure(spec)
    mm = column_mm(fig_id)
    width = mm_to_px(mm)
    title_lines = wrap_title(fig.layout.title.text or "", width)
    top = 14 + round(pt_to_px(TITLE_PT) * 1.3) * max(1, len(title_lines.split("<br>")))
    old_top, bottom = margin_of(fig, "t"), margin_of(fig, "b")
    plot_height = (int(fig.layout.height) - old_top - bottom) * HEIGHT_SHARE[mm]
    fig.update_layout(
        width=width,
        height=round(top + plot_height + bottom),
        font={"family": FONT, "size": pt_to_px(TEXT_PT), "color": "black"},
        title={"text": title_lines, "font": {"size": pt_to_px(TITLE_PT)}, "x": 0.01},
        paper_bgcolor="white",
        plot_bgcolor="white",
        hovermode=False,
        margin={"t": top, "l": min(margin_of(fig, "l"), 60)},
    )
    # plotly.js draws axis titles 1.2 times the base font unless told: keep them at 9 pt
    fig.update_xaxes(title_font_size=pt_to_px(TEXT_PT))
    fig.update_yaxes(title_font_size=pt_to_px(TEXT_PT))
    if (spec["layout"].get("yaxis2") or {}).get("categoryarray"):  # a risk table: keep the
        fig.update_layout(yaxis2_ticksuffix="  ")  # row names clear of the first year's count
    place_legend(fig, fig_id)
    if fig_id.endswith("-trajectory"):
        label_means(fig)
    return fig


def label_means(fig: go.Figure) -> None:
    """Write each visit's mean beside its point (the page showed it on hover): above the
    points of the arm that is higher on average, below those of the others."""
    levels = [average(trace.y) for trace in fig.data]
    for trace, level in zip(fig.data, levels, strict=True):
        trace.update(
            mode="lines+markers+text",
            text=None,
            texttemplate="%{y:.1f}",
            textposition="top center" if level == max(levels) else "bottom center",
            textfont={"size": pt_to_px(MIN_PT), "color": trace.line.color},
        )


def margin_of(fig: go.Figure, side: str) -> int:
    """A margin of the figure in pixels: its own, else the report template's."""
    value = fig.layout.margin[side]
    return int(TEMPLATE.layout.margin[side] if value is None else value)


def clamp_fonts(node: Any, parent: str = "") -> None:
    """Every font of a figure spec in MIN_PT..MAX_PT and the journal family, in place."""
    if isinstance(node, dict):
        if parent.endswith("font"):
            size = node.get("size")
            if isinstance(size, list):  # one size per point
                node["size"] = [clamp_size(v) for v in size]
            elif size is not None:
                node["size"] = clamp_size(size)
            if "family" in node:
                node["family"] = FONT
        for key, value in node.items():
            clamp_fonts(value, key)
    elif isinstance(node, list):
        for value in node:
            clamp_fonts(value, parent)


def clamp_size(size: Any) -> Any:
    """A font size in pixels moved into MIN_PT..MAX_PT; anything but a number as it is."""
    if isinstance(size, bool) or not isinstance(size, int | float) or size != size:
        return size
    return min(max(size, pt_to_px(MIN_PT)), pt_to_px(MAX_PT))


def wrap_title(text: str, width_px: int) -> str:
    """A title broken into lines that fit the figure's width (plotly does not wrap)."""
    per_line = max(20, int(width_px / (pt_to_px(TITLE_PT) * 0.55)))
    words, lines, line = text.split(" "), [], ""
    for word in words:
        if line and len(html.unescape(line + " " + word)) > per_line:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "<br>".join([*lines, line]) if line else "<br>".join(lines)


def place_legend(fig: go.Figure, fig_id: str) -> None:
    """The legend inside the plot, where the curves leave room: lower left under falling
    survival curves, upper left over rising cumulative incidence, else upper right."""
    top_domain = fig.layout.yaxis.domain or (0.0, 1.0)
    if fig_id.startswith(("km-", "love", "tt-love-")):
        where = {"x": 0.99 if "love" in fig_id else 0.01, "y": top_domain[0] + 0.02}
        where |= {"xanchor": "right" if "love" in fig_id else "left", "yanchor": "bottom"}
    elif fig_id.startswith(("cif-", "tt-")) and not fig_id.startswith("tt-love-"):
        where = {"x": 0.01, "xanchor": "left", "y": top_domain[1] - 0.01, "yanchor": "top"}
    else:
        where = {"x": 0.99, "xanchor": "right", "y": top_domain[1] - 0.01, "yanchor": "top"}
    fig.update_layout(
        legend={
            **where,
            "orientation": "v",
            "bgcolor": LEGEND_BG,
            "font": {"size": pt_to_px(MIN_PT)},
        }
    )


def average(values: Sequence[float | None] | None) -> float:
    """The mean of the values that are not missing (0 when none are)."""
    known = [v for v in values or () if v is not None]
    return sum(known) / len(known) if known else 0.0


def find_browser() -> str:
    """The chromium kaleido drives: BROWSER_PATH (choreographer's own setting) if set, else
    chromium on the PATH or at /usr/bin/chromium; never a download."""
    named = os.environ.get("BROWSER_PATH")
    if named:
        if os.path.isfile(named) and os.access(named, os.X_OK):
            return named
        raise FigureExportError(
            f"BROWSER_PATH={named} is not an executable file, so the static figures cannot be "
            "drawn; point it at a Chromium or Chrome executable, or unset it and install "
            "Debian's chromium (sudo apt-get install --no-install-recommends chromium)"
        )
    for candidate in (
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        "/usr/bin/chromium",
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise FigureExportError(f"no chromium found to draw the static figures; {BROWSER_HINT}")


def render(figures: Sequence[StaticFigure], fmt: str, browser: str) -> list[bytes]:
    """Each figure as an image in `fmt`, from one chromium session (the local plotly.js, no
    MathJax: nothing is fetched from the network)."""
    import kaleido

    plotly_js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    scale = png_scale() if fmt == "png" else 1

    async def run() -> list[bytes]:
        out = []
        async with kaleido.Kaleido(path=browser, plotlyjs=plotly_js, mathjax=False) as k:
            for item in figures:
                opts = {"format": fmt, "width": item.width, "height": item.height, "scale": scale}
                out.append(await k.calc_fig(item.figure, opts=opts))
        return out

    try:
        return asyncio.run(run())
    except Exception as exc:  # the browser failed to start or to draw: one clear line
        raise FigureExportError(
            f"chromium at {browser} could not draw the figures ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no message'}); check that it starts "
            f"with: {browser} --headless --version"
        ) from exc


def index_markdown(figures: Sequence[StaticFigure], fmt: str) -> str:
    """figures.md: one row per file with its title, caption and the report section."""
    lines = [
        "# Manuscript figures",
        "",
        "Drawn from results.json with small counts withheld as in the report. Widths: "
        f"{SINGLE_MM:.0f} mm (single column) or {DOUBLE_MM:.0f} mm (double column)"
        + (f"; PNG at {PNG_DPI} dpi." if fmt == "png" else "."),
        "",
        "| file | title | caption | width | report section |",
        "|---|---|---|---|---|",
    ]
    for item in figures:
        cells = [
            f"{item.file_stem}.{fmt}",
            item.source.title,
            FIGURE_IDS.get(item.source.id, item.source.title),
            f"{column_mm(item.source.id):.0f} mm",
            f"{item.source.section_title} (index.html#{item.source.section})",
        ]
        lines.append("| " + " | ".join(md_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def md_cell(text: str) -> str:
    """A markdown table cell: pipes escaped, on one line."""
    return re.sub(r"\s+", " ", text).replace("|", "\\|").strip()


def write_figures(
    results: Results, out_dir: Path, fmt: str, *, source: str = "the results"
) -> list[tuple[Path, str]]:
    """Write every report figure as out_dir/NN_<id>.<fmt> and the index figures.md, all or
    none; return (file, title) of each, the index last. `source` names the results in
    messages."""
    if fmt not in FORMATS:
        raise FigureExportError(f"unknown figure format {fmt!r}; use one of {', '.join(FORMATS)}")
    browser = find_browser()
    figures = draw_results(results, source)
    images = render(figures, fmt, browser)
    paths = [out_dir / f"{item.file_stem}.{fmt}" for item in figures]
    index = out_dir / "figures.md"
    write_together([*zip(paths, images, strict=True), (index, index_markdown(figures, fmt))])
    return [*((p, f.source.title) for p, f in zip(paths, figures, strict=True)), (index, "index")]


def load_results(path: Path) -> Results:
    """A results.json written by `registry analyze` or `registry report`, checked for the
    parts the figures are drawn from."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegistryError(
            f"no results file at {path}; write one with: registry analyze --out DIR"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RegistryError(f"cannot read {path} as results.json: {exc}") from None
    missing = [k for k in RESULT_KEYS if not isinstance(data, dict) or k not in data]
    if missing:
        raise RegistryError(
            f"{path} is not a registry results.json (no {', '.join(missing)}); "
            "write one with: registry analyze --out DIR"
        )
    return cast(Results, data)


def draw_results(results: Results, source: str) -> list[StaticFigure]:
    """static_figures, with a results file that does not have the expected shape reported
    as one line rather than a traceback."""
    try:
        return static_figures(results)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise RegistryError(
            f"cannot draw the figures of {source}: {type(exc).__name__} {exc}; it may come "
            "from another version of the registry: rebuild it with registry analyze"
        ) from None


def pixel_size(fig: StaticFigure) -> tuple[int, int]:
    """The PNG size in pixels of a figure at PNG_DPI."""
    return math.floor(fig.width * png_scale()), math.floor(fig.height * png_scale())
