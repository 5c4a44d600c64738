"""The report's target-trial section and headline, rendered from a published block
(tests/fixtures/target_trial_block.py) injected into the demo's results."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from registry.pipeline import run_demo
from registry.report import target_trial as tt
from registry.report.format import MISSING, WITHHELD
from registry.report.write import render_report
from tests.fixtures.target_trial_block import target_trial_block, with_target_trial
from tests.test_report import hostile, parse, section_text

BUILT = dt.datetime(2026, 1, 2, 3, 4)
LEAD = (
    "Vertebroplasty within 8 weeks: 5-year risk of a new adjacent-level fracture 16.0 % vs "
    "15.5 % without (difference +0.5 points, 95 % CI −1.9 to 2.8)."
)
EVIL = "<script>alert('tt')</script>"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo's results.json (without a target trial until the pipeline adds one)."""
    out = tmp_path_factory.mktemp("tt-report")
    run_demo(out, patients=800, seed=20260101, as_of=dt.date(2026, 1, 1),
             console=Console(quiet=True), built_at=BUILT)  # fmt: skip
    results: dict[str, Any] = json.loads((out / "results.json").read_text())
    results.pop("target_trial", None)
    return results


def render(results: dict[str, Any]) -> str:
    return render_report(results, built_at=BUILT)  # type: ignore[arg-type]


def test_section_renders_protocol_curves_risks_and_sentences(demo: dict[str, Any]) -> None:
    block = target_trial_block()
    html = render(with_target_trial(demo, block))
    page = parse(html)
    assert "target-trial" in page.ids and 'href="#target-trial"' in html
    assert {"tt-adjacent", "tt-love-adjacent"} <= set(page.ids)
    assert "tt-remote" not in page.ids  # not estimable: no curves, the reason instead
    text = section_text(html, "target-trial")
    for row in block["protocol"]:
        assert f"{row['element']} {row['specification']} {row['emulation']}" in text
    assert "5 16.0 % (13.5–18.5) 15.5 % (13.0–18.0) +0.5 (−1.9 to 2.8) 1.03 (0.88–1.19)" in text
    assert (
        "At 5 years the upper 95 % bound of the risk difference is 2.8 percentage points, below "
        "the 5-point margin: vertebroplasty within 8 weeks is non-inferior." in text
    )
    assert "E-value 1.16 (1.00 for the confidence limit)" in text
    assert "weighted cause-specific hazard ratio, vertebroplasty within 8 weeks versus no " in text
    assert "1.04 (0.86–1.26)" in text
    assert "Not estimable: nobody was treated within the 56-day grace period." in text
    assert "Positivity: 93.2 % of patients" in text and "cap 4.21" in text
    # the warning is outside the collapsed diagnostics, so it is seen
    warning = html.index('class="warning"')
    assert warning < html.index("<details", warning)
    assert "standardised mean difference of odi is 0.12" in text
    # section order: headline, the target trial, then the cohort
    assert html.index('id="headline"') < html.index('id="target-trial"') < html.index('id="flow"')


def test_headline_leads_with_the_risk_difference(demo: dict[str, Any]) -> None:
    text = section_text(render(with_target_trial(demo)), "headline")
    assert f"Target-trial emulation: {LEAD}" in text
    assert "Primary relative measure (treatment as a time-varying exposure" in text
    assert "descriptive, not causal, because of immortal time and confounding by indication" in text


def test_headline_falls_back_when_not_estimable(demo: dict[str, Any]) -> None:
    block = target_trial_block()
    block["outcomes"]["adjacent"] = copy.deepcopy(block["outcomes"]["remote"])
    text = section_text(render(with_target_trial(demo, block)), "headline")
    assert LEAD not in text and "5-year risk of" not in text
    assert (
        "The target-trial emulation is not estimable on these data: nobody was treated within "
        "the 56-day grace period." in text
    )
    assert "Primary estimate (treatment as a time-varying exposure, adjusted): HR" in text


def test_without_a_block_the_headline_is_as_before(demo: dict[str, Any]) -> None:
    html = render(demo)
    assert "Target-trial" not in section_text(html, "headline")
    assert "no target-trial emulation" in section_text(html, "target-trial")


def test_a_year_beyond_follow_up_shows_a_dash_and_a_footnote(demo: dict[str, Any]) -> None:
    block = target_trial_block()
    adjacent = block["outcomes"]["adjacent"]
    for strategy in adjacent["strategies"].values():
        strategy["risk"]["5"], strategy["ci"]["5"] = None, None
    for contrast in ("risk_difference", "risk_ratio"):
        adjacent[contrast]["5"] = {"estimate": None, "ci_lower": None, "ci_upper": None}
    adjacent["non_inferiority"].update(upper_bound=None, verdict="not estimable")
    html = render(with_target_trial(demo, block))
    text = section_text(html, "target-trial")
    assert f"5 {MISSING} {MISSING} {MISSING} {MISSING}" in text
    assert "– : not estimable, or a year beyond the follow-up of these data." in text
    assert "Non-inferiority at 5 years: not estimable (the 5-year risk difference could" in text
    assert "None" not in text
    headline = section_text(html, "headline")
    assert "not estimable on these data: the 5-year risks are beyond the follow-up." in headline


def test_hostile_text_from_the_data_is_escaped(demo: dict[str, Any]) -> None:
    block = target_trial_block()
    block["outcomes"]["adjacent"]["diagnostics"]["warnings"] = [EVIL]
    block["outcomes"]["remote"]["reason"] = EVIL
    block["protocol"][0]["specification"] = EVIL
    block["outcomes"]["adjacent"]["diagnostics"]["balance"][0]["covariate"] = EVIL
    html = render(with_target_trial(demo, block))
    assert EVIL not in html
    assert html.count("&lt;script&gt;alert(&#39;tt&#39;)&lt;/script&gt;") >= 3
    # and the headline's fallback reason
    block["outcomes"]["adjacent"] = copy.deepcopy(block["outcomes"]["remote"])
    html = render(with_target_trial(demo, block))
    assert EVIL not in html
    assert "not estimable on these data: &lt;script&gt;" in html


def test_withheld_counts_show_as_withheld(demo: dict[str, Any]) -> None:
    block = target_trial_block()
    block["outcomes"]["adjacent"]["patients"] = None
    html = render(with_target_trial(demo, block))
    text = section_text(html, "target-trial")
    assert f"{WITHHELD} eligible patients, each cloned" in text
    assert f"Vertebroplasty within 8 weeks 1,134 {WITHHELD}" in text  # censored clones
    figure = html[html.index('id="tt-adjacent"') : html.index('id="tt-love-adjacent"')]
    assert f'"{WITHHELD}"' in figure and '"1,230"' in figure  # the clones-at-risk strip
    # every count withheld (the report test's hostile results): still a page, no "None"
    page = render(hostile(with_target_trial(demo)))
    assert "None" not in " ".join(parse(page).text)


@pytest.mark.parametrize(
    ("ni", "sentence"),
    [
        ({"upper_bound": 0.061, "verdict": "not shown"},
         "At 5 years the upper 95 % bound of the risk difference is 6.1 percentage points, not "
         "below the 5-point margin: non-inferiority of vertebroplasty within 8 weeks is not shown."),
        ({"upper_bound": 1.12, "verdict": "non-inferior", "margin": 1.25, "scale": "ratio"},
         "At 5 years the upper 95 % bound of the risk ratio is 1.12, below the margin of 1.25: "
         "vertebroplasty within 8 weeks is non-inferior."),
        ({"upper_bound": None, "verdict": "not estimable"},
         "Non-inferiority at 5 years: not estimable (the 5-year risk difference could not be "
         "estimated)."),
    ],
)  # fmt: skip
def test_non_inferiority_sentence(ni: dict[str, Any], sentence: str) -> None:
    outcome = target_trial_block()["outcomes"]["adjacent"]
    outcome["non_inferiority"].update(ni)
    labels = {"treat": "Vertebroplasty within 8 weeks", "no_treat": "No vertebroplasty"}
    assert tt.ni_sentence(outcome, labels) == sentence


def test_numbers_in_points_and_grace_periods() -> None:
    assert tt.signed(0.005) == "+0.5" and tt.signed(-0.019) == "−1.9"
    assert tt.points(-0.019) == "−1.9" and tt.points(None) == MISSING
    assert tt.risk_text(0.16, [0.131, 0.192]) == "16.0 % (13.1–19.2)"
    assert tt.risk_text(0.16, None) == "16.0 %" and tt.risk_text(None, None) == MISSING
    assert tt.grace_text(56) == "8 weeks" and tt.grace_text(30) == "30 days"
    assert tt.one_fracture("adjacent") == "a new adjacent-level fracture"


def numbers_nulled(block: dict[str, Any], keep: list[bool]) -> dict[str, Any]:
    """The block with the i-th float leaf set to None wherever keep[i % len(keep)] is False."""
    seen = [0]

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, float | int) and not isinstance(value, bool):
            seen[0] += 1
            return value if keep[seen[0] % len(keep)] else None
        return value

    result: dict[str, Any] = walk(block)
    return result


def without_figures(value: Any) -> Any:
    """A context without its embedded figures (their JSON holds null legitimately)."""
    if isinstance(value, dict):
        return {k: without_figures(v) for k, v in value.items() if not k.endswith("div")}
    if isinstance(value, list):
        return [without_figures(v) for v in value]
    return value


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keep=st.lists(st.booleans(), min_size=1, max_size=13))
def test_any_missing_number_reads_as_a_dash_or_withheld_never_none(keep: list[bool]) -> None:
    """Whatever numbers the publication step leaves null, the section and headline build and
    no text shows None or nan (property over null patterns of every numeric leaf)."""
    block = numbers_nulled(target_trial_block(), keep)
    block["settings"] = target_trial_block()["settings"]
    block["grace_days"] = 56
    results = {"study": {"treatment_procedures": ["vertebroplasty"], "primary_outcome": "adjacent"},
               "target_trial": block}  # fmt: skip
    context = tt.target_trial_section(results, 5)["trial"]
    headline = tt.trial_headline(results)
    texts = json.dumps([without_figures(context), headline], ensure_ascii=False)
    assert "None" not in texts and "nan" not in texts
    assert (headline["lead"] is None) != (headline["why_not"] is None)


@pytest.mark.slow
def test_browser_draws_the_section_and_its_diagnostics_on_opening(
    demo: dict[str, Any], tmp_path: Path
) -> None:
    """In Chromium: the strategy curves draw at once; the love plot in the closed diagnostics
    draws when they are opened; no errors and no network."""
    from tests.test_report_browser import CHROMIUM, CHROMIUM_ARGS, _check_prerequisites

    _check_prerequisites()
    from playwright.sync_api import sync_playwright

    page_file = tmp_path / "index.html"
    page_file.write_text(render(with_target_trial(demo)), encoding="utf-8")
    errors: list[str] = []
    remote: list[str] = []
    drawn = "(id) => document.querySelector(`[id='${id}'] .main-svg`) !== null"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS)  # fmt: skip
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on(
                "request", lambda r: None if r.url.startswith("file:") else remote.append(r.url)
            )
            page.goto(page_file.resolve().as_uri(), wait_until="load")
            page.wait_for_function(drawn, arg="tt-adjacent", timeout=20_000)
            page.wait_for_function(drawn, arg="forest", timeout=20_000)  # the queue is done
            assert not page.evaluate(drawn, "tt-love-adjacent")  # closed: not drawn yet
            page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
            page.wait_for_function(drawn, arg="tt-love-adjacent", timeout=20_000)
            size = page.evaluate(
                "() => { const r = document.getElementById('tt-love-adjacent')"
                ".getBoundingClientRect(); return [r.width, r.height]; }"
            )
            strip = page.locator('[id="tt-adjacent"]').inner_text()
        finally:
            browser.close()
    assert not errors, errors
    assert not remote, remote
    assert size[0] > 100 and size[1] > 100, size
    assert "Clones at risk (unweighted)" in strip and WITHHELD in strip


def test_the_truncation_sentence_says_when_weights_are_not_capped() -> None:
    from registry.report.target_trial import truncation_sentence

    uncapped = truncation_sentence({"percentile": 100.0, "cap": 28.07, "share_capped": 0.0})
    assert uncapped == "Weights were not truncated (the protocol's setting); the largest is 28.07."
    capped = truncation_sentence({"percentile": 99.0, "cap": 6.5, "share_capped": 0.01})
    assert capped.startswith("Weights truncated at the 99th percentile (cap 6.50)")


def test_the_initiation_models_score_terms_have_readable_labels() -> None:
    from registry.report.figures.style import variable_label

    assert variable_label("vas") == "Latest pain (VAS)"
    assert variable_label("odi_missing") == "Disability (ODI) not recorded"


def test_the_imputation_sentence_sets_the_complete_cases_beside_the_pooled_difference() -> None:
    from registry.report.target_trial import imputation_sentence

    outcome = {
        "multiple_imputation": {"imputations": 20, "note": "pooled"},
        "risk_difference": {"5": {"estimate": 0.021, "ci_lower": -0.01, "ci_upper": 0.05}},
        "complete_case": {"status": "estimated", "risk_difference": {"5": 0.016}},
    }
    text = imputation_sentence(outcome, [1, 2, 5])
    assert text is not None and "20 completed datasets" in text
    assert "+2.1 points pooled and +1.6 points on complete cases" in text
    withheld = {**outcome, "complete_case": {"status": "estimated", "risk_difference": {"5": None}}}
    assert "complete cases" not in (imputation_sentence(withheld, [1, 2, 5]) or "x")
    assert imputation_sentence({"multiple_imputation": None}, [5]) is None
    assert imputation_sentence({}, [5]) is None
