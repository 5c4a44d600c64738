"""The report's missing-data section, Table 1's missing rows and the pooled labels, rendered
from a published block (tests/fixtures/missing_data_block.py) grafted onto the demo's results."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from registry.pipeline import run_demo
from registry.report import missing_data as md
from registry.report.figures import forest_figure
from registry.report.figures.missing_data import convergence_figure, distribution_figure
from registry.report.format import MISSING, WITHHELD, count, hr_text
from registry.report.write import render_report
from tests.fixtures.missing_data_block import (
    IMPUTATIONS,
    ITERATIONS,
    missing_data_block,
    with_missing_data,
)
from tests.test_report import parse, section_text
from tests.test_report_target_trial import numbers_nulled, without_figures

BUILT = dt.datetime(2026, 1, 2, 3, 4)
EVIL = "<script>alert('md')</script>"
ESCAPED = "&lt;script&gt;alert(&#39;md&#39;)&lt;/script&gt;"


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo's results.json as the analysis writes it (its own missing-data block)."""
    out = tmp_path_factory.mktemp("md-report")
    run_demo(
        out,
        patients=800,
        seed=20260101,
        as_of=dt.date(2026, 1, 1),
        console=Console(quiet=True),
        built_at=BUILT,
    )
    results: dict[str, Any] = json.loads((out / "results.json").read_text())
    return results


@pytest.fixture(scope="module")
def demo(analysed: dict[str, Any]) -> dict[str, Any]:
    """The demo's results.json without its missing-data block and complete-case twins (the
    fixture's block and twins replace them, so the expected numbers are known)."""
    results = copy.deepcopy(analysed)
    results.pop("missing_data", None)
    for outcome in results["outcomes"].values():
        for key in [k for k in outcome["cox"] if k.endswith("_complete_case")]:
            outcome["cox"][key.removesuffix("_complete_case")] = outcome["cox"].pop(key)
    return results


def render(results: dict[str, Any]) -> str:
    return render_report(results, built_at=BUILT)  # type: ignore[arg-type]


def test_section_renders_settings_patterns_predictors_and_figures(demo: dict[str, Any]) -> None:
    html = render(with_missing_data(demo))
    page = parse(html)
    assert "missing-data" in page.ids and 'href="#missing-data"' in html
    assert {"mi-distributions", "mi-convergence"} <= set(page.ids)
    # after the hazard ratios whose pooled estimates it explains, before the diagnostics
    assert html.index('id="hazard-ratios"') < html.index('id="missing-data"')
    assert html.index('id="missing-data"') < html.index('id="diagnostics"')
    text = section_text(html, "missing-data")
    assert (
        f"imputed by chained equations (fully conditional specification): {IMPUTATIONS} "
        f"imputations of {ITERATIONS} iterations each, seed 20260101, predictive mean matching "
        "drawing from 5 donors." in text
    )
    assert "754 (96.7 %) of 780 patients had every covariate." in text
    # patterns: which covariates are missing together, count (%), the withheld one as such
    assert "BMD T-score Glucocorticoids Covariates missing Patients (%)" in text
    assert "observed observed 0 754 (96.7 %)" in text
    assert "missing observed 1 14 (1.8 %)" in text
    assert f"missing missing 2 {WITHHELD}" in text
    # what was imputed from what, in words
    assert "BMD T-score 18 2.3 % predictive mean matching glucocorticoids, age, male sex" in text
    assert "Glucocorticoids 12 1.5 % logistic regression BMD T-score, age" in text
    assert (
        "years from diagnosis to treatment, site, death, adjacent-level fracture (event), "
        "Nelson–Aalen cumulative hazard of adjacent-level fracture" in text
    )
    assert text.count("site") == 2  # the site indicators are one predictor
    assert "Age 0 0.0 % complete" in text


def test_primary_estimate_with_and_without_imputation(demo: dict[str, Any]) -> None:
    results = with_missing_data(demo)
    cox = results["outcomes"]["adjacent"]["cox"]
    pooled, twin = cox["time_varying_adjusted"], cox["time_varying_adjusted_complete_case"]
    text = section_text(render(results), "missing-data")
    row = (  # n as shown: the demo's may be withheld
        f"Time-varying, adjusted (primary) {pooled['hr']:.2f} ({pooled['ci_lower']:.2f}–"
        f"{pooled['ci_upper']:.2f}) {count(pooled['n'], 5)} {twin['hr']:.2f} "
        f"({twin['ci_lower']:.2f}–{twin['ci_upper']:.2f}) {count(twin['n'], 5)} 0.06"
    )
    assert row in text
    for label in (
        "IPTW, landmark cohort",
        "Ever-treated, adjusted (immortal-time bias)",
        "Death, cause-specific (competing event)",
        "Piecewise, 0–1 year",
        "Piecewise, 1–5 years",
    ):
        assert f" {label} " in text, label
    assert "Time-varying, unadjusted" not in text  # not adjusted: nothing imputed
    assert (
        "In the primary model (time-varying, adjusted) the hazard ratio pooled over 5 "
        "imputations" in text
    )
    assert "is 2.0 % higher than the complete-case one" in text
    assert "confidence interval is about as wide" in text
    headline = section_text(render(results), "headline")
    assert f"p = {pooled['p']:.3f}, pooled over 5 imputations" in headline


def test_a_withheld_missing_count_hides_its_percentage(demo: dict[str, Any]) -> None:
    block = missing_data_block()
    block["variables"][3]["missing"] = None  # glucocorticoids; its percent left by mistake
    text = section_text(render(with_missing_data(demo, block)), "missing-data")
    assert f"Glucocorticoids {WITHHELD} {MISSING} logistic regression" in text


def test_pooled_fits_are_labelled_in_the_hazard_ratio_table_and_forest(
    demo: dict[str, Any],
) -> None:
    results = with_missing_data(demo)
    text = section_text(render(results), "hazard-ratios")
    assert "Time-varying, adjusted (primary) (pooled over 5 imputations)" in text
    assert "Time-varying, unadjusted (pooled" not in text
    fig = forest_figure(results["outcomes"], threshold=5)
    ticks = list(fig.layout.yaxis.ticktext)
    assert any(t.startswith("<b>Time-varying, adjusted (primary) †") for t in ticks)
    assert not any(t.startswith("Time-varying, unadjusted †") for t in ticks)
    notes = " ".join(a.text for a in fig.layout.annotations)
    assert "† pooled over 5 imputations (Rubin's rules)" in notes
    assert "†" not in " ".join(forest_figure(demo["outcomes"], threshold=5).layout.yaxis.ticktext)


def test_table_one_has_a_missing_row_per_arm_and_a_footnote(demo: dict[str, Any]) -> None:
    results = with_missing_data(demo)
    rows = {r["variable"]: r for r in md.table_one(results, 5)["table1"]}
    with_rows = {name for name, r in rows.items() if r["missing_row"]}
    expected = {
        r["variable"]
        for r in demo["table1"]
        if md.TABLE1_COVARIATES.get(r["variable"], r["variable"]) in demo["study"]["covariates"]
        and any(r[arm]["missing"] != 0 for arm in ("treated", "untreated"))
    }
    assert with_rows == expected and expected  # the demo misses BMD and glucocorticoids
    text = section_text(render(results), "table1")
    for name in expected:
        row = next(r for r in demo["table1"] if r["variable"] == name)
        cells = []
        for arm in ("treated", "untreated"):
            missing, n = row[arm]["missing"], row[arm]["n"]
            size = demo["cohort"][f"n_{arm}"] if n is None else n + (missing or 0)
            cells.append(
                WITHHELD if missing is None else f"{missing} ({100 * missing / size:.1f} %)"
            )
        assert f"{row['label']} " in text
        assert f"missing, n (%) {cells[0]} {cells[1]}" in text
        assert "missing]" not in text.split(row["label"])[1].split("missing, n")[0]
    assert (
        "The adjusted models impute BMD T-score by predictive mean matching, glucocorticoids "
        "by logistic regression (chained equations, m = 5 imputations, Rubin's rules)" in text
    )


def test_complete_case_method_says_so(demo: dict[str, Any]) -> None:
    html = render(with_missing_data(demo, missing_data_block("complete_case")))
    text = section_text(html, "missing-data")
    assert (
        "The adjusted models used complete cases (the study file asks for complete cases): "
        "patients missing a covariate were left out of them." in text
    )
    assert "there are no pooled estimates to set beside them" in text
    assert "Pooled HR" not in text and "mi-convergence" not in parse(html).ids
    assert "BMD T-score 18 2.3 % not imputed: patients missing it are left out" in text
    assert "pooled over" not in section_text(html, "hazard-ratios")
    assert "leave out patients missing a covariate (complete case" in section_text(html, "table1")


def test_nothing_missing_and_no_block(demo: dict[str, Any]) -> None:
    block = missing_data_block()
    block.update(
        imputations=0,
        note="no covariate is missing: nothing was imputed",
        chains=None,
        distributions={},
        complete_cases=780,
        fmi=[],
    )
    text = section_text(render(with_missing_data(demo, block)), "missing-data")
    assert "No covariate is missing: nothing was imputed: the adjusted models used" in text
    assert "780 (100.0 %) of 780 patients had every covariate" in text
    html = render(demo)
    assert "has no missing-data block" in section_text(html, "missing-data")
    assert "missing, n (%)" in section_text(html, "table1")  # the counts stay unmistakable


def test_without_chains_the_convergence_says_so(demo: dict[str, Any]) -> None:
    block = missing_data_block()
    block["chains"] = None
    html = render(with_missing_data(demo, block))
    assert "mi-convergence" not in parse(html).ids
    assert "No convergence traces were kept" in section_text(html, "missing-data")


def test_hostile_names_from_the_data_are_escaped(demo: dict[str, Any]) -> None:
    block = missing_data_block()
    block["variables"][2]["covariate"] = EVIL
    block["variables"][3]["predictors"].append(EVIL)
    block["patterns"][1]["missing"] = [EVIL]
    block["note"] = EVIL
    block["chains"][EVIL] = block["chains"].pop("bmd_t_score")
    block["distributions"][EVIL] = block["distributions"].pop("bmd_t_score")
    html = render(with_missing_data(demo, block))
    assert EVIL not in html
    assert html.count(ESCAPED) >= 4  # variables, predictors, patterns, note (twice)
    for figure in (
        distribution_figure(block["distributions"]),
        convergence_figure(block["chains"]),
    ):
        assert EVIL not in figure.to_json() and "<script>" not in figure.to_json()


def test_figures_have_data() -> None:
    block = missing_data_block()
    fig = distribution_figure(block["distributions"])
    assert len(fig.data) == 4  # observed and imputed bars per variable
    bmd = [
        t
        for t in fig.data
        if t.x == ("−5.0 to −4.0", "−4.0 to −3.0", "−3.0 to −2.0", "−2.0 to −1.0", "−1.0 to 0.0")
    ]
    assert [list(t.y) for t in bmd] == [[8.0, 37.0, 41.0, 12.0, 2.0], [10.0, 40.0, 36.0, 12.0, 2.0]]
    assert [tuple(t.x) for t in fig.data[2:]] == [("no", "yes")] * 2
    chains = convergence_figure(block["chains"])
    assert len(chains.data) == 2 * 2 * IMPUTATIONS  # mean and SD of two variables
    assert all(len(t.y) == ITERATIONS for t in chains.data)
    for empty in (distribution_figure({}), convergence_figure({})):
        assert not empty.data and empty.layout.annotations  # a note, no crash


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keep=st.lists(st.booleans(), min_size=1, max_size=13))
def test_any_missing_number_reads_as_a_dash_or_withheld_never_none(keep: list[bool]) -> None:
    """Whatever numbers the publication step leaves null (the block, the pooled fits and their
    twins, Table 1's cells), the section and Table 1 build and no text shows None or nan."""
    results = with_missing_data(_SMALL)
    results["missing_data"] = numbers_nulled(results["missing_data"], keep)
    results["outcomes"] = numbers_nulled(results["outcomes"], keep)
    results["table1"] = numbers_nulled(results["table1"], keep)
    context = {**md.missing_data_section(results, 5), **md.table_one(results, 5)}
    text = json.dumps(without_figures(context), ensure_ascii=False)
    assert "None" not in text and "nan" not in text


def small_results() -> dict[str, Any]:
    """Results with just what the section reads: one outcome whose adjusted models have a fit."""
    fit = {
        "hr": 0.8,
        "ci_lower": 0.5,
        "ci_upper": 1.3,
        "p": 0.3,
        "se": 0.25,
        "n": 754,
        "events": 60,
        "label": "x",
    }
    cox = {
        m: copy.deepcopy(fit)
        for m in ("adjusted", "time_varying_adjusted", "iptw", "death_cause_specific", "unadjusted")
    }
    cox["piecewise"] = {"0-1y": copy.deepcopy(fit), "1-5y": copy.deepcopy(fit)}
    cell = {"n": 380, "missing": 15, "mean": -2.9, "sd": 0.8}
    return {
        "study": {"primary_outcome": "adjacent", "covariates": ["age", "bmd_t_score"]},
        "cohort": {"n": 780, "n_treated": 395, "n_untreated": 385},
        "table1": [
            {
                "variable": "bmd_t_score",
                "label": "BMD T-score",
                "binary": False,
                "treated": dict(cell),
                "untreated": dict(cell),
                "smd_before": 0.1,
                "smd_after": 0.0,
            }
        ],
        "outcomes": {"adjacent": {"cox": cox}},
    }


_SMALL = small_results()


def test_how_far_the_estimates_differ_in_words() -> None:
    fit = {"hr": 0.8, "ci_lower": 0.5, "ci_upper": 1.28}
    twin = {"hr": 0.7, "ci_lower": 0.4, "ci_upper": 1.225}
    sentence = md.difference_sentence({**fit, "mi": {"imputations": 20}}, twin)
    assert "pooled over 20 imputations, 0.80 (0.50–1.28), is 14.3 % higher than the " in sentence
    assert (
        "complete-case one, 0.70 (0.40–1.23); its 95 % confidence interval is 16 % narrower"
        in sentence
    )
    failed = md.difference_sentence({"error": "did not converge"}, twin)
    assert "cannot be compared" in failed
    assert md.count_share(None, 10, 5) == WITHHELD and md.share(3, None) == MISSING
    assert md.predictor_label("hazard_same_level") == (
        "Nelson–Aalen cumulative hazard of same-level fracture (recollapse)"
    )
    assert md.predictor_label("event_unknown_outcome") == "unknown outcome (event)"


@pytest.mark.slow
def test_browser_draws_the_section(demo: dict[str, Any], tmp_path: Path) -> None:
    """In Chromium: both missing-data figures draw, with no errors and no network."""
    from tests.test_report_browser import CHROMIUM, CHROMIUM_ARGS, _check_prerequisites

    _check_prerequisites()
    from playwright.sync_api import sync_playwright

    page_file = tmp_path / "index.html"
    page_file.write_text(render(with_missing_data(demo)), encoding="utf-8")
    errors: list[str] = []
    remote: list[str] = []
    drawn = "(id) => document.querySelector(`[id='${id}'] .main-svg`) !== null"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on(
                "request", lambda r: None if r.url.startswith("file:") else remote.append(r.url)
            )
            page.goto(page_file.resolve().as_uri(), wait_until="load")
            for figure in ("mi-distributions", "mi-convergence", "forest"):
                page.wait_for_function(drawn, arg=figure, timeout=20_000)
            bars = page.locator('[id="mi-distributions"] .point').count()
            lines = page.locator('[id="mi-convergence"] .scatterlayer .trace').count()
        finally:
            browser.close()
    assert not errors, errors
    assert not remote, remote
    assert bars == 14  # 5 + 5 BMD bins and 2 + 2 glucocorticoid bars
    assert lines == 2 * 2 * IMPUTATIONS


def test_the_figures_have_stable_ids() -> None:
    from registry.report.figures import FIGURE_IDS

    assert {"mi-distributions", "mi-convergence"} <= set(FIGURE_IDS)


def test_the_analysis_block_renders(analysed: dict[str, Any]) -> None:
    """The block and twins the analysis writes (not the fixture) render: settings, pooled
    beside complete case for the primary model, both figures, no None or nan."""
    block = analysed["missing_data"]
    html = render(analysed)
    page = parse(html)
    text = section_text(html, "missing-data")
    assert f"{block['imputations']} imputations of {block['iterations']} iterations" in text
    fit = analysed["outcomes"]["adjacent"]["cox"]["time_varying_adjusted"]
    twin = analysed["outcomes"]["adjacent"]["cox"]["time_varying_adjusted_complete_case"]
    assert f"Time-varying, adjusted (primary) {hr_text(fit)}" in text and hr_text(twin) in text
    assert f"pooled over {block['imputations']} imputations" in text
    assert {"mi-distributions", "mi-convergence"} <= set(page.ids)
    visible = " ".join(page.text)
    assert not re.search(r"\b(None|nan)\b", visible)  # 'malignant' holds 'nan'
