"""Competing risks without jitter: Aalen–Johansen cumulative incidence, Gray's test and the
Fine–Gray model in NumPy, matching R's cmprsk 2.2-11 (cuminc, timepoints, crr).

Data convention: `time` in days (> 0); `status` 0 censored, 1 the event of interest, 2 (any
other positive code) a competing event such as death. Every estimator is a sort plus
cumulative sums over distinct times, so tied times are handled exactly (lifelines'
AalenJohansenFitter jitters them at random) and a million subjects take seconds (R's crr is
quadratic in n). Golden values: tests/reference/competing_reference.R.

Modules: common (validated inputs, cumulative sums), aalen_johansen (cumulative_incidence),
gray (gray_test), fine_gray (fit_fine_gray).
"""

from registry.models.competing.aalen_johansen import (
    Z95,
    CumulativeIncidence,
    cumulative_incidence,
)
from registry.models.competing.fine_gray import FineGrayFit, fit_fine_gray
from registry.models.competing.gray import gray_test

__all__ = [
    "Z95",
    "CumulativeIncidence",
    "FineGrayFit",
    "cumulative_incidence",
    "fit_fine_gray",
    "gray_test",
]
