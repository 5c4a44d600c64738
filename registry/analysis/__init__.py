"""The analysis stage: time-to-event frames -> every model of the study, as plain results.

Pure: frames in, a JSON-ready dict out (numbers, lists, None). Each model that cannot be
fitted (no events in an arm, a constant covariate) is reported with its reason instead of
stopping the others.
"""

from __future__ import annotations

from registry.analysis.common import guarded, wald
from registry.analysis.hazards import fit_fixed, fit_iptw, fit_time_varying
from registry.analysis.outcome import analyse_outcome

__all__ = [
    "analyse_outcome",
    "fit_fixed",
    "fit_iptw",
    "fit_time_varying",
    "guarded",
    "wald",
]
