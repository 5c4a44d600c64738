"""Survival models: the only place lifelines and statsmodels are called; results are our own
frozen dataclasses (see registry/analysis.py for the orchestration)."""
