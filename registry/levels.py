"""Vertebral levels C1-L5 and their positions along the spine (adjacent: one apart)."""

from __future__ import annotations

LEVELS: tuple[str, ...] = (
    *(f"C{i}" for i in range(1, 8)),
    *(f"T{i}" for i in range(1, 13)),
    *(f"L{i}" for i in range(1, 6)),
)
POSITION: dict[str, int] = {name: i for i, name in enumerate(LEVELS)}
