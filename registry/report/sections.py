"""The report's sections: what each part of the page shows, built from results.json. Pure."""

from __future__ import annotations

from typing import Any

from registry.report import figures
from registry.report.figures.style import variable_label
from registry.report.format import MODELS, NAMES, YEARS, count, fixed, hr_text, percent, pvalue

Result = dict[str, Any]
ARM_LABELS = {"treated": "Treated", "untreated": "Untreated"}


def sections(results: Result, threshold: int) -> Result:
    """The template's context."""
    outcomes: Result = results["outcomes"]
    study: Result = results["study"]
    primary = study["primary_outcome"]
    return {
        "study": study,
        "cohort": results["cohort"],
        "prov": results["provenance"],
        "threshold": threshold,
        "years": YEARS,
        "headline": headline(results, threshold),
        "flow": results["cohort"]["attrition"],
        "policy": [r for r in results["cohort"].get("data_policy", []) if r["rows"] != 0],
        "follow_up": follow_up(results["cohort"]),
        **landmark_counts(outcomes.get(primary, {})),
        "table1": results["table1"],
        "km_figures": [km_item(n, o, threshold) for n, o in outcomes.items()],
        "km_extra": km_extra(primary, outcomes.get(primary, {}), threshold),
        "cif_figures": [cif_item(n, o, threshold) for n, o in outcomes.items()],
        "forest_div": figures.to_div(
            figures.forest_figure(outcomes, threshold=threshold), "forest"
        ),
        "hr_rows": hr_rows(outcomes, threshold),
        **diagnostics(outcomes.get(primary, {}), outcomes, threshold),
        **pro_section(results["pro"], threshold),
        "quality": results["data_quality"],
        "quality_div": quality_div(quality_rows(results), threshold),
    }


def headline(results: Result, threshold: int) -> Result:
    """The question answered in three sentences."""
    cohort, primary = results["cohort"], results["study"]["primary_outcome"]
    outcome = results["outcomes"].get(primary, {})
    fit = outcome.get("cox", {}).get("time_varying_adjusted", {"error": "no cohort"})
    cif = outcome.get("cif", {})
    return {
        "cohort": (
            f"{count(cohort['n'], threshold)} eligible patients with an osteoporotic vertebral "
            f"compression fracture: {count(cohort['n_treated'], threshold)} treated with "
            f"{' or '.join(results['study']['treatment_procedures'])}, "
            f"{count(cohort['n_untreated'], threshold)} managed conservatively."
        ),
        "primary": f"HR {hr_text(fit)}" + ("" if "error" in fit else f", p = {pvalue(fit['p'])}"),
        "plain": plain_words(fit),
        "cif_treated": five_year(cif.get("treated", {})),
        "cif_untreated": five_year(cif.get("untreated", {})),
    }


def plain_words(fit: Result) -> str:
    """What the primary estimate means, without jargon."""
    if "error" in fit or fit.get("ci_lower") is None or fit.get("ci_upper") is None:
        return "The primary model could not be estimated on these data."
    if fit["ci_lower"] > 1:
        return "Treated patients had a higher rate of new adjacent-level fractures."
    if fit["ci_upper"] < 1:
        return "Treated patients had a lower rate of new adjacent-level fractures."
    return (
        "The data show no clear difference in the rate of new adjacent-level fractures between "
        "treated and untreated patients: the confidence interval includes no effect (HR 1)."
    )


def five_year(cif: Result) -> str:
    """Cumulative incidence at five years with its CI, as a percentage."""
    value = cif.get("at_years", {}).get("5") if "error" not in cif else None
    return percent(value)


def follow_up(cohort: Result) -> str:
    """Median follow-up with CI, in years."""
    fu = cohort.get("median_follow_up_days") or {}
    if fu.get("median") is None:
        return "not reached"
    return f"{fu['median'] / 365.25:.1f} years"


def landmark_counts(outcome: Result) -> Result:
    """Size of the landmark cohort of the primary outcome."""
    fit = outcome.get("cox", {}).get("landmark", {})
    km = outcome.get("km_landmark", {})
    return {"landmark_n": fit.get("n"), "landmark_treated": km.get("treated", {}).get("n")}


def km_item(name: str, outcome: Result, threshold: int) -> Result:
    """One outcome's KM figure, caption and table at 1-5 years."""
    fig = figures.km_figure(outcome["km"], title=NAMES.get(name, name), threshold=threshold)
    rows = {}
    for arm in ("treated", "untreated"):
        km = outcome["km"].get(arm, {})
        if "error" in km:
            continue
        at = {y: percent(km["survival_at_years"].get(y)) for y in YEARS}
        rows[ARM_LABELS[arm]] = {"at_years": at, "median": median_years(km)}
    return {
        "caption": NAMES.get(name, name),
        "div": figures.to_div(fig, f"km-{name.replace('_', '-')}"),
        "rows": rows,
        "logrank": outcome.get("logrank", {}).get("p"),
        "logrank_site": outcome.get("logrank_stratified_site", {}).get("p"),
    }


def median_years(km: Result) -> str:
    """Median survival time with its CI, in years."""
    median = km.get("median_days")
    if median is None:
        return "not reached"
    low, high = (None if d is None else d / 365.25 for d in (km.get("median_ci") or [None, None]))
    return f"{median / 365.25:.1f} ({fixed(low, 1)}–{fixed(high, 1)})"


def km_extra(name: str, outcome: Result, threshold: int) -> list[Result]:
    """The primary outcome's landmark curves and IPT-weighted landmark curves."""
    label = NAMES.get(name, name)
    weighted = outcome.get("cox", {}).get("iptw", {}).get("weighted_km")
    slug = name.replace("_", "-")
    items = [
        ("Landmark cohort (time from the landmark)", outcome.get("km_landmark"), "km-landmark")
    ]
    items.append(("IPT-weighted landmark cohort", weighted, "km-weighted"))
    return [
        {
            "caption": f"{label}: {caption}",
            "div": figures.to_div(
                figures.km_figure(curves, title=f"{label}: {caption}", threshold=threshold),
                f"{prefix}-{slug}",
            ),
        }
        for caption, curves, prefix in items
        if curves
    ]


def cif_item(name: str, outcome: Result, threshold: int) -> Result:
    """One outcome's cumulative-incidence figure and its values at 1-5 years."""
    fig = figures.cif_figure(
        outcome["cif"], outcome.get("cif_death"), title=NAMES.get(name, name),
        threshold=threshold, km_by_arm_for_risk_table=outcome["km"],
    )  # fmt: skip
    rows = {
        ARM_LABELS[arm]: {y: percent(cif.get("at_years", {}).get(y)) for y in YEARS}
        for arm, cif in outcome["cif"].items()
        if "error" not in cif
    }
    return {
        "caption": NAMES.get(name, name),
        "div": figures.to_div(fig, f"cif-{name.replace('_', '-')}"),
        "rows": rows,
        "gray": outcome.get("gray_test", {}).get("p"),
    }


def model_fit(outcome: Result, model: str) -> Result:
    """A Cox model, or the Fine-Gray fit, of one outcome."""
    if model == "fine_gray":
        return dict(outcome.get("fine_gray", {"error": "missing"}))
    return dict(outcome.get("cox", {}).get(model, {"error": "missing"}))


def hr_rows(outcomes: Result, threshold: int) -> list[Result]:
    """The hazard-ratio table: every model of every outcome."""
    rows = []
    for name, outcome in outcomes.items():
        for model, label in MODELS.items():
            fit = model_fit(outcome, model)
            rows.append({
                "outcome": NAMES.get(name, name), "label": label,
                "estimate": hr_text(fit), "p": pvalue(fit.get("p")),
                "n": count(fit.get("n"), threshold) if "error" not in fit else "–",
                "events": count(fit.get("events"), threshold) if "error" not in fit else "–",
                "primary": model == "time_varying_adjusted",
            })  # fmt: skip
    return rows


def diagnostics(primary: Result, outcomes: Result, threshold: int) -> Result:
    """PH test, Schoenfeld plots, piecewise HRs and RMST, propensity overlap and balance."""
    ph = primary.get("ph_test", {})
    iptw = primary.get("cox", {}).get("iptw", {})
    smooth = ph.get("smooth", {})
    return {
        "ph_table": [
            {**row, "term": variable_label(row["term"]) if row["term"] != "GLOBAL" else "Global"}
            for row in ph.get("table", [])
        ],
        "ph_verdict": ph_verdict(ph),
        "schoenfeld_divs": [
            figures.to_div(
                figures.schoenfeld_figure(s, term=t, threshold=threshold), f"schoenfeld-{t}"
            )
            for t, s in smooth.items()
        ],
        "piecewise": [piecewise_row(n, o) for n, o in outcomes.items()],
        "weights_note": weights_note(iptw),
        "ps_div": figures.to_div(
            figures.propensity_figure(iptw.get("ps_histogram", {}), threshold=threshold),
            "ps-overlap",
        ),
        "weights_div": figures.to_div(
            figures.weights_figure(iptw.get("weights_histogram", {}), threshold=threshold),
            "weights",
        ),
        "love_div": figures.to_div(figures.love_plot(iptw.get("balance", [])), "love"),
    }


def ph_verdict(ph: Result) -> str:
    """One sentence on proportional hazards."""
    if "error" in ph or "global_p" not in ph:
        return "The proportional-hazards test could not be computed."
    if ph.get("violated"):
        return (
            f"The global test rejects proportional hazards (p = {pvalue(ph['global_p'])}): read "
            "the piecewise hazard ratios and the restricted mean time below."
        )
    return f"No evidence against proportional hazards (global p = {pvalue(ph['global_p'])})."


def piecewise_row(name: str, outcome: Result) -> Result:
    """Piecewise HRs and the RMST difference of one outcome."""
    pieces = outcome.get("cox", {}).get("piecewise", {})
    rmst = outcome.get("rmst", {})
    missing = "error" in rmst or rmst.get("difference_days") is None
    diff = (
        "not estimable" if missing else estimate(rmst, "difference_days", "ci_lower", "ci_upper", 0)
    )
    return {
        "outcome": NAMES.get(name, name),
        "early": hr_text(pieces.get("0-1y", {"error": "missing"})),
        "late": hr_text(pieces.get("1-5y", {"error": "missing"})),
        "rmst": diff,
    }


def mean_sd(row: Result, prefix: str) -> str:
    """'mean ± SD' of a PRO visit."""
    return f"{fixed(row.get(prefix + '_mean'), 1)} ± {fixed(row.get(prefix + '_sd'), 1)}"


def estimate(row: Result, value: str, lower: str, upper: str, digits: int) -> str:
    """'value (lower to upper)' with fixed decimals."""
    low, high = fixed(row.get(lower), digits), fixed(row.get(upper), digits)
    return f"{fixed(row.get(value), digits)} ({low} to {high})"


def weights_note(iptw: Result) -> str:
    """The weight distribution in one sentence."""
    w = iptw.get("weights")
    if not w:
        return "Weights were not estimated."
    return (
        f"Stabilised weights: median {w['median']:.2f}, 1st–99th centile {w['p01']:.2f}–"
        f"{w['p99']:.2f}, maximum {w['max']:.2f}; effective sample size "
        f"{w['ess_treated']:,.0f} treated and {w['ess_untreated']:,.0f} not treated. "
        f"Largest |SMD| after weighting: {fixed(iptw.get('max_abs_smd_after'))} (target < 0.1)."
    )


def pro_section(pro: Result, threshold: int) -> Result:
    """Before/after table rows and the PRO figures."""
    rows = []
    for instrument in ("VAS", "ODI"):
        for arm in ("treated", "untreated"):
            r = pro.get(instrument, {}).get(arm)
            if not r:
                continue
            rows.append({
                "instrument": instrument, "arm": ARM_LABELS[arm], "n": count(r.get("n"), threshold),
                "baseline": mean_sd(r, "baseline"),
                "followup": mean_sd(r, "followup"),
                "change": estimate(r, "change_mean", "change_ci_lower", "change_ci_upper", 1),
                "p_t": pvalue(r.get("p_ttest")), "p_w": pvalue(r.get("p_wilcoxon")),
            })  # fmt: skip
    divs = []
    for instrument in ("VAS", "ODI"):
        quartiles = pro.get("quantiles", {}).get(instrument, {})
        box = figures.pro_box_figure(quartiles, instrument=instrument, threshold=threshold)
        line = figures.trajectory_figure(
            pro.get("trajectories", []), instrument=instrument, threshold=threshold
        )
        divs += [figures.to_div(box, f"pro-{instrument.lower()}-box"),
                 figures.to_div(line, f"pro-{instrument.lower()}-trajectory")]  # fmt: skip
    return {"pro_rows": rows, "pro_divs": divs}


def quality_div(rows: list[Result], threshold: int) -> str:
    """The data-quality bars, or one sentence when there is nothing to show."""
    if all(row["count"] == 0 for row in rows):
        return '<p class="note">No quarantined rows and no cross-table check violations.</p>'
    return figures.to_div(figures.quality_figure(rows, threshold=threshold), "quality")


def quality_rows(results: Result) -> list[Result]:
    """Bars of the data-quality figure: quarantined lines by file and rule, check violations."""
    quality = results["data_quality"]
    rows = [
        {"label": f"{q['file_name']}: {q['rule']} ({q['column_name']})", "count": q["n_rows"]}
        for q in quality.get("quarantine", [])
    ]
    rows += [
        {"label": f"check: {c['check'].replace('_', ' ')}", "count": c["violations"]}
        for c in quality.get("checks", [])
    ]
    return rows
