"""Vertebral levels C1-L5, their positions along the spine, and adjacency."""

from __future__ import annotations

LEVELS: tuple[str, ...] = (
    *(f"C{i}" for i in range(1, 8)),
    *(f"T{i}" for i in range(1, 13)),
    *(f"L{i}" for i in range(1, 6)),
)
POSITION: dict[str, int] = {name: i for i, name in enumerate(LEVELS)}


def position(level: str) -> int:
    """Position of a level along the spine (C1 = 0 ... L5 = 23)."""
    return POSITION[level]


def distance(a: str, b: str) -> int:
    """Number of positions between two levels (adjacent levels are 1 apart)."""
    return abs(POSITION[a] - POSITION[b])


def is_adjacent(a: str, b: str) -> bool:
    """True when two levels are next to each other (T12/L1 included)."""
    return distance(a, b) == 1


def nearest_distance(level: str, references: list[str] | tuple[str, ...]) -> int:
    """Distance from a level to the nearest of the reference levels."""
    return min(distance(level, ref) for ref in references)
