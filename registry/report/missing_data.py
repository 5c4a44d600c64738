"""The report's "Missing data" section and Table 1's missing rows, from results.json's
`missing_data` block and the pooled fits beside their `<model>_complete_case` twins.

The block is the published one (small counts withheld as None). Results without it (an older
results.json) give a section that says so. Pure; every string here is plain text that the
template escapes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, cast

import plotly.graph_objects as go

from registry import catalogue
from registry.report import figures
from registry.report.figures.missing_data import convergence_figure, distribution_figure
from registry.report.figures.style import ARMS, variable_label
from registry.report.format import MISSING, WITHHELD, count, fixed, hr_text, pooled_over

Context = dict[str, Any]
Block = Mapping[str, Any]
METHODS = {"pmm": "predictive mean matching", "logreg": "logistic regression"}
AUXILIARY = {
    "treated": "treatment (ever treated)",
    "treat_years": "years from diagnosis to treatment",
    "died": "death",
}
TABLE1_COVARIATES = {"female": "sex"}  # Table 1's variable -> the study covariate it shows
PERIODS = {"0-1y": "0–1 year", "1-5y": "1–5 years"}


def md_block(results: Mapping[str, Any]) -> Block | None:
    """The published `missing_data` block, None when results.json has none."""
    block = cast(Mapping[str, Any], results).get("missing_data")
    return block if isinstance(block, Mapping) else None


def imputed(block: Block | None) -> bool:
    """Whether the adjusted models were pooled over imputations."""
    return bool(block and block.get("method") == "multiple_imputation" and block.get("imputations"))


def share(part: Any, whole: Any) -> str:
    """'4.0 %' of part in whole; a dash when either is withheld or the whole is 0."""
    if part is None or not whole:
        return MISSING
    return f"{100 * part / whole:.1f} %"


def count_share(part: Any, whole: Any, threshold: int) -> str:
    """'31 (4.0 %)', 'withheld', or the count alone when the whole is withheld."""
    if part is None:
        return WITHHELD
    pct = share(part, whole)
    return count(part, threshold) if pct == MISSING else f"{count(part, threshold)} ({pct})"


def note_text(block: Block) -> str:
    """The block's `note` (the contract) or its `notes` joined (what the analysis writes)."""
    notes = [block.get("note"), *(block.get("notes") or [])]
    return "; ".join(str(n).rstrip(".") for n in notes if n)


def method_sentence(block: Block, threshold: int) -> str:
    """How missing covariates were handled, with the settings, in one or two sentences."""
    complete = count_share(block.get("complete_cases"), block.get("n"), threshold)
    cases = f"{complete} of {count(block.get('n'), threshold)} patients had every covariate."
    if block.get("complete_cases") is None and block.get("n") is None:
        cases = "The number of patients with every covariate is withheld."
    note = note_text(block)
    why = f" ({note})" if note else ""
    if imputed(block):
        return (
            f"Missing covariates were imputed by chained equations (fully conditional "
            f"specification): {block['imputations']} imputations of "
            f"{fixed(block.get('iterations'), 0)} iterations each, seed "
            f"{fixed(block.get('seed'), 0)}, predictive mean matching drawing from "
            f"{fixed(block.get('donors'), 0)} donors. Every adjusted model was fitted on each "
            f"completed dataset and pooled by Rubin's rules{why}. {cases}"
        )
    if block.get("method") == "multiple_imputation":
        said = f"{note[:1].upper()}{note[1:]}" if note else "Nothing was imputed"
        return f"{said}: the adjusted models used the patients with every covariate. {cases}"
    return (
        f"The adjusted models used complete cases{why or ' (the study file asks for them)'}: "
        f"patients missing a covariate were left out of them. {cases}"
    )


def pattern_context(block: Block, threshold: int) -> Context:
    """The missingness patterns: which covariates are missing together, count and %."""
    patterns = list(block.get("patterns") or [])
    named = [str(v.get("covariate")) for v in block.get("variables") or []]
    seen = {str(c) for p in patterns for c in p.get("missing") or []}
    columns = [c for c in named if c in seen] + sorted(seen - set(named))
    rows = [
        {
            "cells": [
                "missing" if c in set(map(str, p.get("missing") or [])) else "observed"
                for c in columns
            ],
            "count": count_share(p.get("count"), block.get("n"), threshold),
            "n_missing": len(p.get("missing") or []),
        }
        for p in patterns
    ]
    return {"columns": [variable_label(c) for c in columns], "rows": rows}


def predictor_words(names: list[str]) -> str:
    """Predictor names of an imputation model in words; site indicators as one 'site'."""
    words: list[str] = []
    for name in map(str, names):
        text = predictor_label(name)
        if text not in words:
            words.append(text)
    return ", ".join(words) if words else MISSING


def in_text(label: str) -> str:
    """A label inside a sentence: 'Age' -> 'age', but 'BMD T-score' stays."""
    return label if label[1:2].isupper() else label[:1].lower() + label[1:]


def predictor_label(name: str) -> str:
    """One predictor in words: a covariate's label, or what an auxiliary variable is."""
    if name in AUXILIARY:
        return AUXILIARY[name]
    if name.startswith("site_"):
        return "site"
    for prefix, words in (
        ("event_", "{} (event)"),
        ("hazard_", "Nelson–Aalen cumulative hazard of {}"),
    ):
        if name.startswith(prefix):
            return words.format(outcome_words(name[len(prefix) :]))
    return in_text(variable_label(name))


def outcome_words(key: str) -> str:
    """'adjacent-level fracture' from an outcome key."""
    label = catalogue.outcome_label(key)
    return label[:1].lower() + label[1:] if label != key else key.replace("_", " ")


def variable_rows(block: Block, threshold: int) -> list[Context]:
    """Per covariate: missing count and %, how it was imputed and from what."""
    rows = []
    for v in block.get("variables") or []:
        missing = v.get("missing")
        rows.append(
            {
                "label": variable_label(v.get("covariate")),
                "missing": WITHHELD if missing is None else count(missing, threshold),
                # a percentage beside a withheld count would give it back
                "percent": MISSING
                if v.get("percent") is None or missing is None
                else f"{v['percent']:.1f} %",
                "how": how_imputed(v, imputed(block)),
                "predictors": predictor_words(list(v.get("predictors") or []))
                if v.get("imputed")
                else "",
            }
        )
    return rows


def how_imputed(variable: Mapping[str, Any], pooled: bool) -> str:
    """'predictive mean matching', 'complete', or why it was not imputed."""
    if variable.get("missing") == 0:
        return "complete"
    if variable.get("imputed"):
        method = str(variable.get("method") or "")
        return METHODS.get(method, method.replace("_", " ") or MISSING)
    if pooled:
        return (
            "not imputed (left out by the study file's variables, or too few values observed: "
            "see the method sentence): its patients are left out"
        )
    return "not imputed: patients missing it are left out of the adjusted models"


def missing_data_section(results: Mapping[str, Any], threshold: int) -> Context:
    """The template's `missing` context (None when results.json has no block)."""
    block = md_block(results)
    if block is None:
        return {"missing": None}
    return {
        "missing": {
            "sentence": method_sentence(block, threshold),
            "imputed": imputed(block),
            "patterns": pattern_context(block, threshold),
            "variables": variable_rows(block, threshold),
            "distributions_div": distributions_div(block),
            "convergence_div": convergence_div(block),
            **comparison(results, threshold),
        }
    }


def distributions_div(block: Block) -> str | None:
    """Observed against imputed values, None when nothing was imputed."""
    fig = distributions_drawn(block)
    return figures.to_div(fig, "mi-distributions") if fig else None


def convergence_div(block: Block) -> str | None:
    """Trace plots of the imputed values' mean and SD, None when no chains were kept."""
    fig = convergence_drawn(block)
    return figures.to_div(fig, "mi-convergence") if fig else None


def distributions_drawn(block: Block) -> go.Figure | None:
    """The observed-against-imputed figure, None when nothing was imputed."""
    shown = block.get("distributions") or {}
    return distribution_figure(shown) if shown else None


def convergence_drawn(block: Block) -> go.Figure | None:
    """The chains' trace plots, None when no chains were kept."""
    chains = block.get("chains")
    return convergence_figure(chains) if chains else None


def missing_data_drawn(results: Mapping[str, Any]) -> list[tuple[str, go.Figure]]:
    """(div id, figure) of the missing-data section's figures, in page order."""
    block = md_block(results)
    if block is None:
        return []
    drawn = [("mi-distributions", distributions_drawn(block)),
             ("mi-convergence", convergence_drawn(block))]  # fmt: skip
    return [(div, fig) for div, fig in drawn if fig is not None]


def model_pairs(cox: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any], Mapping[str, Any]]]:
    """(label, pooled fit, complete-case fit) of every adjusted model of an outcome that has a
    complete-case twin, in the catalogue's order; the piecewise model once per period."""
    pairs = []
    for model in catalogue.MODELS:
        twin = cox.get(f"{model.key}_complete_case")
        if isinstance(twin, Mapping):
            pairs.append((model.label, cox.get(model.key) or {}, twin))
    pieces, twins = cox.get("piecewise") or {}, cox.get("piecewise_complete_case")
    if isinstance(twins, Mapping):
        for period, words in PERIODS.items():
            failed = {"error": "not fitted"}
            pair = (pieces.get(period, failed), twins.get(period, failed))
            pairs.append((f"Piecewise, {words}", *pair))
    return pairs


def pair_row(
    label: str, pooled: Mapping[str, Any], twin: Mapping[str, Any], threshold: int
) -> Context:
    """One line of the side-by-side table."""
    mi = pooled.get("mi") or {}
    return {
        "label": label,
        "primary": label == catalogue.model(catalogue.PRIMARY_MODEL).label,
        "pooled": hr_text(pooled),
        "pooled_n": count(pooled.get("n"), threshold) if "error" not in pooled else MISSING,
        "complete": hr_text(twin),
        "complete_n": count(twin.get("n"), threshold) if "error" not in twin else MISSING,
        "fmi": fixed(mi.get("fmi")),
    }


def comparison(results: Mapping[str, Any], threshold: int) -> Context:
    """The primary outcome's adjusted models with and without imputation, and a sentence."""
    primary = results["study"]["primary_outcome"]
    outcome = results["outcomes"].get(primary) or {}
    cox = outcome.get("cox") or {}
    rows = [pair_row(label, p, t, threshold) for label, p, t in model_pairs(cox)]
    fit = cox.get(catalogue.PRIMARY_MODEL) or {"error": "not fitted"}
    twin = cox.get(f"{catalogue.PRIMARY_MODEL}_complete_case")
    if not rows or twin is None:
        n = count(fit.get("n"), threshold) if "error" not in fit else MISSING
        return {
            "outcome": catalogue.outcome_label(primary),
            "pairs": [],
            "difference": f"The adjusted models used complete cases (primary model: n = {n}): "
            "there are no pooled estimates to set beside them.",
        }
    return {
        "outcome": catalogue.outcome_label(primary),
        "pairs": rows,
        "difference": difference_sentence(fit, twin),
    }


def difference_sentence(pooled: Mapping[str, Any], twin: Mapping[str, Any]) -> str:
    """How far the primary model's pooled HR and CI are from the complete-case ones."""
    label = in_text(catalogue.model(catalogue.PRIMARY_MODEL).forest_label.replace(" (primary)", ""))
    # a missing value reads as 0: not estimable, like a non-positive one
    values = [float(f.get(k) or 0) for f in (pooled, twin) for k in ("hr", "ci_lower", "ci_upper")]
    if "error" in pooled or "error" in twin or any(v <= 0 for v in values):
        return (
            f"The primary model ({label}) cannot be compared with and without imputation: "
            "one of its estimates is not estimable."
        )
    hr, low, high, hr_cc, low_cc, high_cc = values
    change = 100 * (hr / hr_cc - 1)
    moved = (
        "the same as the complete-case one to one decimal"
        if abs(change) < 0.05
        else f"{abs(change):.1f} % {'higher' if change > 0 else 'lower'} than the complete-case one"
    )
    return (
        f"In the primary model ({label}) the hazard ratio {pooled_over(pooled) or 'pooled'}, "
        f"{hr_text(pooled)}, is {moved}, {hr_text(twin)}{ci_words(low, high, low_cc, high_cc)}."
    )


def ci_words(low: float, high: float, low_cc: float, high_cc: float) -> str:
    """How the pooled CI's width compares with the complete-case one's, on the log scale."""
    if not high_cc > low_cc:
        return ""
    change = 100 * (math.log(high / low) / math.log(high_cc / low_cc) - 1)
    if abs(change) < 0.5:
        return "; its 95 % confidence interval is about as wide"
    wider = "wider" if change > 0 else "narrower"
    return f"; its 95 % confidence interval is {abs(change):.0f} % {wider} (log scale)"


def table_one(results: Mapping[str, Any], threshold: int) -> Context:
    """Table 1's rows, each covariate with missing values followed by a 'missing' row per arm,
    and the footnote on how the adjusted models handle them."""
    block = md_block(results)
    covariates = set(results["study"].get("covariates") or [])
    cohort = results["cohort"]
    rows = []
    for row in results["table1"]:
        name = TABLE1_COVARIATES.get(row["variable"], row["variable"])
        cells = [row[arm] for arm in ARMS]
        if name not in covariates or all(c.get("missing") == 0 for c in cells):
            rows.append({**row, "missing_row": None})
            continue
        shown = {arm: {**row[arm], "missing": 0} for arm in ARMS}  # no brackets: a row instead
        rows.append(
            {
                **row,
                **shown,
                "missing_row": {
                    arm: count_share(
                        row[arm].get("missing"),
                        arm_size(row[arm], cohort.get(f"n_{arm}")),
                        threshold,
                    )
                    for arm in ARMS
                },
            }
        )
    return {"table1": rows, "table1_note": table_one_note(block)}


def arm_size(cell: Mapping[str, Any], n_arm: Any) -> Any:
    """The arm's patients (observed plus missing), None when withheld."""
    if cell.get("n") is not None and cell.get("missing") is not None:
        return cell["n"] + cell["missing"]
    return n_arm


def table_one_note(block: Block | None) -> str:
    """How the adjusted models handle the missing values Table 1 counts."""
    if block is None:
        return ""
    if not imputed(block):
        return (
            "The adjusted models leave out patients missing a covariate (complete case"
            f"{', ' + note_text(block) if note_text(block) else ''})."
        )
    done = [
        f"{in_text(variable_label(v.get('covariate')))} by {how_imputed(v, True)}"
        for v in block.get("variables") or []
        if v.get("imputed")
    ]
    return (
        f"The adjusted models impute {', '.join(done) or 'the missing covariates'} "
        f"(chained equations, m = {block['imputations']} imputations, Rubin's rules); "
        "their complete-case estimates are under Missing data."
    )
