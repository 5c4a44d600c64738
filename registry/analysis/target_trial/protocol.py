"""The target trial's protocol settings (moved to registry/trial_protocol.py: the study holds
them and registry.study cannot import the analysis stage without a cycle)."""

from __future__ import annotations

from registry.trial_protocol import MarginScale, Protocol, WeightKind

__all__ = ["MarginScale", "Protocol", "WeightKind"]
