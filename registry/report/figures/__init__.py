"""Report figures: pure functions from a results.json section to a plotly Figure.

Every function takes plain dicts and lists as results.json holds them (small counts already
None, shown as "<threshold"; failed models as {"error": ...}, skipped with a note) and
returns a `plotly.graph_objects.Figure` in the report's look; `to_div` embeds one with a
fixed div id so that the same results give byte-identical HTML.
"""

from registry.report.figures.cif import cif_figure
from registry.report.figures.models import (
    forest_figure,
    love_plot,
    propensity_figure,
    schoenfeld_figure,
    weights_figure,
)
from registry.report.figures.pro import pro_box_figure, quality_figure, trajectory_figure
from registry.report.figures.style import ARM_COLOURS, FIGURE_IDS, div_id, to_div
from registry.report.figures.survival import at_risk_at, km_figure

__all__ = [
    "ARM_COLOURS",
    "FIGURE_IDS",
    "at_risk_at",
    "cif_figure",
    "div_id",
    "forest_figure",
    "km_figure",
    "love_plot",
    "pro_box_figure",
    "propensity_figure",
    "quality_figure",
    "schoenfeld_figure",
    "to_div",
    "trajectory_figure",
    "weights_figure",
]
