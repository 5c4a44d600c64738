"""vertebral-registry: a longitudinal cohort registry for vertebral compression fractures."""

__version__ = "0.1.0"
