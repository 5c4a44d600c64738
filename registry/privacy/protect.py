"""The cells and relations of results.json, and complementary suppression over them.

Each function below registers one part of the results (flow, outcomes, landmark, Table 1,
data quality, PROs) with the relations an attacker could use: totals minus parts, flow
differences, arm differences, model sizes against the cohort. See registry/privacy/suppression.py.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from registry import catalogue
from registry.privacy import trial
from registry.privacy.suppression import Cells, Path, blank, get, pointer

JsonTree = dict[str, Any]  # results.json as serialised: walked by JSON pointer, not by type
ARMS = ("treated", "untreated")
TWIN = "_complete_case"  # suffix of a pooled model's complete-case fit (analysis/missing.py)


def protect(results: JsonTree, k: int) -> JsonTree:
    """A copy of results with every cell from which a small count could be worked back set to
    None, the percentages beside hidden counts withheld, and `withheld` listing (as JSON
    pointers) the counts hidden to protect another (complementary suppression)."""
    out = copy.deepcopy(results)
    small_trials = trial.prepare(out, k)  # target-trial outcomes withheld whole
    cells = Cells(k)
    flow(cells, out)
    for name, outcome in out.get("outcomes", {}).items():
        outcome_cells(cells, ("outcomes", name), outcome)
    table_one_cells(cells, out)
    missing_data_cells(cells, out)
    quality_cells(cells, out)
    pro_cells(cells, out)
    trial.trial_cells(cells, out)
    complementary = cells.solve()
    blank(out, [p for c in cells.cells.values() if c.hidden for p in c.paths])
    withhold_percentages(out)
    withhold_patterns(out, k)
    withhold_pro_tests(out)
    withhold_years(out)
    redact_error_counts(out)
    trial.publish_trial(out, k, small_trials)
    out["withheld"] = sorted({pointer(p) for p in complementary})
    return out


def flow(cells: Cells, results: JsonTree) -> None:
    """Attrition rows, cohort size and arms: each step's remaining = its two arms; the rows
    before = excluded + remaining, per arm too (the per-arm exclusions are virtual)."""
    rows = get(results, ("cohort", "attrition")) or []
    keys = ("remaining", "remaining_treated", "remaining_conservative")
    for i, row in enumerate(rows):
        names = [cells.add(f"flow.{i}.{key}", row.get(key), ("cohort", "attrition", i, key))
                 for key in keys]  # fmt: skip
        cells.relate(names[0], names[1:])
        excluded = cells.add(f"flow.{i}.excluded", row.get("excluded"),
                             ("cohort", "attrition", i, "excluded"))  # fmt: skip
        if i == 0 or excluded is None:
            continue
        before = _last_all(rows[:i])  # the step before, or the last one for all (adjusted)
        if before is None:
            continue
        j = rows.index(before)
        cells.relate(f"flow.{j}.remaining", [excluded, f"flow.{i}.remaining"])
        per_arm: list[str | None] = []
        for key in keys[1:]:
            gone = cells.virtual(f"flow.{i}.excluded.{key}", before[key] - row[key])
            cells.relate(f"flow.{j}.{key}", [gone, f"flow.{i}.{key}"])
            per_arm.append(gone)
        cells.relate(excluded, per_arm)
    last = _last_all(rows)
    if last is not None:
        i = rows.index(last)
        cells.add(f"flow.{i}.remaining", last["remaining"], ("cohort", "n"), anchor=2)
        cells.add(f"flow.{i}.remaining_treated", last["remaining_treated"],
                  ("cohort", "n_treated"), anchor=1)  # fmt: skip
        cells.add(f"flow.{i}.remaining_conservative", last["remaining_conservative"],
                  ("cohort", "n_untreated"), anchor=1)  # fmt: skip


def _last_all(rows: list[JsonTree]) -> JsonTree | None:
    alls = [r for r in rows if r.get("applies_to") == "all"]
    return alls[-1] if alls else None


def cohort_cell(cells: Cells, value: Any, kind: str) -> str | None:
    """The flow cell that a model's or a curve's n equals: the cohort, an arm, or the
    complete cases of the adjusted models (matched by value, which can only over-protect)."""
    for name, cell in cells.cells.items():
        if name.startswith("flow.") and name.endswith(kind) and cell.value == value:
            return name
    return None


def outcome_cells(cells: Cells, at: Path, outcome: JsonTree) -> None:
    """Patients, events, deaths and censored per outcome; per arm; per model; landmark."""
    n = cells.add(cohort_cell(cells, outcome.get("n"), ".remaining") or f"{at}.n",
                  outcome.get("n"), (*at, "n"))  # fmt: skip
    events = cells.add(f"{at}.events", outcome.get("events"), (*at, "events"))
    deaths = cells.add(f"{at}.deaths", outcome.get("deaths_first"), (*at, "deaths_first"))
    if n is not None and events is not None and deaths is not None:
        censored = cells.cells[n].value - cells.cells[events].value - cells.cells[deaths].value
        cells.relate(n, [events, deaths, cells.virtual(f"{at}.censored", censored)])
    curve_family(cells, (*at, "km"), outcome.get("km", {}), n, events, ever_treated=True)
    models(cells, at, outcome, n, events)


def curve_family(cells: Cells, at: Path, by_arm: JsonTree, n: str | None, events: str | None,
                 *, ever_treated: bool) -> None:  # fmt: skip
    """Arm sizes and events of a set of curves: n = sum of arms, events = sum of arms."""
    sizes, counts = [], []
    for arm in ARMS:
        curve = by_arm.get(arm, {}) if isinstance(by_arm, dict) else {}
        size = curve.get("n")
        arm_cell = (
            cohort_cell(cells, size, f".remaining_{_flow_arm(arm)}") if ever_treated else None
        )
        sizes.append(cells.add(arm_cell or f"{at}.{arm}.n", size, (*at, arm, "n")))
        counts.append(cells.add(f"{at}.{arm}.events", curve.get("total_events"),
                                (*at, arm, "total_events")))  # fmt: skip
    cells.relate(n, sizes)
    cells.relate(events, counts)


def _flow_arm(arm: str) -> str:
    return "treated" if arm == "treated" else "conservative"


def models(cells: Cells, at: Path, outcome: JsonTree, n: str | None, events: str | None) -> None:
    """Model sizes and events: the whole cohort's, the complete cases', the landmark's."""
    cox = outcome.get("cox", {})
    fits = {m: f for m, f in cox.items() if isinstance(f, dict) and "error" not in f}
    for key in ("piecewise", "piecewise_complete_case"):
        fits |= {f"{key}.{p}": f for p, f in cox.get(key, {}).items()
                 if isinstance(f, dict) and "error" not in f}  # fmt: skip
    deaths = f"{at}.deaths"
    seen: dict[tuple[str, str, str], str | None] = {}  # (model, group, key) -> its cell
    for model, fit in fits.items():
        path = (*at, "cox", *model.split("."))
        # a pooled fit has the whole cohort's size; its complete-case twin the old one's
        base = model.removesuffix(TWIN) in cohort_models() or model.startswith("piecewise")
        if not base or fit.get("n") is None:
            continue
        # a pooled fit (with "mi") has the patients whose covariates are present after
        # imputation: the cohort's, or between the cohort and the complete cases when some
        # covariate could not be imputed; its own cells then, beside its twin's
        group = "pooled" if "mi" in fit else "adjusted"
        size = cells.add(cohort_cell(cells, fit["n"], ".remaining") or f"{at}.{group}.n",
                         fit["n"], (*path, "n"))  # fmt: skip
        kind = "deaths" if model.startswith("death_cause_specific") else "events"
        whole = size == n
        counted = cells.add(f"{at}.{kind}" if whole else f"{at}.{group}.{kind}",
                            fit.get("events"), (*path, "events"))  # fmt: skip
        base_model = model.removesuffix(TWIN)
        seen[(base_model, group, "n")], seen[(base_model, group, kind)] = size, counted
    for full in (events, deaths if deaths in cells.cells else None):
        for group in ("adjusted", "pooled"):
            part = f"{at}.{group}.{'events' if full == events else 'deaths'}"
            if full is not None and part in cells.cells:
                gap(cells, full, part, f"{part}.gap")
    if f"{at}.pooled.n" in cells.cells:
        gap(cells, n, f"{at}.pooled.n", f"{at}.pooled.n.gap")
    # a pooled fit and its complete-case twin: the patients (events) between them are a count
    for (model, group, key), cell in seen.items():
        twin = seen.get((model, "adjusted", key))
        if group == "pooled" and cell is not None and twin is not None and cell != twin:
            gap(cells, cell, twin, f"{at}.{model}.{key}.pooled_gap")
    landmark(cells, at, outcome, fits, n, events)


def landmark(cells: Cells, at: Path, outcome: JsonTree, fits: JsonTree, n: str | None,
             events: str | None) -> None:  # fmt: skip
    """The landmark cohort (and IPTW's complete cases of it) against the whole cohort."""
    lm = fits.get("landmark", {})
    lm_n = cells.add(f"{at}.lm.n", lm.get("n"), (*at, "cox", "landmark", "n"))
    lm_events = cells.add(f"{at}.lm.events", lm.get("events"), (*at, "cox", "landmark", "events"))
    fine_gray = outcome.get("fine_gray", {})
    if "error" not in fine_gray and lm_n and fine_gray.get("n") == cells.cells[lm_n].value:
        cells.add(lm_n, fine_gray.get("n"), (*at, "fine_gray", "n"))
        cells.add(lm_events or f"{at}.lm.events", fine_gray.get("events"),
                  (*at, "fine_gray", "events"))  # fmt: skip
    curve_family(cells, (*at, "km_landmark"), outcome.get("km_landmark", {}), lm_n, lm_events,
                 ever_treated=False)  # fmt: skip
    gap(cells, n, lm_n, f"{at}.lm.n.gap")
    gap(cells, events, lm_events, f"{at}.lm.events.gap")
    for key in ("iptw", f"iptw{TWIN}"):  # pooled (the landmark cohort) and complete cases
        iptw_cells(cells, at, key, fits.get(key, {}), (n, events), (lm_n, lm_events))


def iptw_cells(cells: Cells, at: Path, key: str, iptw: JsonTree, cohort: tuple[str | None, ...],
               lm: tuple[str | None, ...]) -> None:  # fmt: skip
    """An IPTW fit's size, events, weighted curves and histograms against the landmark
    cohort and the whole cohort."""
    (n, events), (lm_n, lm_events) = cohort, lm
    w_n = cells.add(f"{at}.{key}.n", iptw.get("n"), (*at, "cox", key, "n"))
    w_events = cells.add(f"{at}.{key}.events", iptw.get("events"), (*at, "cox", key, "events"))
    weighted = (*at, "cox", key, "weighted_km")
    curve_family(cells, weighted, iptw.get("weighted_km", {}), w_n, w_events, ever_treated=False)
    gap(cells, lm_n, w_n, f"{at}.{key}.n.gap")
    gap(cells, lm_events, w_events, f"{at}.{key}.events.gap")
    # nested twice: the cohort minus the IPTW cohort is a count too (the sum of two gaps)
    gap(cells, n, w_n, f"{at}.{key}.n.gap.cohort")
    gap(cells, events, w_events, f"{at}.{key}.events.gap.cohort")
    for histogram in ("ps_histogram", "weights_histogram"):
        for arm in ARMS:
            bins = iptw.get(histogram, {}).get(arm) or []
            path = (*at, "cox", key, histogram, arm)
            names = [cells.add(f"{path}.{i}", b, (*path, i)) for i, b in enumerate(bins)]
            cells.relate(f"{weighted}.{arm}.n" if f"{weighted}.{arm}.n" in cells.cells else None,
                         names)  # fmt: skip


def gap(cells: Cells, whole: str | None, part: str | None, name: str) -> None:
    """whole = part + the (virtual) count between them."""
    if whole is None or part is None:
        return
    cells.relate(
        whole, [part, cells.virtual(name, cells.cells[whole].value - cells.cells[part].value)]
    )


def table_one_cells(cells: Cells, results: JsonTree) -> None:
    """Per arm and variable: arm = n + missing; a binary n = count + the rest; per covariate,
    the missing of the two arms add up to data_quality.missing_covariates."""
    missing_by_variable: dict[str, list[str | None]] = {}
    for i, row in enumerate(results.get("table1", [])):
        for arm in ARMS:
            cell = row.get(arm, {})
            at = ("table1", i, arm)
            arm_cell = cohort_cell(cells, cell.get("n", 0) + cell.get("missing", 0),
                                   f".remaining_{_flow_arm(arm)}")  # fmt: skip
            size = cells.add(arm_cell or f"t1.arm.{arm}", cell.get("n", 0) + cell.get("missing", 0))
            n = cells.add(f"{at}.n", cell.get("n"), (*at, "n"))
            missing = cells.add(f"{at}.missing", cell.get("missing"), (*at, "missing"))
            cells.relate(size, [n, missing])
            missing_by_variable.setdefault(row["variable"], []).append(missing)
            if row.get("binary") and n is not None and isinstance(cell.get("count"), int):
                count = cells.add(f"{at}.count", cell["count"], (*at, "count"))
                rest = cells.virtual(f"{at}.rest", cells.cells[n].value - cell["count"])
                cells.relate(n, [count, rest])
    names = {"female": "sex"}
    quality = results.get("data_quality", {}).get("missing_covariates", [])
    for j, row in enumerate(quality):
        total = cells.add(f"dq.missing.{row['covariate']}", row.get("missing"),
                          ("data_quality", "missing_covariates", j, "missing"))  # fmt: skip
        for variable, parts in missing_by_variable.items():
            if names.get(variable, variable) == row["covariate"]:
                cells.relate(total, parts)


def missing_data_cells(cells: Cells, results: JsonTree) -> None:
    """The missing-data section's counts: its n is the cohort's, its complete cases the
    adjusted models' flow step, each covariate's missing count data_quality's (same cells).
    Its patterns are not cells: see withhold_patterns."""
    section = results.get("missing_data")
    if not isinstance(section, dict):
        return
    at: Path = ("missing_data",)
    cells.add(cohort_cell(cells, section.get("n"), ".remaining") or "md.n",
              section.get("n"), (*at, "n"))  # fmt: skip
    cells.add(cohort_cell(cells, section.get("complete_cases"), ".remaining") or "md.complete",
              section.get("complete_cases"), (*at, "complete_cases"))  # fmt: skip
    for i, row in enumerate(section.get("variables", [])):
        cells.add(f"dq.missing.{row['covariate']}", row.get("missing"),
                  (*at, "variables", i, "missing"))  # fmt: skip


def withhold_patterns(results: JsonTree, k: int) -> None:
    """The missingness patterns, all or nothing, after complementary suppression: their
    counts add up to n, the complete pattern is the complete cases, and the patterns
    holding a covariate add up to its missing count. They are published only when every
    one of those totals is published and no pattern is below k, so that they give back
    nothing hidden; otherwise every pattern keeps its covariates and loses its count (and
    a covariate's percentage goes with its withheld count). Registering the patterns as
    cells instead sent the greedy solver up the flow to the cohort size on small
    registries with a few missing values."""
    section = results.get("missing_data")
    if not isinstance(section, dict):
        return
    # the engine's notes may quote a count ("its 3 missing values stay null")
    section["notes"] = [COUNT_IN_TEXT.sub("n", str(t)) for t in section.get("notes") or []]
    rows = section.get("variables", [])
    for row in rows:
        if row.get("missing") is None:
            row["percent"] = None
    counts = [p.get("count") for p in section.get("patterns", [])]
    totals = [section.get("n"), section.get("complete_cases"), *(r.get("missing") for r in rows)]
    safe = all(c is None or c == 0 or c >= k for c in counts) and None not in totals
    if not safe:
        for pattern in section.get("patterns", []):
            pattern["count"] = None


def quality_cells(cells: Cells, results: JsonTree) -> None:
    """Ingest batches (read = inserted + updated + unchanged + quarantined), quarantine by
    rule against the file's quarantined total, checks (rows and patients)."""
    quality = results.get("data_quality", {})
    parts = ("rows_inserted", "rows_updated", "rows_unchanged", "rows_quarantined")
    by_file: dict[str, str | None] = {}
    for i, batch in enumerate(quality.get("batches", [])):
        at = ("data_quality", "batches", i)
        names = [cells.add(f"{at}.{key}", batch.get(key), (*at, key)) for key in parts]
        cells.relate(cells.add(f"{at}.rows_read", batch.get("rows_read"), (*at, "rows_read")),
                     names)  # fmt: skip
        by_file[str(batch.get("file_name"))] = names[-1]
    rules: dict[str, list[str | None]] = {}
    for i, row in enumerate(quality.get("quarantine", [])):
        at = ("data_quality", "quarantine", i)
        rules.setdefault(str(row.get("file_name")), []).append(
            cells.add(f"{at}.n_rows", row.get("n_rows"), (*at, "n_rows"))
        )
    for file_name, names in rules.items():
        cells.relate(by_file.get(file_name), names)
    for i, row in enumerate(quality.get("checks", [])):
        at = ("data_quality", "checks", i)
        for key in ("violations", "patients"):
            cells.add(f"{at}.{key}", row.get(key), (*at, key))


def pro_cells(cells: Cells, results: JsonTree) -> None:
    """PRO counts of an arm: the arm = those with the visit (or pair) + those without."""
    pro = results.get("pro", {})
    found: list[tuple[Any, Any, Path]] = []
    for instrument in ("VAS", "ODI"):
        for arm in ARMS:
            found.append((arm, get(pro, (instrument, arm, "n")), ("pro", instrument, arm, "n")))
            for visit, q in (get(pro, ("quantiles", instrument, arm)) or {}).items():
                where: Path = ("pro", "quantiles", instrument, arm, visit, "n")
                found.append((arm, q.get("n") if isinstance(q, dict) else None, where))
    for i, row in enumerate(pro.get("trajectories", [])):
        found.append((row.get("arm"), row.get("n"), ("pro", "trajectories", i, "n")))
    for arm, value, path in found:
        name = cells.add(pointer(path), value, path)
        gap(cells, arm_cell(cells, arm), name, f"{pointer(path)}.gap")


def arm_cell(cells: Cells, arm: Any) -> str | None:
    """The flow cell of an arm's size in the cohort (published as cohort.n_<arm>)."""
    where = ("cohort", "n_treated" if arm == "treated" else "n_untreated")
    return next((n for n, c in cells.cells.items() if where in c.paths), None)


def withhold_years(value: Any) -> None:
    """Null the values at 1-5 years of a curve that lists them in `withheld_years`."""
    if isinstance(value, list):
        for item in value:
            withhold_years(item)
    if not isinstance(value, dict):
        return
    for year in value.get("withheld_years") or []:
        for key in ("survival_at_years", "ci_lower_at_years", "ci_upper_at_years", "at_years"):
            if isinstance(value.get(key), dict) and year in value[key]:
                value[key][year] = None
    for item in value.values():
        withhold_years(item)


PRO_N_REVEALERS = ("change_ci_lower", "change_ci_upper", "p_ttest", "p_wilcoxon")


def withhold_pro_tests(results: JsonTree) -> None:
    """A t-interval or test p-value beside a hidden PRO n would give it back (its half-width
    is t(n-1) x SD / sqrt(n); an exact Wilcoxon p is a multiple of 2^-n)."""
    pro = results.get("pro", {})
    for instrument in ("VAS", "ODI"):
        for arm in ARMS:
            change = get(pro, (instrument, arm))
            if isinstance(change, dict) and change.get("n") is None:
                change.update(dict.fromkeys(PRO_N_REVEALERS))


def withhold_percentages(results: JsonTree) -> None:
    """A percentage beside a hidden count or n would give it back (count = % x n)."""
    for row in results.get("table1", []):
        for arm in ARMS:
            cell = row.get(arm, {})
            if "percent" in cell and (cell.get("count") is None or cell.get("n") is None):
                cell["percent"] = None


def cohort_models() -> set[str]:
    """The models fitted on the whole cohort or its complete cases (not the landmark cohort):
    their sizes and events relate to the cohort's and to each other's."""
    return {m.key for m in catalogue.MODELS if m.frame != "landmark"}


COUNT_IN_TEXT = re.compile(r"(?<!fewer than )\b\d[\d,]*")  # the threshold itself may stay


def redact_error_counts(tree: Any) -> None:
    """A model's error message may quote the rows it had ('no events among 24 rows') while
    that model's n is withheld: every number in a published `error` becomes 'n', but for the
    threshold in 'fewer than 5 patients in this arm'."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key == "error" and isinstance(value, str):
                tree[key] = COUNT_IN_TEXT.sub("n", value)
            else:
                redact_error_counts(value)
    elif isinstance(tree, list):
        for item in tree:
            redact_error_counts(item)
