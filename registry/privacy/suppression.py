"""Complementary small-cell suppression: no count 1..k-1 can be worked back from results.json.

A *cell* is one count, published at one or more places of results.json (the cohort size
is cohort.n, outcomes.<name>.n and the n of every model fitted on the whole cohort). A
*relation* says total = sum of parts (the flow: remaining before = excluded + remaining
after; an arm = its patients with a value + those missing it; ...). Some cells are never
published (*virtual*: the patients excluded from one arm at a step, the censored, the
events before the landmark) but are still counts, derivable from the published ones.

Primary suppression hides a cell 0 < n < k. Then, until nothing changes:
* in every relation holding a protected cell (hidden and 1..k-1, or hidden to protect
  another), the hidden cells must sum to 0 or at least k;
* no protected cell may be determined by the published cells through the relations
  (linear algebra: its unit vector must not lie in the row space of the relations
  restricted to the hidden cells);
otherwise the smallest published positive cell of such a relation is hidden too (the
cohort size, an anchor, last). Pure: a dict in, a dict out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Path = tuple[str | int, ...]


@dataclass
class Cell:
    """One count: its true value and where results.json publishes it (none: virtual)."""

    value: int
    paths: list[Path] = field(default_factory=list)
    hidden: bool = False
    protected: bool = False
    anchor: int = 0  # how much the reader needs it: the cohort size 2, arm sizes 1


@dataclass
class Cells:
    """The cells of one results dict and the relations between them."""

    k: int
    cells: dict[str, Cell] = field(default_factory=dict)
    relations: list[tuple[str, list[str]]] = field(default_factory=list)

    def add(self, name: str, value: Any, *paths: Path, anchor: int = 0) -> str | None:
        """Register (or extend) a cell; None when the value is not a count."""
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        cell = self.cells.setdefault(name, Cell(int(value), anchor=anchor))
        cell.paths += [p for p in paths if p not in cell.paths]
        cell.anchor = max(cell.anchor, anchor)
        return name

    def virtual(self, name: str, value: int) -> str:
        """A count that is never published but follows from the others."""
        self.cells[name] = Cell(int(value), hidden=True, protected=0 < value < self.k)
        return name

    def relate(self, total: str | None, parts: Sequence[str | None]) -> None:
        """total = sum(parts); ignored when any side is not a count."""
        if total is not None and parts and all(p is not None for p in parts):
            self.relations.append((total, [p for p in parts if p is not None]))

    def solve(self) -> list[Path]:
        """Hide small cells and their complements; return the complementary paths."""
        for cell in self.cells.values():
            if cell.paths and 0 < cell.value < self.k:
                cell.hidden = cell.protected = True
        complementary: list[Path] = []
        while (pick := self._next()) is not None:
            cell = self.cells[pick]
            cell.hidden = cell.protected = True
            complementary += cell.paths
        return complementary

    def _next(self) -> str | None:
        """The next cell to hide, or None when every protected cell is safe."""
        for total, parts in self.relations:
            names = [total, *parts]
            hidden = [n for n in names if self.cells[n].hidden]
            if not any(self.cells[n].protected for n in hidden):
                continue
            small = 0 < sum(self.cells[n].value for n in hidden) < self.k
            if small and (pick := self._candidate(names)) is not None:
                return pick
        return self._determined()

    def _candidate(self, names: list[str]) -> str | None:
        """The published positive cell cheapest to hide: anchors last, then the cell in the
        fewest relations (hiding it drags the fewest others along), then the smallest."""
        shown = [n for n in names if not self.cells[n].hidden and self.cells[n].value > 0]
        return min(shown, key=self._cost) if shown else None

    def _cost(self, name: str) -> tuple[int, int, int, str]:
        degree = sum(name == t or name in p for t, p in self.relations)
        return self.cells[name].anchor, degree, self.cells[name].value, name

    def _determined(self) -> str | None:
        """A cell to hide because some protected cell is determined by the published ones."""
        hidden = [n for n, c in self.cells.items() if c.hidden]
        if not hidden:
            return None
        index = {n: i for i, n in enumerate(hidden)}
        rows = []
        for total, parts in self.relations:
            row = np.zeros(len(hidden))
            for name, sign in [(total, 1.0), *((p, -1.0) for p in parts)]:
                if name in index:
                    row[index[name]] += sign
            if row.any():
                rows.append(row)
        if not rows:
            return None
        determined = _in_row_space(np.array(rows))
        for name in hidden:
            if not self.cells[name].protected or not determined[index[name]]:
                continue
            related = [[t, *p] for t, p in self.relations if name in (t, *p)]
            options = [c for names in related if (c := self._candidate(names)) is not None]
            if options:
                return min(options, key=self._cost)
        return None


def _in_row_space(matrix: np.ndarray) -> np.ndarray:
    """Per column i: whether the unit vector e_i lies in the row space of `matrix` (the
    hidden cell i follows from the published ones). One SVD: e_i is in the row space when
    its projection on the right singular vectors of the non-zero singular values keeps all
    of its length (the rank tolerance is numpy's matrix_rank default)."""
    _, singular, vt = np.linalg.svd(matrix, full_matrices=False)
    tolerance = singular.max(initial=0.0) * max(matrix.shape) * np.finfo(float).eps
    basis = vt[singular > tolerance]
    return np.sum(basis**2, axis=0) > 1.0 - 1e-9


def get(value: Any, path: Path) -> Any:
    """The value at a path of nested dicts and lists, or None."""
    for step in path:
        try:
            value = value[step]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def blank(results: dict[str, Any], paths: list[Path]) -> None:
    """Set every path to None (in place, on a dict built for this purpose)."""
    for path in paths:
        parent = get(results, path[:-1])
        in_list = isinstance(parent, list) and isinstance(path[-1], int) and path[-1] < len(parent)
        if in_list or (isinstance(parent, dict) and path[-1] in parent):
            parent[path[-1]] = None


def pointer(path: Path) -> str:
    """A JSON pointer (RFC 6901) to a path."""
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in path)
