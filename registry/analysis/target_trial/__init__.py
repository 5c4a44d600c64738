"""Target-trial emulation by clone–censor–weight: clones, censoring weights, weighted risks.

Pure functions over the time-to-event frames; a cohort the design cannot answer gives a
`NotEstimable` with its reason, never a number.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NotEstimable:
    """Why the target trial gives no number for this cohort."""

    reason: str
