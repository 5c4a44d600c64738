"""The demo's HTML report, opened in a real (headless) Chromium as a reader would open it.

Runs in `make test` and in CI. It needs Debian's chromium at /usr/bin/chromium and the
`playwright` Python package (in the dev extras; its own browser downloads are never used).
Without them it skips on a developer machine and fails in CI (where CI is set), so a CI
machine that lost its browser can't go green by skipping. Screenshots are kept in
build/artifacts/ for a person to look at.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from rich.console import Console

from registry import pipeline

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "build" / "artifacts"
FIGURES = ("km-adjacent", "cif-adjacent", "forest")  # the figures the report promises
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")
TIMEOUT_MS = 30_000  # launching, loading, screenshots
DRAW_TIMEOUT_MS = 20_000  # every figure drawn (a few seconds even for the full demo)

# Everything the tests assert on, gathered in one pass while the page is open.
PAGE_STATE_JS = """
(figureIds) => {
  const isTick = (t) => t.closest('g[class$="tick"], g[class$="tick2"]') !== null;
  const describe = (div) => ({
    id: div.id,
    isPlot: div.classList.contains('js-plotly-plot'),
    mainSvg: div.querySelectorAll('.main-svg').length,
    traces: Array.isArray(div.data) ? div.data.length : 0,
    width: div.getBoundingClientRect().width,
    height: div.getBoundingClientRect().height,
    text: div.textContent,
    numbers: [...div.querySelectorAll('svg text')]
      .filter((t) => !isTick(t))
      .map((t) => t.textContent.trim())
      .filter((s) => /^\\d[\\d,\\u202f\\u00a0 ]*$/.test(s)),
  });
  const plots = [...document.querySelectorAll('.js-plotly-plot, .plotly-graph-div')];
  const links = [...document.querySelectorAll('nav a[href^="#"], #toc a[href^="#"], .toc a[href^="#"]')];
  const idCounts = {};
  for (const el of document.querySelectorAll('[id]')) idCounts[el.id] = (idCounts[el.id] || 0) + 1;
  return {
    title: document.title,
    duplicateIds: Object.keys(idCounts).filter((id) => idCounts[id] > 1),
    plotlyDefined: typeof window.Plotly !== 'undefined',
    plots: plots.map(describe),
    figures: Object.fromEntries(figureIds.map((id) => {
      const div = document.getElementById(id);
      return [id, div === null ? null : describe(div)];
    })),
    toc: [...new Set(links)].map((a) => {
      const target = decodeURIComponent(a.getAttribute('href').slice(1));
      return {href: a.getAttribute('href'), text: a.textContent.trim(),
              targetFound: document.getElementById(target) !== null};
    }),
  };
}
"""

# Figures are drawn one per task after the page is read (registry.report.figures.style.DRAW_SCRIPT),
# so wait for every figure div, not only those Plotly has already taken over.
DRAWN_JS = """
(figureIds) => typeof window.Plotly !== 'undefined'
  && figureIds.every((id) => document.querySelector(`[id="${id}"] .main-svg`) !== null)
  && [...document.querySelectorAll('.js-plotly-plot, .plotly-graph-div')]
    .every((p) => p.querySelector('.main-svg'))
"""


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str) -> NoReturn:
    """Fail in CI (a missing browser there is a broken CI), skip on a developer machine."""
    if _in_ci():
        pytest.fail(
            f"{reason}. CI is set, so this test must not skip: .ci/run installs chromium "
            "(apt-get install chromium) and `make test` installs playwright from requirements.lock.",
            pytrace=False,
        )
    pytest.skip(
        f"{reason}; to run the browser test install Debian's chromium "
        "(sudo apt-get install --no-install-recommends chromium fonts-dejavu-core) "
        "and the dev requirements (make test installs requirements.lock)"
    )


def _check_prerequisites() -> None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright Python package is not installed")
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"no chromium at {CHROMIUM}")


def _save_atomically(data: bytes, path: Path) -> Path:
    """Write a screenshot without ever leaving a half-written one (xdist workers may race)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real demo output (results.json and index.html), built once for this module."""
    _check_prerequisites()
    out = tmp_path_factory.mktemp("report-demo")
    pipeline.run_demo(
        out,
        patients=1700,
        seed=20260101,
        as_of=dt.date(2026, 1, 1),
        console=Console(quiet=True),
        built_at=dt.datetime(2026, 1, 2, 3, 4),
    )
    assert (out / "index.html").is_file(), f"registry demo wrote no index.html in {out}"
    return out


@pytest.fixture(scope="module")
def report(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Open index.html in headless Chromium once and record everything the tests look at."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import Route, WebSocketRoute, sync_playwright

    seen: dict[str, Any] = {
        "requests": [],  # every request URL the page made
        "blocked": [],  # http(s)/ws and other non-local requests, aborted
        "console_errors": [],
        "page_errors": [],
        "failed_requests": [],
        "render_timeout": None,
    }

    def on_route(route: Route) -> None:
        url = route.request.url
        if url.startswith(LOCAL_SCHEMES):
            route.continue_()
        else:
            seen["blocked"].append(url)
            route.abort("blockedbyclient")

    def on_websocket(ws: WebSocketRoute) -> None:
        seen["blocked"].append(ws.url)  # never connected to a server: the socket is mocked
        ws.close()

    with sync_playwright() as pw:
        try:
            context = pw.chromium.launch_persistent_context(
                str(tmp_path_factory.mktemp("chromium-profile")),  # a fresh user data dir
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1280, "height": 900},
                service_workers="block",
                timeout=TIMEOUT_MS,
            )
        except PlaywrightError as exc:
            pytest.fail(f"{CHROMIUM} is installed but Playwright could not launch it: {exc}")
        try:
            context.set_default_timeout(TIMEOUT_MS)
            context.route("**/*", on_route)
            context.route_web_socket(re.compile(".*"), on_websocket)
            page = context.pages[0] if context.pages else context.new_page()
            page.on("request", lambda request: seen["requests"].append(request.url))
            page.on(
                "console",
                lambda msg: (
                    seen["console_errors"].append(f"{msg.text} ({msg.location})")
                    if msg.type == "error"
                    else None
                ),
            )
            page.on("pageerror", lambda exc: seen["page_errors"].append(str(exc)))
            page.on(
                "requestfailed",
                lambda request: seen["failed_requests"].append(f"{request.url}: {request.failure}"),
            )
            page.goto((demo_dir / "index.html").resolve().as_uri(), wait_until="load")
            # figures in a closed <details> (the target trial's diagnostics) draw on opening
            page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
            try:
                page.wait_for_function(DRAWN_JS, arg=list(FIGURES), timeout=DRAW_TIMEOUT_MS)
                page.evaluate(
                    "() => document.fonts.ready.then(() => new Promise("
                    "(done) => requestAnimationFrame(() => requestAnimationFrame(done))))"
                )
            except PlaywrightError as exc:  # reported by the tests below, with the page state
                seen["render_timeout"] = str(exc).splitlines()[0]
            seen["state"] = page.evaluate(PAGE_STATE_JS, list(FIGURES))
            seen["screenshot"] = _save_atomically(
                page.screenshot(full_page=True), ARTIFACTS / "report.png"
            )
            km = page.locator('[id="km-adjacent"]')
            if km.count():
                seen["km_screenshot"] = _save_atomically(
                    km.first.screenshot(), ARTIFACTS / "km-adjacent.png"
                )
        finally:
            context.close()
    yield seen


def test_page_runs_without_errors(report: dict[str, Any]) -> None:
    assert not report["page_errors"], f"uncaught exceptions in the page: {report['page_errors']}"
    assert not report["console_errors"], f"console errors: {report['console_errors']}"
    assert not report["failed_requests"], (
        f"requests that failed (a missing local file?): {report['failed_requests']}"
    )


def test_page_is_self_contained(report: dict[str, Any]) -> None:
    """Nothing leaves the machine: the report must open on a computer with no network."""
    assert not report["blocked"], f"the page tried to reach the network: {report['blocked']}"
    outside = [url for url in report["requests"] if not url.startswith(LOCAL_SCHEMES)]
    assert not outside, f"requests other than file:, data:, blob: and about:: {outside}"


def test_every_figure_is_drawn(report: dict[str, Any]) -> None:
    state = report["state"]
    assert report["render_timeout"] is None, f"figures not drawn: {report['render_timeout']}"
    assert state["plotlyDefined"], "the Plotly global is undefined: plotly.js was not embedded"
    missing = [fid for fid, fig in state["figures"].items() if fig is None]
    assert missing == [], f"figures missing from the page: {missing}"
    assert state["plots"], "no plotly figures on the page"
    for fig in state["plots"]:
        label = fig["id"] or "<a figure without an id>"
        assert fig["isPlot"], f"{label}: Plotly never took over the div"
        assert fig["mainSvg"] > 0, f"{label}: nothing drawn (no .main-svg)"
        assert fig["traces"] > 0, f"{label}: the figure has no data"
        assert fig["width"] > 100 and fig["height"] > 100, f"{label}: drawn at {fig}"


def test_element_ids_are_unique(report: dict[str, Any]) -> None:
    """Plotly.newPlot(id) and the contents' #links both go to the first element with an id."""
    duplicates = report["state"]["duplicateIds"]
    assert not duplicates, (
        f"ids used by more than one element (a figure drawn in the wrong place?): {duplicates}"
    )


def test_km_figure_shows_numbers_at_risk(report: dict[str, Any]) -> None:
    km = report["state"]["figures"]["km-adjacent"]
    assert km is not None, "no km-adjacent figure"
    assert re.search(r"at risk", km["text"], re.IGNORECASE), (
        "the Kaplan-Meier figure has no 'Number at risk' table"
    )
    assert km["numbers"], "no count (an SVG text node holding a number) in the at-risk table"


def test_page_has_title_and_table_of_contents(report: dict[str, Any]) -> None:
    state = report["state"]
    assert state["title"].strip(), "the page has no <title>"
    toc = state["toc"]
    assert len(toc) >= len(FIGURES), f"no table of contents (links found: {toc})"
    dangling = [link["href"] for link in toc if not link["targetFound"]]
    assert not dangling, f"table-of-contents links that point nowhere: {dangling}"


def test_screenshots_are_kept(report: dict[str, Any]) -> None:
    for key in ("screenshot", "km_screenshot"):
        path = report.get(key)
        assert path is not None and path.stat().st_size > 10_000, f"{key} not written: {path}"


@pytest.fixture(scope="module")
def history_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A publish folder with two builds: the refresh history page of a growing registry."""
    _check_prerequisites()
    from tests.test_refresh_support import drop_export, refresh

    tmp = tmp_path_factory.mktemp("history")
    drop_export(tmp, "night1", patients=150, seed=5)
    refresh(tmp)
    drop_export(tmp, "night2", patients=200, seed=5)
    refresh(tmp)
    pages = sorted(tmp.rglob("index.html"), key=lambda p: len(p.parts))
    return pages[0]  # the history page sits at the top of the publish folder


def test_history_page_draws_its_trends_without_errors_or_network(history_page: Path) -> None:
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    remote: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on(
                "request",
                lambda r: None if r.url.startswith(LOCAL_SCHEMES) else remote.append(r.url),
            )
            page.goto(history_page.resolve().as_uri(), wait_until="load")
            page.wait_for_function(
                "() => [...document.querySelectorAll('.js-plotly-plot')].length >= 2 && "
                "[...document.querySelectorAll('.js-plotly-plot')].every(d => d.querySelector('.main-svg'))",
                timeout=DRAW_TIMEOUT_MS,
            )
            rows = page.locator("tbody tr").count()
            _save_atomically(page.screenshot(full_page=True), ARTIFACTS / "history.png")
        finally:
            browser.close()
    assert not errors, errors
    assert not remote, remote
    assert rows >= 2  # one row per build
