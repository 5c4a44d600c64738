"""How the report writes numbers: counts with suppression, HRs, p-values, percentages."""

from __future__ import annotations

from typing import Any

from registry.result_types import FitName, ModelError, Table1Cell, Wald, Year

YEARS: tuple[Year, ...] = ("1", "2", "3", "4", "5")
NAMES = {
    "adjacent": "Adjacent-level fracture",
    "remote": "Remote-level fracture",
    "same_level": "Same-level fracture (recollapse)",
    "any_new": "Any new vertebral fracture",
}
MODELS: dict[FitName, str] = {
    "time_varying_adjusted": "Time-varying, adjusted (primary)",
    "time_varying": "Time-varying, unadjusted",
    "landmark": "Landmark",
    "iptw": "IPTW (landmark cohort)",
    "adjusted": "Ever-treated, adjusted (immortal-time bias)",
    "unadjusted": "Ever-treated, unadjusted (immortal-time bias)",
    "fine_gray": "Fine–Gray subdistribution",
    "death_cause_specific": "Death, cause-specific (competing event)",
}


WITHHELD = "withheld"  # the one marker of every withheld count: a small one, or one it follows from


def count(value: Any, threshold: int) -> str:
    """A count with thousands separators; a withheld count (below the threshold, or one
    from which such a count could be worked back) as 'withheld', never as a bound."""
    return WITHHELD if value is None else f"{value:,}"


def fixed(value: Any, digits: int = 2) -> str:
    """A number with fixed decimals, or an en dash when missing."""
    return "–" if value is None else f"{value:.{digits}f}"


def pvalue(value: Any) -> str:
    """A p-value as epidemiologists write it."""
    if value is None:
        return "–"
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
        return f"–{missing}"
    return f"{cell['mean']:.1f} ± {fixed(cell.get('sd'), 1)}{missing}"


def hr_text(fit: Wald | ModelError) -> str:
    """'0.95 (0.69–1.30)', or "not estimable" for a model that could not be fitted (or has
    no finite estimate)."""
    if "error" in fit or fit["hr"] is None or fit["ci_lower"] is None or fit["ci_upper"] is None:
        return "not estimable"
    return f"{fixed(fit['hr'])} ({fixed(fit['ci_lower'])}–{fixed(fit['ci_upper'])})"


def percent(value: Any, digits: int = 1) -> str:
    """A proportion as a percentage."""
    return "–" if value is None else f"{100 * value:.{digits}f} %"
