"""The STROBE/RECORD reporting checklist: results -> rows, each item the registry can answer
from its own data with its answer (formatted and withheld as the report does) and the id of
the report section that shows it; the other items listed as not answerable here. Pure.

Rendered as a report section (templates/checklist.html.j2, escaped) and as checklist.md
beside index.html (to_markdown).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from registry import catalogue
from registry.report.format import WITHHELD, count, hr_text, pvalue
from registry.report.missing_data import md_block, method_sentence
from registry.report.sections import follow_up, headline, piecewise_row
from registry.result_types import Results

SECTIONS = {  # the report's section ids the answers point at, with their headings
    "target-trial": "Target-trial emulation",
    "flow": "Who is in the cohort",
    "table1": "Baseline characteristics (Table 1)",
    "cif": "Cumulative incidence with death as a competing risk",
    "hazard-ratios": "Hazard ratios",
    "missing-data": "Missing data",
    "diagnostics": "Diagnostics",
    "data-quality": "Data quality",
    "methods": "Methods and provenance",
}
NOT_ANSWERED = (  # (guideline, item, topic): written by the authors, not from the data
    ("STROBE", "1a–b", "Title and abstract"),
    ("STROBE", "2–3", "Background, rationale and objectives"),
    ("STROBE", "4–5", "Study design and setting"),
    ("STROBE", "6a–b", "Participants: sources, methods of follow-up"),
    ("STROBE", "7–11", "Variables, data sources, bias, study size, quantitative variables"),
    ("STROBE", "12a", "Statistical methods (see Methods for what the registry fitted)"),
    ("STROBE", "17–22", "Other analyses, discussion, limitations, funding"),
    ("RECORD", "1.1–1.3", "Type of data and databases in the title and abstract"),
    ("RECORD", "6.2–6.3", "Validation of codes; linkage"),
    ("RECORD", "7.1", "Codes and algorithms of exposures, outcomes and confounders"),
    ("RECORD", "12.1, 12.3", "Access to the population; linkage across databases"),
    ("RECORD", "19.1", "Implications of using data not created for the research question"),
)


@dataclass(frozen=True)
class ChecklistRow:
    """One checklist item: its answer and the report section (id) that shows it; an item
    not answerable from the registry's data has neither."""

    guideline: str  # STROBE or RECORD
    item: str  # "13a", "12.2"
    topic: str
    answer: str = ""
    section: str | None = None

    @property
    def heading(self) -> str:
        """The heading of the section that answers the item ('' when none does)."""
        return SECTIONS.get(self.section or "", "")


def checklist_rows(results: Results, threshold: int) -> list[ChecklistRow]:
    """Every listed STROBE and RECORD item, answered ones first, in guideline order."""
    answered = [*strobe_rows(results, threshold), *record_rows(results, threshold)]
    return answered + [ChecklistRow(g, i, t) for g, i, t in NOT_ANSWERED]


def strobe_rows(results: Results, threshold: int) -> list[ChecklistRow]:
    """STROBE 12b–e, 13a–c, 14a–c, 15 and 16a–c."""
    study, cohort = results["study"], results["cohort"]
    primary = results["outcomes"].get(study["primary_outcome"])
    head = headline(results, threshold)
    return [
        ChecklistRow("STROBE", "12b", "Subgroups and interactions",
                     subgroups(study["primary_outcome"], primary), "diagnostics"),
        ChecklistRow("STROBE", "12c", "Missing data", missing_answer(results, threshold),
                     "missing-data"),
        ChecklistRow("STROBE", "12d", "Loss to follow-up",
                     "Follow-up ends at death, else withdrawal or loss to follow-up (censored "
                     "then), else the last contact of any kind, capped at "
                     f"{study['horizon_days']} days.", "methods"),
        ChecklistRow("STROBE", "12e", "Sensitivity analyses", sensitivity(), "hazard-ratios"),
        ChecklistRow("STROBE", "13a", "Numbers at each stage",
                     f"{stages(results, threshold)} {head['cohort']}", "flow"),
        ChecklistRow("STROBE", "13b", "Reasons for non-participation",
                     exclusions(results, threshold), "flow"),
        ChecklistRow("STROBE", "13c", "Flow diagram",
                     "A flow diagram of every eligibility step.", "flow"),
        ChecklistRow("STROBE", "14a", "Characteristics of participants",
                     "Table 1 by arm with standardised mean differences before and after "
                     f"weighting: {covariates(results)}.", "table1"),
        ChecklistRow("STROBE", "14b", "Participants with missing data per variable",
                     missing_counts(results, threshold), "missing-data"),
        ChecklistRow("STROBE", "14c", "Follow-up time",
                     f"Median follow-up (reverse Kaplan–Meier): {follow_up(cohort)}.", "flow"),
        ChecklistRow("STROBE", "15", "Outcome events", events(results, threshold),
                     "hazard-ratios"),
        ChecklistRow("STROBE", "16a", "Unadjusted and adjusted estimates; confounders",
                     estimates(results, head["primary"]), "hazard-ratios"),
        ChecklistRow("STROBE", "16b", "Category boundaries of continuous variables",
                     "No covariate is categorised: continuous ones enter the models as linear "
                     "terms.", "methods"),
        ChecklistRow("STROBE", "16c", "Absolute risk",
                     absolute_risk(head), "target-trial" if head["trial"]["lead"] else "cif"),
    ]  # fmt: skip


def record_rows(results: Results, threshold: int) -> list[ChecklistRow]:
    """RECORD 6.1, 12.2, 13.1 and 22.1."""
    study, prov = results["study"], results["provenance"]
    return [
        ChecklistRow("RECORD", "6.1", "Methods of population selection",
                     f"The study file (SHA-256 {prov['study_sha256']}) selects patients with "
                     "an osteoporotic vertebral fracture (time zero: its earliest diagnosis); "
                     f"treatment: {' or '.join(study['treatment_procedures'])}; outcomes: "
                     f"{', '.join(study['outcomes'])}.", "methods"),
        ChecklistRow("RECORD", "12.2", "Data cleaning methods",
                     cleaning(results, threshold), "data-quality"),
        ChecklistRow("RECORD", "13.1", "Selection, including data-quality filters",
                     f"{quarantined(results, threshold)} {exclusions(results, threshold)}",
                     "flow"),
        ChecklistRow("RECORD", "22.1", "Access to protocol, data and code",
                     f"Study file SHA-256 {prov['study_sha256']}; data snapshot SHA-256 "
                     f"{prov['data_snapshot_sha256']}; "
                     + ", ".join(f"{k} {v}" for k, v in prov["versions"].items()) + ".",
                     "methods"),
    ]  # fmt: skip


def subgroups(name: str, primary: Any) -> str:
    """Site strata and the treatment-by-time interaction of the primary outcome."""
    if primary is None:
        return "The primary outcome was not analysed."
    site = primary["logrank_stratified_site"]
    pieces = piecewise_row(name, primary)
    p = pvalue(None if "error" in site else site["p"])
    return (
        f"Log-rank test stratified by site, p = {p}. Treatment by time: piecewise hazard "
        f"ratios {pieces['early']} in year 1 and {pieces['late']} in years 1–5."
    )


def missing_answer(results: Results, threshold: int) -> str:
    """How missing covariates were handled (the Missing data section's first sentence)."""
    block = md_block(results)
    if block is None:
        return "The adjusted models used complete cases."
    return method_sentence(block, threshold)


def sensitivity() -> str:
    """The models beside the primary one."""
    others = [m.label for m in catalogue.MODELS if not m.primary]
    return (
        f"Beside the primary model: {'; '.join(others)}; complete-case fits beside the "
        "pooled ones; restricted mean survival time; the target-trial emulation."
    )


def stages(results: Results, threshold: int) -> str:
    """Registered and eligible patients."""
    flow = results["cohort"]["attrition"]
    registered = flow[0]["remaining"] if flow else None
    return f"{count(registered, threshold)} patients registered."


def exclusions(results: Results, threshold: int) -> str:
    """Each eligibility step with the patients it excluded."""
    steps = [
        f"{step['rule']}: {count(step['excluded'], threshold)}"
        + ("" if step["applies_to"] == "all" else f" ({step['applies_to']} only)")
        for step in results["cohort"]["attrition"]
        if step["step"] > 0
    ]
    return f"Excluded: {'; '.join(steps)}." if steps else "No eligibility step excluded anyone."


def covariates(results: Results) -> str:
    """The study covariates in words."""
    return ", ".join(c.replace("_", " ") for c in results["study"]["covariates"])


def missing_counts(results: Results, threshold: int) -> str:
    """Eligible patients missing each covariate."""
    rows = results["data_quality"].get("missing_covariates") or []
    found = [f"{r['covariate'].replace('_', ' ')}: {count(r['missing'], threshold)}" for r in rows]
    return f"Missing: {'; '.join(found)}." if found else "No missing covariates were counted."


def events(results: Results, threshold: int) -> str:
    """Each outcome's events and deaths before it."""
    parts = [
        f"{catalogue.outcome_label(name)}: {count(o['events'], threshold)} events, "
        f"{count(o['deaths_first'], threshold)} deaths first"
        for name, o in results["outcomes"].items()
    ]
    return "; ".join(parts) + "." if parts else "No outcome was analysed."


def estimates(results: Results, primary_hr: str) -> str:
    """The primary outcome's unadjusted and adjusted time-varying HRs and the confounders."""
    outcome = results["outcomes"].get(results["study"]["primary_outcome"])
    crude = hr_text(outcome["cox"]["time_varying"]) if outcome else "not estimable"
    return (
        f"Time-varying treatment, unadjusted HR {crude}; adjusted {primary_hr}; adjusted "
        f"for {covariates(results)}."
    )


def absolute_risk(head: dict[str, Any]) -> str:
    """The target trial's risks, else the five-year cumulative incidence per arm."""
    cif = (
        f"Five-year cumulative incidence (ever treated, descriptive): {head['cif_treated']} "
        f"treated, {head['cif_untreated']} not treated."
    )
    lead, why_not = head["trial"]["lead"], head["trial"]["why_not"]
    if lead:
        return f"Target-trial emulation: {lead} {cif}"
    return f"Target-trial emulation not estimable: {why_not} {cif}" if why_not else cif


def quarantined(results: Results, threshold: int) -> str:
    """Rows quarantined at ingest, in total (withheld when any part is)."""
    rows = [q["n_rows"] for q in results["data_quality"]["quarantine"]]
    total = None if None in rows else sum(r for r in rows if r is not None)
    return f"{count(total, threshold)} rows quarantined at ingest, before the cohort."


def cleaning(results: Results, threshold: int) -> str:
    """Quarantine, cross-table checks and the cohort stage's data policy."""
    checks = results["data_quality"]["checks"]
    flagged = [c["check"].replace("_", " ") for c in checks if c["violations"] != 0]
    policy = [p["rule"].replace("_", " ") for p in results["cohort"]["data_policy"]]
    return (
        "Rows breaking a rule of the import contract are quarantined with file, line and rule: "
        f"{quarantined(results, threshold)} {len(checks)} cross-table checks, with violations: "
        f"{', '.join(flagged) or 'none'}. Data policies of the cohort stage: "
        f"{', '.join(policy) or 'none'}."
    )


def to_markdown(rows: list[ChecklistRow], page: str = "index.html") -> str:
    """checklist.md: one table, answers linking to the report section that shows them."""
    lines = [
        "# STROBE / RECORD checklist",
        "",
        f"Items the registry answers from its own data, each linked to the section of {page} "
        f"that shows it; counts below the small-cell threshold read '{WITHHELD}'.",
        "",
        "| Guideline | Item | Topic | Answer | Where |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        where = f"[{row.heading}]({page}#{row.section})" if row.section else ""
        answer = row.answer or "Not answered from the registry's data."
        cells = (row.guideline, row.item, row.topic, answer, where)
        lines.append("| " + " | ".join(md_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def md_cell(text: str) -> str:
    """Text safe in a Markdown table cell (pipes escaped, no line breaks, no raw HTML)."""
    cleaned = " ".join(text.split()).replace("|", "\\|")
    return cleaned.replace("<", "&lt;").replace(">", "&gt;")
