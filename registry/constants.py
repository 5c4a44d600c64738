"""Numbers the whole package shares, defined once: the year, the 95 % normal quantile, the
demo's defaults."""

from __future__ import annotations

import datetime

DAYS_PER_YEAR = 365.25  # whole years as the report's axes, tables and numbers at risk count them
# scipy.stats.norm.ppf(0.975), correctly rounded (statistics.NormalDist is 4e-16 lower);
# a literal so that the report and the CLI need not import scipy. tests/test_catalogue.py checks it.
Z95 = 1.959963984540054

DEMO_PATIENTS = 1700  # `registry demo` and `registry synth`: about the size of the press release
DEMO_SEED = 20260101
DEMO_CUTOFF = datetime.date(2025, 12, 31)  # the synthetic data's last day: any later as-of works
