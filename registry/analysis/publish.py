"""What a curve publishes: step functions redrawn from rounded counts, so that no step, no
number at risk and no censoring mark gives back a count below the small-cell threshold. Pure.

The estimators stay exact (models/km.py, models/competing/); only the drawn curves change.
The rule is OpenSAFELY's `round_km` (kaplan-meier-function): the cumulative counts of events
and of censorings (and, for cumulative incidence, of competing events) are rounded *up* to a
multiple of the threshold k; the per-day counts are their differences (0 or a multiple of
k), the numbers at risk the rounded total minus the rounded exits before each day, and the
curve and its CI are refitted from those counts (as frequency weights, so the estimators are
the very ones the models use). Every published step then carries at least k events, every
published number at risk is a multiple of k, and n x (1 - S/S-) at a step gives the rounded
count, never the true one.
"""

from __future__ import annotations

import numpy as np

from registry.models import competing, km

Floats = np.ndarray


def ceil_to(values: Floats, k: int) -> Floats:
    """Round up to a multiple of k (weighted sums first to whole numbers)."""
    whole = np.rint(np.asarray(values, dtype=float))
    return np.ceil(whole / k) * k


def rounded_increments(counts: Floats, k: int) -> Floats:
    """Per-row counts whose running total is the true running total rounded up to k."""
    total = ceil_to(np.cumsum(counts), k)
    return np.diff(np.concatenate([[0.0], total]))


def pseudo_rows(times: Floats, kinds: list[Floats]) -> tuple[Floats, Floats, Floats]:
    """One row per (time, kind) with a positive count: time, kind code (0 = censored,
    1, 2 = the event kinds in order after it) and the count as a frequency weight."""
    t = np.concatenate([times] * len(kinds))
    code = np.concatenate([np.full(times.size, i, dtype=float) for i in range(len(kinds))])
    w = np.concatenate(kinds)
    keep = w > 0
    return t[keep], code[keep], w[keep]


def published_km(fit: km.KaplanMeier, k: int) -> km.KaplanMeier:
    """The Kaplan-Meier curve refitted from rounded cumulative events and censorings."""
    events = rounded_increments(fit.events, k)
    censored = rounded_increments(fit.censored, k)
    t, code, w = pseudo_rows(fit.times, [censored, events])
    if w.size == 0:
        return fit
    return km.fit_km(t, code == 1, weights=w)


def published_cif(
    duration: Floats, status: Floats, cause: int, k: int
) -> competing.CumulativeIncidence:
    """Aalen-Johansen cumulative incidence refitted from rounded cumulative counts of the
    cause, of the competing event and of censorings."""
    times, row = np.unique(duration, return_inverse=True)
    own = np.bincount(row, status == cause, times.size).astype(float)
    other = np.bincount(row, (status != cause) & (status != 0), times.size).astype(float)
    censored = np.bincount(row, status == 0, times.size).astype(float)
    kinds = [rounded_increments(c, k) for c in (censored, own, other)]
    t, code, w = pseudo_rows(times, kinds)
    # code 1 is the cause, 2 the competing event: the status the estimator expects
    return competing.cumulative_incidence(t, code.astype(int), cause=1, weights=w)


def withheld_years(event_days: Floats, weights: Floats, years_days: tuple[int, ...], k: int
                   ) -> list[bool]:  # fmt: skip
    """Which values at 1-5 years to withhold: going through the years, a value is withheld
    when fewer than k (but some) events happened since the last value shown, since with n
    and no censoring S(y) = 1 - E(y) / n gives E(y) back (and S(y2) / S(y1) the events in
    between)."""
    shown_events, out = 0.0, []
    for day in years_days:
        events = float(np.rint(weights[event_days <= day].sum()))
        small = 0 < events - shown_events < k
        out.append(small)
        if not small:
            shown_events = events
    return out
