"""The STROBE/RECORD checklist: every listed item, answers pointing at sections of the page,
withheld counts never shown as numbers, and the demo report's section and checklist.md."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from registry.pipeline import run_demo
from registry.report.checklist import NOT_ANSWERED, checklist_rows, md_cell, to_markdown
from registry.report.format import WITHHELD
from registry.report.write import render_report
from tests.test_report import parse

ANSWERED = {
    "STROBE": {"12b", "12c", "12d", "12e", "13a", "13b", "13c", "14a", "14b", "14c", "15",
               "16a", "16b", "16c"},
    "RECORD": {"6.1", "12.2", "13.1", "22.1"},
}  # fmt: skip
BUILT = dt.datetime(2026, 1, 2, 3, 4)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("checklist")
    run_demo(out, patients=400, seed=20260101, as_of=dt.date(2026, 1, 1),
             console=Console(quiet=True), built_at=BUILT)  # fmt: skip
    return out


@pytest.fixture(scope="module")
def results(demo: Path) -> dict[str, Any]:
    return dict(json.loads((demo / "results.json").read_text()))


def test_every_listed_item_is_answered_and_the_others_listed(results: dict[str, Any]) -> None:
    rows = checklist_rows(results, 5)  # type: ignore[arg-type]
    for guideline, items in ANSWERED.items():
        answered = {r.item for r in rows if r.guideline == guideline and r.answer and r.section}
        assert answered == items, guideline
    unanswered = [(r.guideline, r.item, r.topic) for r in rows if not r.section]
    assert unanswered == list(NOT_ANSWERED) and all(not r.answer for r in rows if not r.section)


@pytest.mark.slow
def test_each_answer_points_at_a_section_of_the_page(results: dict[str, Any]) -> None:
    html = render_report(results, built_at=BUILT)  # type: ignore[arg-type]
    ids = set(parse(html).ids)
    assert "checklist" in ids and 'href="#checklist"' in html
    for row in checklist_rows(results, 5):  # type: ignore[arg-type]
        if row.section:
            assert row.section in ids, row
            assert f'<a href="#{row.section}">' in html


@pytest.mark.slow
def test_the_demo_report_has_the_section_and_checklist_md(demo: Path) -> None:
    html = (demo / "index.html").read_text(encoding="utf-8")
    assert "13. Reporting checklist (STROBE, RECORD)" in html
    markdown = (demo / "checklist.md").read_text(encoding="utf-8")
    results = json.loads((demo / "results.json").read_text())
    assert markdown == to_markdown(checklist_rows(results, results["small_cell_threshold"]))
    for items in ANSWERED.values():
        for item in items:
            assert re.search(rf"^\| (STROBE|RECORD) \| {re.escape(item)} \|.*\(index\.html#",
                             markdown, re.M), item  # fmt: skip


# Counts the checklist reads, each as a path into results.json.
COUNT_PATHS = [
    ("cohort", "n"), ("cohort", "n_treated"), ("cohort", "n_untreated"),
    ("cohort", "attrition", 0, "remaining"), ("cohort", "attrition", 1, "excluded"),
    ("outcomes", "adjacent", "events"), ("outcomes", "adjacent", "deaths_first"),
    ("outcomes", "remote", "events"), ("missing_data", "complete_cases"), ("missing_data", "n"),
    ("data_quality", "missing_covariates", 3, "missing"),
]  # fmt: skip


def set_path(tree: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        tree = tree[key]
    tree[path[-1]] = value


@settings(max_examples=25, deadline=None)
@given(withheld=st.sets(st.sampled_from(range(len(COUNT_PATHS))), min_size=1))
def test_withheld_counts_never_appear_as_numbers(
    results: dict[str, Any], withheld: set[int]
) -> None:
    """Each count gets a distinctive value; those withheld (None) must not show up anywhere
    in the checklist, in HTML-free Markdown or in the rows, and read 'withheld'."""
    tree = copy.deepcopy(results)
    marks = {i: 70_001 + 17 * i for i in range(len(COUNT_PATHS))}
    for i, path in enumerate(COUNT_PATHS):
        set_path(tree, path, marks[i])
    for i in withheld:
        set_path(tree, COUNT_PATHS[i], None)
    text = to_markdown(checklist_rows(tree, 5))  # type: ignore[arg-type]
    for i in range(len(COUNT_PATHS)):
        shown = f"{marks[i]:,}" in text
        assert shown == (i not in withheld), (COUNT_PATHS[i], shown)
    assert WITHHELD in text


def test_markdown_cells_cannot_break_the_table_or_inject_html() -> None:
    assert md_cell("a | b\n<script>") == "a \\| b &lt;script&gt;"


def test_html_answers_are_escaped(results: dict[str, Any]) -> None:
    tree = copy.deepcopy(results)
    tree["study"]["treatment_procedures"] = ["<b>cement</b>"]
    html = render_report(tree, built_at=BUILT)  # type: ignore[arg-type]
    section = html[html.index('<section id="checklist">') :]
    assert "<b>cement</b>" not in section and "&lt;b&gt;cement&lt;/b&gt;" in section
