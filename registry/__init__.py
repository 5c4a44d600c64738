"""vertebral-registry: a longitudinal cohort registry for vertebral compression fractures.

The Python API for notebooks (registry.api) is re-exported here: `registry.open_registry`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from registry.api import Registry, StudyData, open_registry

__all__ = ["Registry", "StudyData", "__version__", "open_registry"]
_API = ("Registry", "StudyData", "open_registry")


def __getattr__(name: str) -> Any:
    """The API's names, imported on first use (the CLI's start-up does not pay for them)."""
    if name in _API:
        from registry import api

        return getattr(api, name)
    raise AttributeError(f"module 'registry' has no attribute {name!r}")
