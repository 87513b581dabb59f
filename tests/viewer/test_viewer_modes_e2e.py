"""End to end in headless chromium: comparing two files, and following a real agent live.

``rezolus view BASE TARGET``: the ranking table, rows open charts with both
recordings drawn; ``rezolus view --source``: the charts follow the agent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import viewer_synth as synth

if TYPE_CHECKING:
    import pathlib

pytestmark = pytest.mark.slow

DRAWN = """() => {
  const s = window.rezolusViewer;
  return s.charts.length > 0 && document.body.dataset.loaded === String(s.generation)
    && s.charts.every(c => c.card.dataset.state === "ready" && c.uplot);
}"""
SERIES_OF = """(id) => {
  const c = window.rezolusViewer.charts.find(c => c.meta.id === id);
  return c.uplot.series.slice(1).map((s, i) => [s.label, c.uplot.data[i + 1].filter(v => v != null).length]);
}"""


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, pathlib.Path]:
    """A base (10 min at 1 s) and a target (10 min at 2 s, two more cgroups)."""
    tmp = tmp_path_factory.mktemp("modes")
    base = synth.write(synth.FIXTURE_PLAN, tmp / "base.parquet")
    target = synth.write(synth.Plan(rows=300, cgroups=8, interval_ns=2_000_000_000), tmp / "target.parquet")
    return base, target


def watch(page, problems: list[str]) -> None:
    """Record console errors and warnings, page errors and failed requests."""
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in {"error", "warning"}
            else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))


def test_compare_mode_ranks_and_a_row_opens_its_chart_with_both_recordings(pair, viewer_factory, browser, artifacts):
    """The ranking table is there; clicking a row focuses its chart, which draws the series of both files."""
    viewer = viewer_factory(str(pair[0]), str(pair[1]))
    problems: list[str] = []
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    watch(page, problems)
    page.goto(viewer.url)
    page.wait_for_function(DRAWN, timeout=120_000)
    page.wait_for_selector("#section-ranking[data-state='ready']", timeout=60_000)
    assert page.evaluate("document.body.dataset.mode") == "compare"
    rows = page.query_selector_all("table.ranking tbody tr[data-chart]")
    assert len(rows) > 20
    only = page.eval_on_selector_all("table.ranking tbody tr", "trs => trs.map(t => t.innerText)")
    assert any("only in target" in text for text in only)

    x_max = page.evaluate("Math.max(...window.rezolusViewer.charts.map(c => c.uplot.data[0].at(-1)))")
    assert 590 <= x_max <= 605  # seconds since each start, not the epoch

    row = page.query_selector("table.ranking tbody tr[data-chart^='syscall.']")
    chart_id, label = row.get_attribute("data-chart"), row.get_attribute("data-label")
    row.click()
    card = f"[data-chart='{chart_id}'].card.focused[data-state='ready']"
    page.wait_for_selector(card, timeout=60_000)
    drawn = dict(page.evaluate(SERIES_OF, chart_id))
    assert drawn[f"{label} · base"] > 100
    assert drawn[f"{label} · target"] > 100
    assert page.evaluate(f'document.querySelector("{card}").getBoundingClientRect().top') < 1000
    page.screenshot(path=str(artifacts / "viewer-compare.png"))
    assert problems == []


@pytest.mark.root
@pytest.mark.usefixtures("root_bpf")
def test_live_mode_follows_a_real_agent(agent_factory, viewer_factory, browser, artifacts):
    """Against a live agent the page draws the same sections and the charts' last point keeps advancing."""
    agent = agent_factory(interval="500ms")
    viewer = viewer_factory(f"--source={agent.endpoint}", "--window", "2m")
    problems: list[str] = []
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    watch(page, problems)
    page.goto(viewer.url)
    page.wait_for_function("document.body.dataset.mode === 'live'", timeout=30_000)
    page.wait_for_function(
        "() => { const c = document.querySelector(\"[data-chart='overview.cpu']\");"
        " return c && c.dataset.state === 'ready' && Number(c.dataset.lastX) > 0; }", timeout=180_000)
    first = float(page.get_attribute("[data-chart='overview.cpu']", "data-last-x"))
    page.wait_for_function(
        f"Number(document.querySelector(\"[data-chart='overview.cpu']\").dataset.lastX) >= {first + 2}",
        timeout=30_000)
    sections = page.eval_on_selector_all("section", "els => els.map(e => e.dataset.section)")
    assert {"overview", "cpu", "scheduler", "syscall"} <= set(sections)
    text = page.inner_text("#range-text")
    assert "(live)" in text
    page.screenshot(path=str(artifacts / "viewer-live.png"))
    assert problems == []
