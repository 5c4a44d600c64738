"""The report's sections: what each part of the page shows, built from results.json. Pure."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from registry import catalogue
from registry.constants import DAYS_PER_YEAR
from registry.report import figures
from registry.report import format as fmt
from registry.report.figures.style import ARM_LABELS, variable_label
from registry.report.format import MISSING, YEARS, count, fixed, hr_text, percent, pvalue
from registry.report.missing_data import missing_data_section, table_one
from registry.report.target_trial import target_trial_section, trial_headline
from registry.result_types import (
    ChiSquare,
    CIFCurve,
    CohortSummary,
    HRFit,
    IPTWFit,
    KMCurve,
    ModelError,
    Num,
    OutcomeResults,
    PHTest,
    ProChange,
    ProResults,
    Results,
    hr_fit,
)

Context = dict[str, Any]  # what a template part is given (text, divs, rows): not a result
Drawn = tuple[str, go.Figure]  # a figure of the page with its div id


def sections(results: Results, threshold: int) -> Context:
    """The template's context."""
    outcomes = results["outcomes"]
    study = results["study"]
    # a study may leave its primary outcome out of `outcomes` (the default one, say)
    primary = outcomes.get(study["primary_outcome"])
    return {
        "study": study,
        "cohort": results["cohort"],
        "prov": results["provenance"],
        "threshold": threshold,
        "years": YEARS,
        "headline": headline(results, threshold),
        **target_trial_section(results, threshold),
        "flow": results["cohort"]["attrition"],
        "policy": [r for r in results["cohort"]["data_policy"] if r["rows"] != 0],
        "follow_up": follow_up(results["cohort"]),
        **landmark_counts(primary),
        **table_one(results, threshold),
        "km_figures": [km_item(n, o, threshold) for n, o in outcomes.items()],
        "km_extra": km_extra(study["primary_outcome"], primary, threshold),
        "cif_figures": [cif_item(n, o, threshold) for n, o in outcomes.items()],
        "forest_div": embed(forest_drawn(outcomes, threshold)),
        "hr_rows": hr_rows(outcomes, threshold),
        **missing_data_section(results, threshold),
        **diagnostics(primary, outcomes, threshold),
        **pro_section(results["pro"], threshold),
        "quality": results["data_quality"],
        "quality_div": quality_div(quality_rows(results), threshold),
    }


def headline(results: Results, threshold: int) -> Context:
    """The question answered in three sentences."""
    cohort = results["cohort"]
    outcome = results["outcomes"].get(results["study"]["primary_outcome"])
    no_outcome: ModelError = {"error": "the primary outcome was not analysed"}
    fit = hr_fit(outcome, catalogue.PRIMARY_MODEL) if outcome else no_outcome
    cif = outcome["cif"] if outcome else {"treated": no_outcome, "untreated": no_outcome}
    return {
        "cohort": (
            f"{count(cohort['n'], threshold)} eligible patients with an osteoporotic vertebral "
            f"compression fracture: {count(cohort['n_treated'], threshold)} treated with "
            f"{' or '.join(results['study']['treatment_procedures'])}, "
            f"{count(cohort['n_untreated'], threshold)} managed conservatively."
        ),
        "primary": f"HR {hr_text(fit)}"
        + ("" if "error" in fit else f", p = {pvalue(fit['p'])}")
        + (f", {fmt.pooled_over(fit)}" if fmt.pooled_over(fit) else ""),
        "plain": plain_words(fit, results["study"]["primary_outcome"]),
        "cif_treated": five_year(cif["treated"]),
        "cif_untreated": five_year(cif["untreated"]),
        "trial": trial_headline(results),
    }


def plain_words(fit: HRFit | ModelError, outcome: str) -> str:
    """What the primary estimate of the primary outcome means, without jargon."""
    if "error" in fit or fit["ci_lower"] is None or fit["ci_upper"] is None:
        return "The primary model could not be estimated on these data."
    known = {o.key: o.short_label for o in catalogue.OUTCOMES}
    fractures = known.get(outcome, f"{outcome} fractures")
    if fit["ci_lower"] > 1:
        return f"Treated patients had a higher rate of {fractures}."
    if fit["ci_upper"] < 1:
        return f"Treated patients had a lower rate of {fractures}."
    return (
        f"The data show no clear difference in the rate of {fractures} between "
        "treated and untreated patients: the confidence interval includes no effect (HR 1)."
    )


def five_year(cif: CIFCurve | ModelError) -> str:
    """Cumulative incidence at five years with its CI, as a percentage."""
    return percent(None if "error" in cif else cif["at_years"]["5"])


def follow_up(cohort: CohortSummary) -> str:
    """Median follow-up with CI, in years."""
    fu = cohort.get("median_follow_up_days")  # none on an empty cohort
    if fu is None or fu["median"] is None:
        return "not reached"
    return f"{fu['median'] / DAYS_PER_YEAR:.1f} years"


def landmark_counts(outcome: OutcomeResults | None) -> Context:
    """Size of the landmark cohort of the primary outcome."""
    if outcome is None:
        return {"landmark_n": None, "landmark_treated": None}
    fit, km = outcome["cox"]["landmark"], outcome["km_landmark"]["treated"]
    return {
        "landmark_n": None if "error" in fit else fit["n"],
        "landmark_treated": None if "error" in km else km["n"],
    }


def p_of(test: ChiSquare | ModelError) -> Num:
    """The p-value of a test, None if it could not be computed."""
    return None if "error" in test else test["p"]


def km_drawn(name: str, outcome: OutcomeResults, threshold: int) -> Drawn:
    """One outcome's KM figure with its div id."""
    fig = figures.km_figure(outcome["km"], title=catalogue.outcome_label(name), threshold=threshold)
    return f"km-{name.replace('_', '-')}", fig


def km_item(name: str, outcome: OutcomeResults, threshold: int) -> Context:
    """One outcome's KM figure, caption and table at 1-5 years."""
    rows = {}
    for arm in ("treated", "untreated"):
        km = outcome["km"][arm]
        if "error" in km:
            continue
        at = {y: percent(km["survival_at_years"][y]) for y in YEARS}
        rows[ARM_LABELS[arm]] = {"at_years": at, "median": median_years(km)}
    return {
        "caption": catalogue.outcome_label(name),
        "div": embed(km_drawn(name, outcome, threshold)),
        "rows": rows,
        "logrank": p_of(outcome["logrank"]),
        "logrank_site": p_of(outcome["logrank_stratified_site"]),
    }


def median_years(km: KMCurve) -> str:
    """Median survival time with its CI, in years."""
    median = km["median_days"]
    if median is None:
        return "not reached"
    low, high = (None if d is None else d / DAYS_PER_YEAR for d in km["median_ci"])
    return f"{median / DAYS_PER_YEAR:.1f} ({fixed(low, 1)}–{fixed(high, 1)})"


def km_extra(name: str, outcome: OutcomeResults | None, threshold: int) -> list[Context]:
    """The primary outcome's landmark curves and IPT-weighted landmark curves."""
    return [
        {"caption": caption, "div": embed(drawn)}
        for caption, drawn in km_extra_items(name, outcome, threshold)
    ]


def km_extra_drawn(name: str, outcome: OutcomeResults | None, threshold: int) -> list[Drawn]:
    """The landmark and IPT-weighted landmark KM figures of the primary outcome, if fitted."""
    return [drawn for _, drawn in km_extra_items(name, outcome, threshold)]


def km_extra_items(
    name: str, outcome: OutcomeResults | None, threshold: int
) -> list[tuple[str, Drawn]]:
    """(caption, (div id, figure)) of the landmark and IPT-weighted landmark curves."""
    if outcome is None:
        return []
    label = catalogue.outcome_label(name)
    iptw = outcome["cox"]["iptw"]
    weighted = None if "error" in iptw else iptw["weighted_km"]
    slug = name.replace("_", "-")
    items = [
        ("Landmark cohort (time from the landmark)", outcome["km_landmark"], "km-landmark"),
        ("IPT-weighted landmark cohort", weighted, "km-weighted"),
    ]
    return [
        (
            f"{label}: {caption}",
            (
                f"{prefix}-{slug}",
                figures.km_figure(curves, title=f"{label}: {caption}", threshold=threshold),
            ),
        )
        for caption, curves, prefix in items
        if curves
    ]


def cif_drawn(name: str, outcome: OutcomeResults, threshold: int) -> Drawn:
    """One outcome's cumulative-incidence figure with its div id."""
    fig = figures.cif_figure(
        outcome["cif"], outcome["cif_death"], title=catalogue.outcome_label(name),
        threshold=threshold, km_by_arm_for_risk_table=outcome["km"],
    )  # fmt: skip
    return f"cif-{name.replace('_', '-')}", fig


def cif_item(name: str, outcome: OutcomeResults, threshold: int) -> Context:
    """One outcome's cumulative-incidence figure and its values at 1-5 years."""
    rows = {
        ARM_LABELS[arm]: {y: percent(cif["at_years"][y]) for y in YEARS}
        for arm, cif in outcome["cif"].items()
        if "error" not in cif
    }
    return {
        "caption": catalogue.outcome_label(name),
        "div": embed(cif_drawn(name, outcome, threshold)),
        "rows": rows,
        "gray": p_of(outcome["gray_test"]),
    }


def hr_rows(outcomes: dict[str, OutcomeResults], threshold: int) -> list[Context]:
    """The hazard-ratio table: every model of every outcome."""
    rows = []
    for name, outcome in outcomes.items():
        for model in catalogue.MODELS:
            fit = hr_fit(outcome, model.key)
            fitted = None if "error" in fit else fit
            rows.append({
                "outcome": catalogue.outcome_label(name), "label": model.label,
                "estimate": hr_text(fit), "p": pvalue(fitted and fitted["p"]),
                "n": count(fitted["n"], threshold) if fitted else MISSING,
                "events": count(fitted["events"], threshold) if fitted else MISSING,
                "primary": model.primary,
                "pooled": fmt.pooled_over(fitted) if fitted else "",
            })  # fmt: skip
    return rows


def diagnostics(
    primary: OutcomeResults | None, outcomes: dict[str, OutcomeResults], threshold: int
) -> Context:
    """PH test, Schoenfeld plots, piecewise HRs and RMST, propensity overlap and balance."""
    missing: ModelError = {"error": "the primary outcome was not analysed"}
    ph = primary["ph_test"] if primary else missing
    fitted_ph = None if "error" in ph else ph
    iptw_fit = primary["cox"]["iptw"] if primary else missing
    iptw = None if "error" in iptw_fit else iptw_fit
    divs = {div: embed((div, fig)) for div, fig in diagnostics_drawn(primary, threshold)}
    return {
        "ph_table": [
            {**row, "term": variable_label(row["term"]) if row["term"] != "GLOBAL" else "Global"}
            for row in (fitted_ph["table"] if fitted_ph else [])
        ],
        "ph_verdict": ph_verdict(ph),
        # pooled over imputations the primary model has no one set of residuals: the test
        # is its complete-case twin's
        "ph_complete_case": primary is not None
        and "time_varying_adjusted_complete_case" in primary["cox"],
        "schoenfeld_divs": [d for k, d in divs.items() if k.startswith("schoenfeld-")],
        "piecewise": [piecewise_row(n, o) for n, o in outcomes.items()],
        "weights_note": weights_note(iptw),
        "ps_div": divs["ps-overlap"],
        "weights_div": divs["weights"],
        "love_div": divs["love"],
    }


def diagnostics_drawn(primary: OutcomeResults | None, threshold: int) -> list[Drawn]:
    """The primary outcome's Schoenfeld plots, propensity overlap, weights and balance."""
    missing: ModelError = {"error": "the primary outcome was not analysed"}
    ph = primary["ph_test"] if primary else missing
    iptw_fit = primary["cox"]["iptw"] if primary else missing
    iptw = None if "error" in iptw_fit else iptw_fit
    smooth = {} if "error" in ph else ph.get("smooth", {})
    drawn: list[Drawn] = [
        (f"schoenfeld-{t}", figures.schoenfeld_figure(s, term=t, threshold=threshold))
        for t, s in smooth.items()
    ]
    ps = iptw["ps_histogram"] if iptw else None
    weights = iptw["weights_histogram"] if iptw else None
    return [
        *drawn,
        ("ps-overlap", figures.propensity_figure(ps, threshold=threshold)),
        ("weights", figures.weights_figure(weights, threshold=threshold)),
        ("love", figures.love_plot(iptw["balance"] if iptw else [])),
    ]


def ph_verdict(ph: PHTest | ModelError) -> str:
    """One sentence on proportional hazards."""
    if "error" in ph or ph["global_p"] is None:
        return "The proportional-hazards test could not be computed."
    if ph["violated"]:
        return (
            f"The global test rejects proportional hazards (p = {pvalue(ph['global_p'])}): read "
            "the piecewise hazard ratios and the restricted mean time below."
        )
    return f"No evidence against proportional hazards (global p = {pvalue(ph['global_p'])})."


def piecewise_row(name: str, outcome: OutcomeResults) -> Context:
    """Piecewise HRs and the RMST difference of one outcome."""
    pieces, rmst = outcome["cox"]["piecewise"], outcome["rmst"]
    failed: ModelError = {"error": "not fitted"}
    early, late = (pieces["0-1y"], pieces["1-5y"]) if "error" not in pieces else (failed, failed)
    missing = "error" in rmst or rmst["difference_days"] is None
    diff = (
        "not estimable"
        if "error" in rmst or missing
        else estimate(rmst["difference_days"], rmst["ci_lower"], rmst["ci_upper"], 0)
    )
    return {
        "outcome": catalogue.outcome_label(name),
        "early": hr_text(early),
        "late": hr_text(late),
        "rmst": diff,
    }


def mean_sd(mean: Num, sd: Num) -> str:
    """'mean ± SD' of a PRO visit."""
    return f"{fixed(mean, 1)} ± {fixed(sd, 1)}"


def estimate(value: Num, lower: Num, upper: Num, digits: int) -> str:
    """'value (lower to upper)' with fixed decimals; the value alone when the interval is
    withheld (it would give back a withheld n) or not estimable."""
    if lower is None or upper is None:
        return fixed(value, digits)
    return f"{fixed(value, digits)} ({fixed(lower, digits)} to {fixed(upper, digits)})"


def weights_note(iptw: IPTWFit | None) -> str:
    """The weight distribution in one sentence."""
    if iptw is None:
        return "Weights were not estimated."
    w = iptw["weights"]
    return (
        f"Stabilised weights: median {w['median']:.2f}, 1st–99th centile {w['p01']:.2f}–"
        f"{w['p99']:.2f}, maximum {w['max']:.2f}; effective sample size "
        f"{w['ess_treated']:,.0f} treated and {w['ess_untreated']:,.0f} not treated. "
        f"Largest |SMD| after weighting: {fixed(iptw['max_abs_smd_after'])} (target < 0.1)."
    )


def pro_changes(pro: ProResults) -> list[tuple[str, str, ProChange]]:
    """(instrument, arm, summary) of the instruments and arms with assessments."""
    found: list[tuple[str, str, ProChange]] = []
    for instrument, by_arm in (("VAS", pro.get("VAS")), ("ODI", pro.get("ODI"))):
        if by_arm is None:
            continue
        for arm, r in (("treated", by_arm.get("treated")), ("untreated", by_arm.get("untreated"))):
            if r:
                found.append((instrument, arm, r))
    return found


def pro_section(pro: ProResults, threshold: int) -> Context:
    """Before/after table rows and the PRO figures."""
    rows = []
    for instrument, arm, r in pro_changes(pro):
        rows.append({
            "instrument": instrument, "arm": ARM_LABELS[arm], "n": count(r["n"], threshold),
            "baseline": mean_sd(r["baseline_mean"], r["baseline_sd"]),
            "followup": mean_sd(r["followup_mean"], r["followup_sd"]),
            "change": estimate(r["change_mean"], r["change_ci_lower"], r["change_ci_upper"], 1),
            "p_t": pvalue(r["p_ttest"]), "p_w": pvalue(r["p_wilcoxon"]),
        })  # fmt: skip
    return {"pro_rows": rows, "pro_divs": [embed(d) for d in pro_drawn(pro, threshold)]}


def pro_drawn(pro: ProResults, threshold: int) -> list[Drawn]:
    """Box plots and mean trajectories of VAS and ODI."""
    drawn: list[Drawn] = []
    quantiles = pro["quantiles"]
    for instrument, quartiles in (("VAS", quantiles.get("VAS")), ("ODI", quantiles.get("ODI"))):
        box = figures.pro_box_figure(quartiles or {}, instrument=instrument, threshold=threshold)
        line = figures.trajectory_figure(
            pro["trajectories"], instrument=instrument, threshold=threshold
        )
        drawn += [(f"pro-{instrument.lower()}-box", box),
                  (f"pro-{instrument.lower()}-trajectory", line)]  # fmt: skip
    return drawn


def quality_div(rows: list[Context], threshold: int) -> str:
    """The data-quality bars, or one sentence when there is nothing to show."""
    drawn = quality_drawn(rows, threshold)
    if not drawn:
        return '<p class="note">No quarantined rows and no cross-table check violations.</p>'
    return embed(drawn[0])


def quality_drawn(rows: list[Context], threshold: int) -> list[Drawn]:
    """The data-quality bars, none when nothing was quarantined or violated."""
    if all(row["count"] == 0 for row in rows):
        return []
    return [("quality", figures.quality_figure(rows, threshold=threshold))]


def forest_drawn(outcomes: dict[str, OutcomeResults], threshold: int) -> Drawn:
    """The forest plot of every model of every outcome."""
    return "forest", figures.forest_figure(outcomes, threshold=threshold)


def embed(drawn: Drawn) -> str:
    """A (div id, figure) pair as the page's HTML fragment."""
    div, fig = drawn
    return figures.to_div(fig, div)


def quality_rows(results: Results) -> list[Context]:
    """Bars of the data-quality figure: quarantined lines by file and rule, check violations."""
    quality = results["data_quality"]
    rows = [
        {"label": f"{q['file_name']}: {q['rule']} ({q['column_name']})", "count": q["n_rows"]}
        for q in quality["quarantine"]
    ]
    rows += [
        {"label": f"check: {c['check'].replace('_', ' ')}", "count": c["violations"]}
        for c in quality["checks"]
    ]
    return rows
