"""The target trial's block of results.json (`target_trial`), published under the small-cell rules.

* Counts (`patients`, the clones `at_risk.n` per year, the per-interval `at_risk` and
  `censored` of the diagnostics) are cells of the complementary-suppression solver
  (registry/privacy/suppression.py) with the relations a reader could use: an interval's
  clones at risk = those censored by deviation + those at risk in the next interval + the
  (never published) events, deaths and losses in between; the clones at risk at day 0 are the
  eligible patients; a yearly number at risk lies between two intervals'; the outcome's
  patients = the eligible + those missing a covariate.
* An outcome with fewer eligible patients than the threshold is withheld whole.
* Risks are weighted estimates. A drawn curve is rounded as published_km rounds counts
  (registry/analysis/publish.py): its cumulative incidence is turned into event-equivalents
  (risk increase x the clones still at risk at the end of that year, a lower bound on the
  events behind it), rounded up to a multiple of the threshold and turned back, and it stops
  at the first year whose number at risk is withheld. A risk at a year is withheld when
  fewer than threshold event-equivalents separate it from the last one shown, as
  `withheld_years` does for the other curves; a contrast, non-inferiority bound or E-value
  that would give a withheld risk back is withheld with it.
* With multiply imputed covariates, the `complete_case` risks are withheld by the same
  rule, from their own event counts, with the contrasts that would give them back.
* Reasons and warnings are published without counts.
With IP weights an event-equivalent approximates an event; it is exact for weights of 1.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from registry.privacy.suppression import Cells

JsonTree = dict[str, Any]
STRATEGIES = ("treat", "no_treat")
DAYS_PER_YEAR = 365.25
SMALL_REASON = "fewer than {k} eligible patients: withheld to protect small counts"
# a count in running text: a number before a counting noun, unless it is the threshold
COUNT_IN_TEXT = re.compile(
    r"(?<!fewer than )(?<!at least )\b\d[\d,]*(?= (?:eligible|patients?|clones?|events?|"
    r"deaths?|rows?|treated|untreated|people|fractures?)\b)"
)


def trial_outcomes(results: JsonTree) -> dict[str, JsonTree]:
    """The target trial's outcome blocks (none when the trial is disabled or absent)."""
    trial = results.get("target_trial")
    return trial.get("outcomes", {}) if isinstance(trial, dict) else {}


EVENTS = "_events"  # the estimator's unweighted outcome events by year: read here, never published


def pop_events(block: JsonTree) -> dict[str, dict[str, int]]:
    """Each strategy's cumulative outcome events by year, removed from the block."""
    found = {}
    for strategy in STRATEGIES:
        risks = (block.get("strategies") or {}).get(strategy)
        if isinstance(risks, dict) and isinstance(events := risks.pop(EVENTS, None), dict):
            found[strategy] = events
    return found


def prepare(results: JsonTree, k: int) -> list[str]:
    """Before suppression: the outcomes to withhold whole (0 < patients < k), and positivity
    shares that would give a small count back (share x patients) withheld."""
    small = []
    for key, block in trial_outcomes(results).items():
        patients = block.get("patients")
        if type(patients) is int and 0 < patients < k:
            small.append(key)
        positivity = (block.get("diagnostics") or {}).get("positivity") or {}
        share = positivity.get("share_within")
        if type(patients) is int and isinstance(share, float):
            within = round(share * patients)
            if 0 < within < k or 0 < patients - within < k:
                positivity["share_within"] = None
    return small


def trial_cells(cells: Cells, results: JsonTree) -> None:
    """Register every count of the block and the relations between them."""
    for key, block in trial_outcomes(results).items():
        at = ("target_trial", "outcomes", key)
        patients = _patients_cell(cells, results, key, block.get("patients"), (*at, "patients"))
        for strategy in STRATEGIES:
            _strategy_cells(cells, at, block, strategy, patients)


def _patients_cell(cells: Cells, results: JsonTree, key: str, value: Any, path: Any) -> str | None:
    """The eligible patients: the cell of an equal count of the outcome (the cohort, the
    complete cases), else their own, with the gap to the outcome's patients."""
    if type(value) is not int:
        return None
    outcome = ("outcomes", key)
    for existing, cell in cells.cells.items():
        same_outcome = any(p[:2] == outcome and p[-1] == "n" for p in cell.paths)
        if same_outcome and cell.value == value:
            return cells.add(existing, value, path)  # keeps the flow's own anchor
    name = cells.add(f"tt.{key}.patients", value, path, anchor=1)
    whole = next((n for n, c in cells.cells.items() if (*outcome, "n") in c.paths), None)
    if whole is not None and name is not None and cells.cells[whole].value >= value:
        cells.relate(whole, [name, cells.virtual(f"tt.{key}.incomplete",
                                                 cells.cells[whole].value - value)])  # fmt: skip
    return name


def _strategy_cells(cells: Cells, at: Any, block: JsonTree, strategy: str,
                    patients: str | None) -> None:  # fmt: skip
    """One strategy's clones at risk per year and per interval, and censored per interval."""
    base = f"tt.{at[-1]}.{strategy}"
    table = ((block.get("strategies") or {}).get(strategy) or {}).get("at_risk") or {}
    yearly: list[tuple[int, str]] = []
    for i, (day, n) in enumerate(zip(table.get("day", []), table.get("n", []), strict=False)):
        path = (*at, "strategies", strategy, "at_risk", "n", i)
        same = patients if day == 0 and patients and cells.cells[patients].value == n else None
        # the risk table under the curves: hide diagnostics' per-interval counts first
        if (name := cells.add(same or f"{base}.at_risk.day{day}", n, path, anchor=1)) is not None:
            yearly.append((day, name))
    rows = [(j, r) for j, r in enumerate((block.get("diagnostics") or {}).get("censored") or [])
            if isinstance(r, dict) and r.get("strategy") == strategy]  # fmt: skip
    rows.sort(key=lambda jr: jr[1].get("start", 0))
    names = []
    for j, row in rows:
        path = (*at, "diagnostics", "censored", j)
        start, n = row.get("start"), row.get("at_risk")
        same = patients if start == 0 and patients and cells.cells[patients].value == n else None
        at_risk = cells.add(same or f"{base}.interval{start}.at_risk", n, (*path, "at_risk"))
        censored = cells.add(f"{base}.interval{start}.censored", row.get("censored"),
                             (*path, "censored"))  # fmt: skip
        names.append((row, at_risk, censored))
    for i, (row, at_risk, censored) in enumerate(names):
        after = names[i + 1][1] if i + 1 < len(names) else None
        _exits(cells, f"{base}.interval{row.get('start')}.exits", at_risk, [censored, after])
    for day, name in yearly:  # a yearly number at risk lies between two intervals'
        before = [a for r, a, _ in names if r.get("start", 0) <= day and a is not None]
        later = [a for r, a, _ in names if r.get("start", 0) > day and a is not None]
        # virtual names of this strategy's own: the day-0 cell is shared (the eligible
        # patients), and a shared virtual would take the last strategy's value
        if before and name != before[-1]:
            _exits(cells, f"{base}.day{day}.before", before[-1], [name])
        if later and name != later[0]:
            _exits(cells, f"{base}.day{day}.after", name, [later[0]])


def _exits(cells: Cells, name: str, total: str | None, parts: list[str | None]) -> None:
    """total = parts + the (virtual) clones that left in between, when that is a count."""
    if total is None or parts[0] is None:
        return
    shown = [p for p in parts if p is not None]
    rest = cells.cells[total].value - sum(cells.cells[p].value for p in shown)
    if rest >= 0:
        cells.relate(total, [*shown, cells.virtual(name, rest)])


def publish_trial(results: JsonTree, k: int, small: list[str]) -> None:
    """After suppression: withhold small outcomes whole, round curves, withhold risks that
    would give a small count back (and what follows from them), strip counts from text."""
    for key, block in trial_outcomes(results).items():
        events = pop_events(block)
        complete_case = block.get("complete_case")
        cc_events = pop_events(complete_case) if isinstance(complete_case, dict) else {}
        if key in small:
            withdraw(block, SMALL_REASON.format(k=k))
        elif block.get("status") == "estimated":
            shown = {s: _strategy(block, s, k, events.get(s)) for s in STRATEGIES}
            _contrasts(block, shown)
            _complete_case(complete_case, k, cc_events)
        for part in (block, complete_case if isinstance(complete_case, dict) else {}):
            if isinstance(part.get("reason"), str):
                part["reason"] = COUNT_IN_TEXT.sub("n", part["reason"])
        diagnostics = block.get("diagnostics") or {}
        diagnostics["warnings"] = [COUNT_IN_TEXT.sub("n", w) for w in
                                   diagnostics.get("warnings") or []]  # fmt: skip


def withdraw(block: JsonTree, reason: str) -> None:
    """An outcome's block emptied (every key kept) with the reason it was withheld."""
    block.update(status="not_estimable", reason=reason, patients=None)
    for strategy in (block.get("strategies") or {}).values():
        strategy["risk"] = dict.fromkeys(strategy.get("risk") or {})
        strategy["ci"] = dict.fromkeys(strategy.get("ci") or {})
        strategy["curve"] = {"day": [], "risk": [], "lower": [], "upper": []}
        strategy["at_risk"] = {"day": [], "n": []}
    for name in ("risk_difference", "risk_ratio"):
        for contrast in (block.get(name) or {}).values():
            _blank(contrast, ("estimate", "ci_lower", "ci_upper"))
    _blank(block.get("hazard_ratio"), ("estimate", "ci_lower", "ci_upper"))
    _blank(block.get("non_inferiority"), ("upper_bound",))
    if isinstance(block.get("non_inferiority"), dict):
        block["non_inferiority"]["verdict"] = "not estimable"
    _blank(block.get("e_value"), ("point", "ci"))
    diagnostics = block.setdefault("diagnostics", {})
    diagnostics.update(weights=[], censored=[], balance=[], warnings=[])
    _blank(diagnostics.get("truncation"), ("cap", "share_capped"))
    _blank(diagnostics.get("positivity"), ("share_within", "min", "max"))
    if isinstance(complete_case := block.get("complete_case"), dict):
        _complete_case(complete_case, 0, {}, withheld=True)


def _complete_case(block: Any, k: int, events: dict[str, dict[str, int]],
                   withheld: bool = False) -> None:  # fmt: skip
    """Withhold the complete-case risks reached by fewer than k events (all when `withheld`
    or the counts are missing), and the RD and RR of every year not shown for both."""
    if not isinstance(block, dict):
        return
    shown = {}
    for strategy in STRATEGIES:
        risks = (block.get("strategies") or {}).get(strategy) or {}
        counts = None if withheld else events.get(strategy)
        if counts:
            shown[strategy] = _withhold_years_by_events(risks, counts, k)
        else:
            risks["risk"] = dict.fromkeys(risks.get("risk") or {})
            shown[strategy] = set()
    both = shown["treat"] & shown["no_treat"]
    for name in ("risk_difference", "risk_ratio"):
        values = block.get(name) or {}
        values.update({year: None for year in values if year not in both})


def _blank(value: Any, keys: tuple[str, ...]) -> None:
    if isinstance(value, dict):
        value.update(dict.fromkeys(keys))


def year_day(year: int) -> int:
    """The day a whole year ends on (as registry.analysis.target_trial.risks rounds it)."""
    return round(year * DAYS_PER_YEAR)


def _strategy(
    block: JsonTree, strategy: str, k: int, events: dict[str, int] | None = None
) -> set[str]:
    """Round one strategy's curve and withhold its small-step risks; the years shown."""
    risks = (block.get("strategies") or {}).get(strategy)
    if not isinstance(risks, dict):
        return set()
    table = risks.get("at_risk") or {}
    days, n = list(table.get("day") or []), list(table.get("n") or [])
    limit = _usable_days(days, n)
    _round_curve(risks.get("curve") or {}, days, n, limit, k)
    return _withhold_years(risks, days, n, limit, k, events)


def _usable_days(days: list[Any], n: list[Any]) -> int:
    """How many table days from the start have a published, positive number at risk."""
    for i, value in enumerate(n):
        if not isinstance(value, int) or value <= 0 or i >= len(days):
            return i
    return min(len(n), len(days))


def _at_risk_at(day: float, days: list[Any], n: list[Any], limit: int) -> int | None:
    """The clones at risk at the first table day on or after `day` (None: none usable)."""
    for i in range(limit):
        if days[i] >= day:
            return int(n[i])
    return None


def _withhold_years(risks: JsonTree, days: list[Any], n: list[Any], limit: int,
                    k: int, events: dict[str, int] | None = None) -> set[str]:  # fmt: skip
    """Null the risks (and CIs) reached by fewer than k outcome events since the last value
    shown (the estimator's unweighted counts when it gave them, else event-equivalents: the
    risk increase x the clones at risk at the year's end, a lower bound); the years shown."""
    if events:
        return _withhold_years_by_events(risks, events, k)
    shown_risk, shown = 0.0, set()
    for year in sorted((y for y in risks.get("risk") or {}), key=int):
        value = risks["risk"][year]
        if value is None:
            continue
        at_risk = _at_risk_at(year_day(int(year)), days, n, limit)
        increase = value - shown_risk
        if at_risk is None or 0 < increase * at_risk < k - 1e-9:
            risks["risk"][year] = None
            if year in (risks.get("ci") or {}):
                risks["ci"][year] = None
            continue
        shown_risk = max(shown_risk, value)
        shown.add(year)
    return shown


def _withhold_years_by_events(risks: JsonTree, events: dict[str, int], k: int) -> set[str]:
    """As _withhold_years, with the exact outcome events of the strategy's clones."""
    last, shown = 0, set()
    for year in sorted((y for y in risks.get("risk") or {}), key=int):
        if risks["risk"][year] is None:
            continue
        count = events.get(year)
        if not isinstance(count, int) or 0 < count - last < k:
            risks["risk"][year] = None
            if year in (risks.get("ci") or {}):
                risks["ci"][year] = None
            continue
        last = count
        shown.add(year)
    return shown


def _round_curve(curve: JsonTree, days: list[Any], n: list[Any], limit: int, k: int) -> None:
    """The curve cut at the first unusable table day and rounded to whole multiples of k
    event-equivalents (risk rounded up, lower limit down, upper limit up)."""
    day = np.asarray(curve.get("day") or [], dtype=float)
    if day.size == 0:
        return
    keep = day <= (days[limit - 1] if limit else -1.0)
    columns = {c: np.array([np.nan if v is None else v for v in curve.get(c) or []], dtype=float)
               for c in ("risk", "lower", "upper")}  # fmt: skip
    if limit < 2 or not all(v.size == day.size for v in columns.values()):
        curve.update(day=[], risk=[], lower=[], upper=[])
        return
    to_events, to_risk = _event_map(day, columns["risk"], days[:limit], n[:limit])
    rounding = {"risk": math.ceil, "lower": math.floor, "upper": math.ceil}
    curve["day"] = day[keep].tolist()
    for column, values in columns.items():
        step = np.vectorize(lambda e, r=rounding[column]: r(e / k - 1e-9 * (r is math.ceil)) * k)
        events = to_events(values[keep])
        published = np.clip(to_risk(step(events)), 0.0, 1.0)
        curve[column] = [None if np.isnan(v) else float(v) for v in published]


def _event_map(day: np.ndarray, risk: np.ndarray, days: list[Any], n: list[Any]) -> Any:
    """Risk <-> event-equivalents: piecewise linear through the risk at each table day, each
    year's risk increase counted with the clones at risk at its end (slope n)."""
    at = [float(np.nanmax(risk[day <= d], initial=0.0)) for d in days]
    slopes = np.asarray(n[1:], dtype=float)
    risk_knots, event_knots = [at[0]], [0.0]
    for value, slope in zip(at[1:], slopes, strict=True):
        if value > risk_knots[-1]:
            event_knots.append(event_knots[-1] + (value - risk_knots[-1]) * slope)
            risk_knots.append(value)
    last_slope = float(slopes[-1]) if slopes.size else 1.0
    r, e = np.array(risk_knots), np.array(event_knots)

    def to_events(values: np.ndarray) -> np.ndarray:
        inside = np.interp(values, r, e)
        beyond = e[-1] + (values - r[-1]) * last_slope
        below = e[0] + (values - r[0]) * (float(slopes[0]) if slopes.size else 1.0)
        return np.where(values > r[-1], beyond, np.where(values < r[0], below, inside))

    def to_risk(events: np.ndarray) -> np.ndarray:
        inside = np.interp(events, e, r)
        beyond = r[-1] + (events - e[-1]) / last_slope
        return np.where(events > e[-1], beyond, inside)

    return to_events, to_risk


def _contrasts(block: JsonTree, shown: dict[str, set[str]]) -> None:
    """A contrast next to a withheld risk would give it back (RD = a - b, RR = a / b): both
    are withheld at that year, with the margin's bound and the E-value read from them."""
    both = shown["treat"] & shown["no_treat"]
    hidden = set()
    for name in ("risk_difference", "risk_ratio"):
        for year, contrast in (block.get(name) or {}).items():
            if year not in both and isinstance(contrast, dict):
                _blank(contrast, ("estimate", "ci_lower", "ci_upper"))
                hidden.add(year)
    margin = block.get("non_inferiority") or {}
    if str(margin.get("at_year")) in hidden:
        margin["upper_bound"] = None
    e_value = block.get("e_value") or {}
    found = re.search(r"at (\d+) years?", str(e_value.get("basis", "")))
    if found and found.group(1) in hidden:
        _blank(e_value, ("point", "ci"))
