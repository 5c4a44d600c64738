"""Every figure the report draws from a results.json, in page order, with its div id, title
and section: the one list that the HTML page and `registry figures` share.

The selection (which outcomes get landmark curves, when the data-quality bars or the
imputation plots are drawn, which target-trial outcome has curves) lives in the section
modules' `*_drawn` functions, which the page embeds too. Pure.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import plotly.graph_objects as go

from registry.report import sections as sec
from registry.report.figures.style import FIGURE_IDS
from registry.report.missing_data import missing_data_drawn
from registry.report.target_trial import target_trial_drawn
from registry.result_types import Results

# The report's section anchors (index.html#...) and their headings.
SECTION_TITLES = {
    "target-trial": "2. Target-trial emulation",
    "km": "5. Kaplan–Meier curves",
    "cif": "6. Cumulative incidence with death as a competing risk",
    "hazard-ratios": "7. Hazard ratios",
    "missing-data": "8. Missing data",
    "diagnostics": "9. Diagnostics",
    "pro": "10. Pain and disability",
    "data-quality": "11. Data quality",
}
_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class ReportFigure:
    """One figure of the report: its div id, the section that shows it and the figure."""

    id: str
    section: str
    figure: go.Figure

    @property
    def title(self) -> str:
        """The figure's title as plain text (the caption of FIGURE_IDS if it has none)."""
        text = self.figure.layout.title.text
        return html.unescape(_TAG.sub(" ", text)).strip() if text else FIGURE_IDS.get(self.id, "")

    @property
    def section_title(self) -> str:
        """The heading of the report section that shows the figure."""
        return SECTION_TITLES[self.section]


def report_figures(results: Results) -> list[ReportFigure]:
    """Every figure the report draws from these results, in the order of the page."""
    threshold = results["small_cell_threshold"]
    outcomes = results["outcomes"]
    primary_name = results["study"]["primary_outcome"]
    primary = outcomes.get(primary_name)
    groups: list[tuple[str, list[sec.Drawn]]] = [
        ("target-trial", target_trial_drawn(results, threshold)),
        ("km", [sec.km_drawn(n, o, threshold) for n, o in outcomes.items()]),
        ("km", sec.km_extra_drawn(primary_name, primary, threshold)),
        ("cif", [sec.cif_drawn(n, o, threshold) for n, o in outcomes.items()]),
        ("hazard-ratios", [sec.forest_drawn(outcomes, threshold)]),
        ("missing-data", missing_data_drawn(results)),
        ("diagnostics", sec.diagnostics_drawn(primary, threshold)),
        ("pro", sec.pro_drawn(results["pro"], threshold)),
        ("data-quality", sec.quality_drawn(sec.quality_rows(results), threshold)),
    ]
    return [ReportFigure(div, section, fig) for section, drawn in groups for div, fig in drawn]
