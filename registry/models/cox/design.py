"""The sorted-once design: rows ordered by the last tied-event group (stratum, time) they are
at risk for, so that every risk-set sum of [1, x] is a binned row-sum plus a reverse
cumulative sum. Second moments are never stored per row (see derivs.information)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from registry.models.cox.inputs import codes


@dataclass(frozen=True, eq=False)
class _Bins:
    """Rows grouped into contiguous bins: a sparse row-sum operator over a copy of z."""

    perm: np.ndarray | None  # rows of the design in bin order (None: already in order)
    z: np.ndarray  # [1, x] in bin order
    indptr: np.ndarray  # bin k holds rows indptr[k]:indptr[k+1]

    def sums(self, wr: np.ndarray) -> np.ndarray:
        """Sum of wr * [1, x] within every bin, in one sequential pass over z."""
        data = wr if self.perm is None else wr[self.perm]
        shape = (self.indptr.size - 1, data.size)
        return sparse.csr_matrix((data, np.arange(data.size), self.indptr), shape) @ self.z


@dataclass(frozen=True, eq=False)
class Design:
    """Rows sorted once by (stratum, stop), events first among ties; shared by Newton steps."""

    order: np.ndarray  # original row index of each sorted row
    x: np.ndarray  # covariates, column-centred (n, p)
    ev_z: np.ndarray  # [1, x] of the events, in ev_pos order
    w: np.ndarray  # case weights
    a: np.ndarray  # a row is at risk for the event groups b <= g < a
    b: np.ndarray
    exits: _Bins  # rows binned by a (contiguous after the sort)
    entries: _Bins | None  # rows binned by b; None without delayed entry or strata
    ev_pos: np.ndarray  # positions of the events, in group order
    ev_group: np.ndarray  # event group of each event
    frac: np.ndarray  # Efron fraction k/d of each event within its group
    d: np.ndarray  # events per group
    mean_wt: np.ndarray  # mean case weight of the events of each group (R's meanwt)
    ev_wx: np.ndarray  # (G, p) sum of w x over the events of each group
    group_time: np.ndarray  # event time of each group
    stop: np.ndarray
    start: np.ndarray | None
    event: np.ndarray  # bool
    stratum: np.ndarray  # stratum code of each sorted row (0 without strata)

    @property
    def n_groups(self) -> int:
        """Number of distinct (stratum, event time) groups."""
        return int(self.d.size)


def build_design(
    stop: np.ndarray,
    event: np.ndarray,
    x: np.ndarray,
    start: np.ndarray | None,
    w: np.ndarray,
    strata: Any,
) -> Design:
    """Map each row to the event groups it is at risk for; sort once by that group index."""
    return assemble(build_layout(stop, event, start, strata), x, w)


@dataclass(frozen=True, eq=False)
class Layout:
    """The part of a Design that does not depend on the covariates or the weights: the sort,
    the event groups and the bins. Built once, it serves every set of covariate columns of
    the same rows (the completed datasets of multiple imputation, see `assemble`)."""

    order: np.ndarray
    a: np.ndarray  # sorted, as Design's
    b: np.ndarray
    exit_perm: np.ndarray | None  # _Bins.perm of the exit bins
    exit_indptr: np.ndarray
    entry_perm: np.ndarray | None  # None: no entry bins (see _entry_bins)
    entry_indptr: np.ndarray | None
    ev_pos: np.ndarray
    ev_group: np.ndarray
    frac: np.ndarray
    d: np.ndarray
    group_time: np.ndarray
    stop: np.ndarray
    start: np.ndarray | None
    event: np.ndarray
    stratum: np.ndarray  # sorted

    @property
    def n_rows(self) -> int:
        """Rows of the design."""
        return int(self.order.size)


def build_layout(
    stop: np.ndarray, event: np.ndarray, start: np.ndarray | None, strata: Any
) -> Layout:
    """The sort by event group (events first in each bin), the groups and the bins."""
    a, b, group_time = _group_index(stop, event, start, strata)
    stratum = np.zeros(stop.size, dtype=np.int64) if strata is None else codes(strata)
    g = group_time.size
    order = _stable_order(2 * a + ~event, 2 * g + 2)  # by group, events first in each bin
    ev, a, b = event[order], a[order], b[order]
    ev_pos = np.flatnonzero(ev)
    ev_group = a[ev_pos] - 1
    d = np.bincount(ev_group, minlength=g)
    rank = np.arange(ev_pos.size) - (np.cumsum(d) - d)[ev_group]
    exit_perm, exit_indptr = _bin_order(a, g + 1)
    entry_perm, entry_indptr = _entry_order(b, g + 1)
    return Layout(
        order, a, b, exit_perm, exit_indptr, entry_perm, entry_indptr, ev_pos, ev_group,
        rank / d[ev_group], d, group_time, stop, start, event, stratum[order],
    )  # fmt: skip


def assemble(layout: Layout, x: np.ndarray, w: np.ndarray) -> Design:
    """The Design of these covariates (n, p) and case weights (n) on a layout's rows (both in
    the rows' original order): what build_design gives, without sorting again."""
    order, ev_pos, ev_group = layout.order, layout.ev_pos, layout.ev_group
    g = layout.d.size
    w = w[order]
    # z = [1, x in sorted order, centred], gathered a column at a time; the design's x is its
    # view z[:, 1:], not a second copy of the sorted covariates (at ten million rows a
    # copy is 8 bytes per row and covariate)
    z = np.empty((x.shape[0], x.shape[1] + 1))
    z[:, 0] = 1.0
    for j in range(x.shape[1]):
        np.take(x[:, j], order, out=z[:, j + 1], mode="clip")  # order is in range
    xc = z[:, 1:]
    xc -= xc.mean(axis=0) if xc.shape[0] else 0.0
    exits = _Bins(layout.exit_perm, z if layout.exit_perm is None else z[layout.exit_perm],
                  layout.exit_indptr)  # fmt: skip
    entries = None
    if layout.entry_perm is not None and layout.entry_indptr is not None:
        entries = _Bins(layout.entry_perm, z[layout.entry_perm], layout.entry_indptr)
    return Design(
        order, xc, z[ev_pos], w, layout.a, layout.b, exits, entries, ev_pos, ev_group,
        layout.frac, layout.d, np.bincount(ev_group, w[ev_pos], g) / layout.d,
        by_group(ev_group, w[ev_pos, None] * xc[ev_pos], g), layout.group_time, layout.stop,
        layout.start, layout.event, layout.stratum,
    )  # fmt: skip


def with_ones(x: np.ndarray) -> np.ndarray:
    """[1, x]: the columns whose weighted risk-set sums give the loglik and score."""
    return np.column_stack([np.ones(x.shape[0]), x])


def _group_index(
    stop: np.ndarray, event: np.ndarray, start: np.ndarray | None, strata: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Number of event groups (stratum, time) up to each row's stop (a) and start (b)."""
    ut = np.unique(stop[event])
    ka = np.searchsorted(ut, stop, side="right")
    kb = np.zeros_like(ka) if start is None else np.searchsorted(ut, start, side="right")
    if strata is None:  # every event time is a group
        return ka, kb, ut
    base = codes(strata).astype(np.int64) * (ut.size + 1)
    # Group key s*(K+1) + k + 1 for event time ut[k]; a row's key counts groups <= its time.
    gkeys = np.unique(base[event] + ka[event])
    a = np.searchsorted(gkeys, base + ka, side="right")
    b = np.searchsorted(gkeys, base + kb, side="right")
    return a, b, ut[(gkeys % (ut.size + 1)) - 1]


def _stable_order(key: np.ndarray, bound: int) -> np.ndarray:
    """Stable argsort of non-negative integer keys below bound (radix sort when they fit)."""
    dtype = np.uint16 if bound <= 2**16 else np.int64
    return np.argsort(key.astype(dtype), kind="stable")


def _bin_order(key: np.ndarray, n_bins: int) -> tuple[np.ndarray | None, np.ndarray]:
    """Bin rows by an integer key: the rows in key order (None when already sorted, so z is
    not copied) and the bins' bounds."""
    indptr = np.concatenate([[0], np.cumsum(np.bincount(key, minlength=n_bins))])
    if key.size < 2 or np.all(key[1:] >= key[:-1]):
        return None, indptr
    return _stable_order(key, n_bins), indptr


def _entry_order(b: np.ndarray, n_bins: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Rows binned by b, the groups before their entry; None when every row enters at the
    start. Rows with b = 0 fall in bin 0, which no risk set uses, so they are left out."""
    late = np.flatnonzero(b)
    if late.size == 0:
        return None, None
    perm = late[_stable_order(b[late], n_bins)]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(b[perm], minlength=n_bins))])
    return perm, indptr


def by_group(group: np.ndarray, v: np.ndarray, g: int) -> np.ndarray:
    """Sum the rows of v within groups (G, m)."""
    cols = [np.bincount(group, v[:, j], g) for j in range(v.shape[1])]
    return np.column_stack(cols) if cols else np.zeros((g, 0))
