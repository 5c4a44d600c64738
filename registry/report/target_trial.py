"""The report's target-trial section and headline, from results.json's `target_trial` block.

The block is the published one (rounded, small counts withheld as None); a not-estimable
outcome keeps every key with nulls and empty lists. Results without the block (an older
results.json) give a section that says so and the headline of before. Pure; every string
here is plain text that the template escapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import plotly.graph_objects as go

from registry import catalogue
from registry.report import figures
from registry.report.figures.target_trial import STRATEGIES, balance_figure, strategy_figure
from registry.report.format import MISSING, count, fixed, hr_text, number, percent

Context = dict[str, Any]
Block = Mapping[str, Any]
MINUS = "\N{MINUS SIGN}"


def trial_block(results: Mapping[str, Any]) -> Block | None:
    """The published `target_trial` block, None when results.json has none."""
    block = cast(Mapping[str, Any], results).get("target_trial")
    return block if isinstance(block, Mapping) and block.get("outcomes") is not None else None


def grace_text(days: int | None) -> str:
    """A grace period in words: 56 -> '8 weeks', 30 -> '30 days'."""
    if days is None:
        return "the grace period"
    return f"{days // 7} weeks" if days % 7 == 0 and days >= 14 else f"{days} days"


def strategy_labels(results: Mapping[str, Any], block: Block) -> dict[str, str]:
    """'Vertebroplasty within 8 weeks' and 'No vertebroplasty' from the study's procedures."""
    procedure = " or ".join(results["study"].get("treatment_procedures") or ["treatment"])
    return {
        "treat": f"{procedure.capitalize()} within {grace_text(block.get('grace_days'))}",
        "no_treat": f"No {procedure}",
    }


def one_fracture(outcome: str) -> str:
    """'a new adjacent-level fracture': the catalogue's plural running-text label, singular."""
    known = {o.key: o.short_label for o in catalogue.OUTCOMES}
    label = known.get(outcome, f"{outcome.replace('_', ' ')} fractures")
    return f"a {label[:-1]}" if label.endswith("fractures") else label


def signed(value: float | None, digits: int = 1) -> str:
    """A difference in percentage points with its sign ('+0.5', '−1.9'), '–' when missing."""
    if value is None:
        return MISSING
    return f"{100 * value:+.{digits}f}".replace("-", MINUS)


def points(value: float | None, digits: int = 1) -> str:
    """Percentage points without a plus sign ('2.8', '−1.9')."""
    return MISSING if value is None else f"{100 * value:.{digits}f}".replace("-", MINUS)


def risk_text(risk: float | None, ci: list[float | None] | None) -> str:
    """'16.0 % (13.1–19.2)', the risk alone when its interval is missing, '–' when missing."""
    if risk is None:
        return MISSING
    if not ci or ci[0] is None or ci[1] is None:
        return percent(risk)
    return f"{percent(risk)} ({100 * ci[0]:.1f}–{100 * ci[1]:.1f})"


def difference_text(rd: Mapping[str, Any] | None) -> str:
    """'+0.5 (−1.9 to 2.8)' in percentage points."""
    rd = rd or {}
    if rd.get("estimate") is None:
        return MISSING
    if rd.get("ci_lower") is None or rd.get("ci_upper") is None:
        return signed(rd["estimate"])
    return f"{signed(rd['estimate'])} ({points(rd['ci_lower'])} to {points(rd['ci_upper'])})"


def ratio_text(rr: Mapping[str, Any] | None) -> str:
    """'1.03 (0.88–1.19)', '–' when missing."""
    rr = rr or {}
    fit = {"hr": rr.get("estimate"), "ci_lower": rr.get("ci_lower"), "ci_upper": rr.get("ci_upper")}
    if fit["hr"] is None:
        return MISSING
    return hr_text(fit) if hr_text(fit) != "not estimable" else fixed(fit["hr"])


def year_rows(outcome: Block, years: list[int]) -> tuple[list[Context], bool]:
    """Risks per strategy, RD and RR at each year; and whether any value is missing."""
    rows, missing, by = [], False, outcome["strategies"]
    for year in years:
        y = str(year)
        cells = {s: risk_text(by[s]["risk"].get(y), by[s]["ci"].get(y)) for s in STRATEGIES}
        row = {"year": year, **cells,
               "rd": difference_text(outcome["risk_difference"].get(y)),
               "rr": ratio_text(outcome["risk_ratio"].get(y))}  # fmt: skip
        missing = missing or any(v == MISSING for v in row.values())
        rows.append(row)
    return rows, missing


def margin_text(margin: float | None, scale: str) -> str:
    """'the 5-point margin' or 'the margin of 1.25'."""
    if margin is None:
        return "the margin"
    if scale == "ratio":
        return f"the margin of {margin:.2f}"
    return f"the {100 * margin:g}-point margin"


def ni_sentence(outcome: Block, labels: Mapping[str, str], margin_year: int = 5) -> str:
    """The non-inferiority verdict in one sentence."""
    ni = outcome["non_inferiority"]
    year, bound, scale = ni.get("at_year") or margin_year, ni.get("upper_bound"), ni.get("scale")
    if ni.get("verdict") == "not estimable" or bound is None:
        why = outcome.get("reason") or f"the {year}-year risk difference could not be estimated"
        return f"Non-inferiority at {year} years: not estimable ({why})."
    what = "risk ratio" if scale == "ratio" else "risk difference"
    value = f"{bound:.2f}" if scale == "ratio" else f"{points(bound)} percentage points"
    margin = margin_text(ni.get("margin"), scale or "difference")
    treat = labels["treat"][0].lower() + labels["treat"][1:]
    if ni.get("verdict") == "non-inferior":
        return (
            f"At {year} years the upper 95 % bound of the {what} is {value}, below {margin}: "
            f"{treat} is non-inferior."
        )
    return (
        f"At {year} years the upper 95 % bound of the {what} is {value}, not below {margin}: "
        f"non-inferiority of {treat} is not shown."
    )


def e_value_sentence(outcome: Block) -> str:
    """The E-value and what it means, in one line."""
    ev = outcome["e_value"]
    if ev.get("point") is None:
        return "E-value: not estimable."
    basis = ev.get("basis") or "risk ratio"
    limit = "" if ev.get("ci") is None else f" ({fixed(ev['ci'])} for the confidence limit)"
    return (
        f"E-value {fixed(ev['point'])}{limit}: an unmeasured confounder would have to be "
        f"associated with both the strategy and the outcome by a risk ratio of at least this "
        f"much each, beyond the measured covariates, to explain away the {basis}."
    )


def hr_line(outcome: Block, labels: Mapping[str, str]) -> str:
    """The weighted cause-specific hazard ratio, a secondary summary."""
    hr = outcome["hazard_ratio"]
    fit = {"hr": hr.get("estimate"), "ci_lower": hr.get("ci_lower"), "ci_upper": hr.get("ci_upper")}
    return (
        f"Secondary summary: weighted cause-specific hazard ratio, {labels['treat'].lower()} "
        f"versus {labels['no_treat'].lower()}, {hr_text(fit)}."
    )


WEIGHT_STATS = ("mean", "sd", "min", "p99", "max")
CENSOR_COUNTS = ("at_risk", "censored")


def interval_cells(row: Mapping[str, Any], labels: Mapping[str, str]) -> Context:
    """'days 0–7' and the strategy's label of a diagnostics row."""
    strategy = str(row.get("strategy"))
    return {
        "interval": f"days {number(row.get('start'), '.0f')}–{number(row.get('stop'), '.0f')}",
        "strategy": labels.get(strategy, strategy),
    }


def diagnostics_context(outcome: Block, labels: Mapping[str, str], threshold: int) -> Context:
    """Weights and censored clones by interval and strategy, balance, positivity, warnings."""
    diag = outcome["diagnostics"]
    weights = [
        {**interval_cells(r, labels), **{k: fixed(r.get(k)) for k in WEIGHT_STATS}}
        for r in diag.get("weights") or []
    ]
    censored = [
        {**interval_cells(r, labels), **{k: count(r.get(k), threshold) for k in CENSOR_COUNTS}}
        for r in diag.get("censored") or []
    ]
    return {
        "weights": weights,
        "truncation": truncation_sentence(diag.get("truncation") or {}),
        "censored": censored,
        "positivity": positivity_sentence(diag.get("positivity") or {}),
        "warnings": [str(w) for w in diag.get("warnings") or []],
        "has_balance": bool(diag.get("balance")),
    }


def truncation_sentence(trunc: Mapping[str, Any]) -> str:
    """Where weights were capped and how many."""
    if trunc.get("cap") is None:
        return "Weights were not estimated."
    if (trunc.get("percentile") or 0) >= 100:
        largest = fixed(trunc["cap"])
        return f"Weights were not truncated (the protocol's setting); the largest is {largest}."
    return (
        f"Weights truncated at the {fixed(trunc.get('percentile'), 0)}th percentile "
        f"(cap {fixed(trunc['cap'])}): {percent(trunc.get('share_capped'))} of "
        "clone-intervals capped."
    )


def positivity_sentence(pos: Mapping[str, Any]) -> str:
    """The share of patients with a treatment probability inside the bounds."""
    if pos.get("share_within") is None:
        return "Positivity was not assessed."
    low, high = (pos.get("bounds") or [None, None])[:2]
    return (
        f"Positivity: {percent(pos['share_within'])} of patients had a probability of treatment "
        f"between {fixed(low)} and {fixed(high)} "
        f"(range {fixed(pos.get('min'))}–{fixed(pos.get('max'))})."
    )


def slug(name: str) -> str:
    """An outcome key as a div-id part."""
    return name.replace("_", "-")


def outcome_item(
    name: str,
    outcome: Block,
    block: Block,
    labels: Mapping[str, str],
    *,
    primary: bool,
    threshold: int,
) -> Context:
    """Everything the section shows of one outcome (the curves of the primary one only)."""
    settings = block.get("settings") or {}
    years = list(settings.get("years") or [1, 2, 5])
    rows, missing = year_rows(outcome, years)
    estimated = outcome.get("status") == "estimated"
    shown = shows_curves(outcome, primary)
    return {
        "name": name, "label": catalogue.outcome_label(name), "estimated": estimated,
        "reason": str(outcome.get("reason") or "no reason given").rstrip("."),
        "patients": count(outcome.get("patients"), threshold),
        "div": curves_div(name, outcome, labels, threshold) if shown else None,
        "rows": rows, "missing": missing,
        "ni": ni_sentence(outcome, labels, settings.get("margin_year") or 5),
        "e_value": e_value_sentence(outcome),
        "hr": hr_line(outcome, labels), "bootstrap": bootstrap_text(outcome.get("bootstrap") or {}),
        "imputation": imputation_sentence(outcome, years),
        "diagnostics": diagnostics_context(outcome, labels, threshold),
        "love_div": love_div(name, outcome["diagnostics"].get("balance") or []),
    }  # fmt: skip


def imputation_sentence(outcome: Block, years: list[int]) -> str | None:
    """How the covariates' imputation entered the trial, with the complete cases' risk
    difference at the last year beside the pooled one; None without imputation."""
    mi = outcome.get("multiple_imputation") or {}
    if not mi.get("imputations"):
        return None
    year = str(years[-1])
    pooled = (outcome.get("risk_difference") or {}).get(year) or {}
    cc = outcome.get("complete_case") or {}
    cc_rd = (cc.get("risk_difference") or {}).get(year) if cc.get("status") == "estimated" else None
    text = (
        f"Missing covariates imputed: the weights were fitted on each of {mi['imputations']} "
        "completed datasets and the risks pooled (complementary log-log scale); each bootstrap "
        "replicate uses one completed dataset in turn."
    )
    if pooled.get("estimate") is not None and cc_rd is not None:
        text += (
            f" At {year} years the risk difference is {signed(pooled['estimate'])} points pooled"
            f" and {signed(cc_rd)} points on complete cases (point estimate only)."
        )
    return text


def shows_curves(outcome: Block, primary: bool) -> bool:
    """Whether the section draws an outcome's strategy curves (the primary one, if estimated)."""
    return primary and outcome.get("status") == "estimated"


def curves_div(name: str, outcome: Block, labels: Mapping[str, str], threshold: int) -> str:
    """The strategy curves with the clones at risk, embedded."""
    return figures.to_div(curves_figure(name, outcome, labels, threshold), f"tt-{slug(name)}")


def curves_figure(
    name: str, outcome: Block, labels: Mapping[str, str], threshold: int
) -> go.Figure:
    """The strategy curves with the clones at risk."""
    title = f"{catalogue.outcome_label(name)}: risk under each strategy, death competing"
    return strategy_figure(outcome["strategies"], labels=labels, title=title, threshold=threshold)


def love_div(name: str, balance: list[Mapping[str, Any]]) -> str | None:
    """The balance of the clones as a love plot, None without a balance table."""
    return figures.to_div(balance_figure(balance), f"tt-love-{slug(name)}") if balance else None


def target_trial_drawn(results: Mapping[str, Any], threshold: int) -> list[tuple[str, go.Figure]]:
    """(div id, figure) of the section's figures in page order: the primary outcome's curves,
    then each outcome's balance of the clones."""
    block = trial_block(results)
    if block is None:
        return []
    labels = strategy_labels(results, block)
    drawn = []
    for i, (name, outcome) in enumerate(ordered(block)):
        if shows_curves(outcome, i == 0):
            drawn.append((f"tt-{slug(name)}", curves_figure(name, outcome, labels, threshold)))
        if balance := outcome["diagnostics"].get("balance") or []:
            drawn.append((f"tt-love-{slug(name)}", balance_figure(balance)))
    return drawn


def bootstrap_text(boot: Mapping[str, Any]) -> str:
    """'198 of 200 bootstrap replicates (seed 20260101)'."""
    if not boot.get("replicates"):
        return "no bootstrap (point estimates only)"
    succeeded, seed = number(boot.get("succeeded"), ".0f"), number(boot.get("seed"), ".0f")
    return f"{succeeded} of {boot['replicates']} bootstrap replicates succeeded (seed {seed})"


def ordered(block: Block) -> list[tuple[str, Block]]:
    """The outcomes, the primary first."""
    primary = block.get("primary_outcome")
    outcomes = block["outcomes"]
    return sorted(outcomes.items(), key=lambda kv: kv[0] != primary)


def target_trial_section(results: Mapping[str, Any], threshold: int) -> Context:
    """The template's `trial` context: protocol rows, one item per outcome (primary first)."""
    block = trial_block(results)
    if block is None:
        return {"trial": None}
    labels = strategy_labels(results, block)
    items = [
        outcome_item(n, o, block, labels, primary=i == 0, threshold=threshold)
        for i, (n, o) in enumerate(ordered(block))
    ]
    return {
        "trial": {
            "protocol": list(block.get("protocol") or []),
            "labels": labels,
            "settings": block.get("settings") or {},
            "primary": items[0] if items else None,
            "others": items[1:],
        }
    }


def trial_headline(results: Mapping[str, Any]) -> Context:
    """The headline's lead: the primary outcome's risks at the margin year and their
    difference; or why there is none (None when results.json has no target trial)."""
    block = trial_block(results)
    if block is None:
        return {"lead": None, "why_not": None}
    primary = block.get("primary_outcome") or results["study"]["primary_outcome"]
    outcome = block["outcomes"].get(primary)
    if outcome is None:
        return {"lead": None, "why_not": f"the {primary} outcome was not emulated."}
    year = str((block.get("settings") or {}).get("margin_year", 5))
    labels = strategy_labels(results, block)
    risks = [outcome["strategies"][s]["risk"].get(year) for s in STRATEGIES]
    rd = outcome["risk_difference"].get(year) or {}
    if outcome.get("status") != "estimated" or None in risks or rd.get("estimate") is None:
        why = outcome.get("reason") or f"the {year}-year risks are beyond the follow-up"
        return {"lead": None, "why_not": f"{why}."}
    ci = (
        f", 95 % CI {points(rd['ci_lower'])} to {points(rd['ci_upper'])}"
        if rd.get("ci_lower") is not None and rd.get("ci_upper") is not None
        else ""
    )
    lead = (
        f"{labels['treat']}: {year}-year risk of {one_fracture(primary)} {percent(risks[0])} vs "
        f"{percent(risks[1])} without (difference {signed(rd['estimate'])} points{ci})."
    )
    return {"lead": lead, "why_not": None}
