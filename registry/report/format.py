"""How the report, its figures and the terminal write numbers: counts with suppression,
HRs, p-values, percentages, and the one mark of a missing value."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from registry.result_types import Table1Cell, Year

YEARS: tuple[Year, ...] = ("1", "2", "3", "4", "5")
WITHHELD = "withheld"  # the one marker of every withheld count: a small one, or one it follows from
MISSING = "–"  # en dash: a number that is missing or not finite, in the report and on the terminal


def count(value: Any, threshold: int) -> str:
    """A count with thousands separators; a withheld count (below the threshold, or one
    from which such a count could be worked back) as 'withheld', never as a bound."""
    return WITHHELD if value is None else f"{round(value):,}"


def fixed(value: Any, digits: int = 2) -> str:
    """A number with fixed decimals, or an en dash when missing."""
    return number(value, f".{digits}f")


def number(value: Any, spec: str = ".2f") -> str:
    """A number in a format spec (".3g", ".1f"), or an en dash when missing."""
    return MISSING if value is None else format(value, spec)


def pvalue(value: Any) -> str:
    """A p-value as epidemiologists write it."""
    if value is None:
        return MISSING
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def describe(cell: Table1Cell, binary: bool, threshold: int) -> str:
    """Table 1 cell: mean ± SD or n (%), with missing in brackets."""
    missing = f" [{count(cell['missing'], threshold)} missing]" if cell.get("missing") else ""
    if binary:
        if cell.get("count") is None:
            return f"{WITHHELD}{missing}"
        if cell.get("percent") is None:  # withheld: with n it would give a hidden count
            return f"{cell['count']:,}{missing}"
        return f"{cell['count']:,} ({cell['percent']:.1f} %){missing}"
    if cell.get("mean") is None:
        return f"{MISSING}{missing}"
    return f"{cell['mean']:.1f} ± {fixed(cell.get('sd'), 1)}{missing}"


def hr_text(fit: Mapping[str, Any]) -> str:
    """'0.95 (0.69–1.30)' of a fit (a Wald summary), or "not estimable" for a model that
    could not be fitted (or has no finite estimate)."""
    if "error" in fit or any(fit.get(k) is None for k in ("hr", "ci_lower", "ci_upper")):
        return "not estimable"
    return f"{fixed(fit['hr'])} ({fixed(fit['ci_lower'])}–{fixed(fit['ci_upper'])})"


def percent(value: Any, digits: int = 1) -> str:
    """A proportion as a percentage."""
    return MISSING if value is None else f"{100 * value:.{digits}f} %"


def percent_ci(lower: Any, upper: Any) -> str:
    """A confidence interval of proportions, in percent ("85.7–90.3")."""
    if lower is None or upper is None:
        return f"CI {MISSING}"
    return f"{100 * lower:.1f}–{100 * upper:.1f}"


def pooled_over(fit: Mapping[str, Any]) -> str:
    """'pooled over 20 imputations' of a fit pooled by Rubin's rules (it has an `mi` block),
    else ''."""
    mi = fit.get("mi")
    if not isinstance(mi, Mapping) or not mi.get("imputations"):
        return ""
    return f"pooled over {mi['imputations']} imputations"
