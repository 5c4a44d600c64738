"""The HTML report: structure, numbers equal to results.json, suppression and escaping."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from registry.pipeline import run_demo
from registry.report.format import hr_text, pvalue
from registry.report.write import render_report, results_json, write_report

BUILT = dt.datetime(2026, 1, 2, 3, 4)
SECTIONS = (
    "headline",
    "target-trial",
    "flow",
    "table1",
    "km",
    "cif",
    "hazard-ratios",
    "missing-data",
    "diagnostics",
    "pro",
    "data-quality",
    "methods",
)


class Page(HTMLParser):
    """Collects ids, script sources and visible text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.script_sources: list[str] = []
        self.links: list[str] = []
        self.text: list[str] = []
        self._in_script = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.append(str(found["id"]))
        if tag == "script":
            self._in_script += 1
            if found.get("src"):
                self.script_sources.append(str(found["src"]))
        if tag in ("link", "img", "iframe") and (found.get("href") or found.get("src")):
            self.links.append(str(found.get("href") or found.get("src")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script -= 1

    def handle_data(self, data: str) -> None:
        if not self._in_script:
            self.text.append(data)


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("report")
    run_demo(out, patients=1700, seed=20260101, as_of=dt.date(2026, 1, 1),
             console=Console(quiet=True), built_at=BUILT)  # fmt: skip
    html = (out / "index.html").read_text(encoding="utf-8")
    return html, json.loads((out / "results.json").read_text())


def test_page_has_every_section_and_a_table_of_contents(demo: tuple[str, dict[str, Any]]) -> None:
    page = parse(demo[0])
    for section in SECTIONS:
        assert section in page.ids, section
        assert f'href="#{section}"' in demo[0]
    for figure in ("km-adjacent", "cif-adjacent", "forest", "love", "ps-overlap", "pro-vas-box"):
        assert figure in page.ids, figure


def test_offline_single_file_with_plotly_once(demo: tuple[str, dict[str, Any]]) -> None:
    html = demo[0]
    page = parse(html)
    assert page.script_sources == [] and page.links == []
    # the embedded library names a topojson CDN as a default for geo maps (never used here);
    # everything after it, the page and its figures, must name no remote host
    library_end = html.index("</script>")
    rest = html[library_end:]
    assert "cdn.plot.ly" not in rest and "https://" not in rest and "http://" not in rest
    assert html.count("(window.registryDraw ||") >= 10  # each figure queued for drawing
    assert len(re.findall(r"plotly\.js v\d", html)) <= 1  # the library banner appears once


def test_headline_numbers_equal_results_json(demo: tuple[str, dict[str, Any]]) -> None:
    html, results = demo
    fit = results["outcomes"]["adjacent"]["cox"]["time_varying_adjusted"]
    assert f"HR {hr_text(fit)}" in html
    five = results["outcomes"]["adjacent"]["cif"]["treated"]["at_years"]["5"]
    assert f"{100 * five:.1f} %" in html
    assert f"{results['cohort']['n']:,} eligible patients" in html


def test_table_one_and_pro_numbers_come_from_results(demo: tuple[str, dict[str, Any]]) -> None:
    html, results = demo
    vas = results["pro"]["VAS"]["treated"]
    assert f"{vas['baseline_mean']:.1f} ± {vas['baseline_sd']:.1f}" in html
    age = results["table1"][0]["treated"]
    assert f"{age['mean']:.1f} ± {age['sd']:.1f}" in html


def test_no_patient_identifiers_or_dates_in_the_page(demo: tuple[str, dict[str, Any]]) -> None:
    html, results = demo
    assert not re.search(r"P\d{7}", html)  # synthetic patient ids
    visible = " ".join(parse(html).text)
    dates = set(re.findall(r"\b20\d\d-\d\d-\d\d\b", visible))
    assert dates <= {results["provenance"]["as_of"], BUILT.date().isoformat()}, dates


def test_same_data_same_page_apart_from_build_time(
    demo: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    html, results = demo
    assert render_report(results, built_at=BUILT) == html
    write_report(results, tmp_path, built_at=BUILT)
    assert (tmp_path / "index.html").read_text(encoding="utf-8") == html


def hostile(results: dict[str, Any]) -> dict[str, Any]:
    """Every count suppressed and text that tries to inject markup."""
    evil = "<script>alert('x')</script>"
    data = copy.deepcopy(results)
    data["study"]["title"] = evil

    def null_counts(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: null_counts(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [null_counts(v, key) for v in value]
        if key in ("n", "events", "at_risk", "censored", "n_treated", "n_untreated", "remaining",
                   "excluded", "count", "patients", "violations") and isinstance(value, int):  # fmt: skip
            return None
        return value

    data = null_counts(data)
    data["data_quality"]["quarantine"] = [
        {"file_name": evil, "column_name": evil, "rule": "bad_enum", "n_rows": 3}
    ]
    return data


def test_hostile_text_is_escaped_and_suppressed_counts_show_as_withheld(
    demo: tuple[str, dict[str, Any]],
) -> None:
    html = render_report(hostile(demo[1]), built_at=BUILT)
    assert "<script>alert('x')</script>" not in html
    assert "&lt;script&gt;alert" in html
    assert "withheld" in " ".join(parse(html).text)
    assert "&lt;5" not in html  # a withheld count may be a complement of 20: never a bound
    assert "None" not in " ".join(parse(html).text)


def test_results_json_keeps_lists_of_numbers_on_one_line() -> None:
    data = {"curve": {"times_days": [0.0, 1.5], "n": [None, 3]}, "rows": [{"a": "x\ny"}], "e": {}}
    text = results_json(data)
    assert json.loads(text) == data
    assert '"times_days": [0.0, 1.5]' in text and '  "a": "x\\ny"' in text


def section_text(html: str, section: str) -> str:
    """The visible text of one <section>, whitespace collapsed."""
    start = html.index(f'<section id="{section}">')
    part = html[start : html.index("</section>", start)]
    return " ".join(" ".join(parse(part).text).split())


PRIMARY_FITS = {  # the primary model's estimate -> the sentence the headline must say
    "higher": (
        {"hr": 1.5, "ci_lower": 1.2, "ci_upper": 2.0, "p": 0.0004},
        "Treated patients had a higher rate of new adjacent-level fractures.",
    ),
    "lower": (
        {"hr": 0.5, "ci_lower": 0.3, "ci_upper": 0.8, "p": 0.004},
        "Treated patients had a lower rate of new adjacent-level fractures.",
    ),
    "no difference": (
        {"hr": 0.98, "ci_lower": 0.8, "ci_upper": 1.2, "p": 0.84},
        "The data show no clear difference in the rate of new adjacent-level fractures between "
        "treated and untreated patients: the confidence interval includes no effect (HR 1).",
    ),
    "not estimable": (
        {"error": "no events in the treated arm"},
        "The primary model could not be estimated on these data.",
    ),
}


@pytest.mark.parametrize("case", list(PRIMARY_FITS))
def test_headline_says_what_the_primary_estimate_means(
    demo: tuple[str, dict[str, Any]], case: str
) -> None:
    results = copy.deepcopy(demo[1])
    fit, sentence = PRIMARY_FITS[case]
    cox = results["outcomes"][results["study"]["primary_outcome"]]["cox"]
    cox["time_varying_adjusted"] = {**cox["time_varying_adjusted"], **fit}
    if "error" in fit:
        cox["time_varying_adjusted"] = fit
    text = section_text(render_report(results, built_at=BUILT), "headline")
    assert sentence in text
    others = [s for c, (_, s) in PRIMARY_FITS.items() if c != case]
    assert not any(other in text for other in others)
    if "error" in fit:
        assert "HR not estimable" in text
    else:
        assert f"HR {hr_text(fit)}, p = {pvalue(fit['p'])}" in text


PH_TESTS = {  # the primary outcome's PH test -> the diagnostics sentence
    "violated": (
        {"global_p": 0.002, "violated": True},
        "The global test rejects proportional hazards (p = 0.002): read the piecewise hazard "
        "ratios and the restricted mean time below.",
    ),
    "holds": (
        {"global_p": 0.41, "violated": False},
        "No evidence against proportional hazards (global p = 0.410).",
    ),
    "not computed": (
        {"error": "too few events"},
        "The proportional-hazards test could not be computed.",
    ),
}


@pytest.mark.parametrize("case", list(PH_TESTS))
def test_diagnostics_say_whether_proportional_hazards_hold(
    demo: tuple[str, dict[str, Any]], case: str
) -> None:
    results = copy.deepcopy(demo[1])
    ph, sentence = PH_TESTS[case]
    outcome = results["outcomes"][results["study"]["primary_outcome"]]
    outcome["ph_test"] = ph if "error" in ph else {**outcome["ph_test"], **ph}
    text = section_text(render_report(results, built_at=BUILT), "diagnostics")
    assert sentence in text
    assert not any(other in text for c, (_, other) in PH_TESTS.items() if c != case)


def test_a_withheld_interval_shows_the_value_alone() -> None:
    from registry.report.sections import estimate

    assert estimate(-7.123, -8.0, -6.2, 1) == "-7.1 (-8.0 to -6.2)"
    assert estimate(-7.123, None, None, 1) == "-7.1"
