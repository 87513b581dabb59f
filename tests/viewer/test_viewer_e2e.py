"""End to end: Debian's chromium, driven headless by Playwright, against a viewer serving a test-made recording."""

from __future__ import annotations

import urllib.parse

import pytest

pytestmark = pytest.mark.slow

SECTIONS = ["overview", "cpu", "scheduler", "syscall", "blockio", "network", "memory", "containers", "rezolus"]
ALL_DRAWN = """() => {
  const s = window.rezolusViewer;
  return document.body.dataset.loaded === String(s.generation)
    && s.charts.every(c => c.card.dataset.state === "ready" && c.uplot);
}"""
X_SCALES = "window.rezolusViewer.charts.map(c => [c.meta.id, c.uplot.scales.x.min, c.uplot.scales.x.max])"
HEATMAP_PIXELS = """(id) => {
  const c = window.rezolusViewer.charts.find(c => c.meta.id === id);
  const { left, top, width, height } = c.uplot.bbox;
  const px = c.uplot.ctx.getImageData(left, top, width, height).data;
  let coloured = 0;
  for (let i = 0; i < px.length; i += 4) {
    const [r, g, b, a] = [px[i], px[i + 1], px[i + 2], px[i + 3]];
    if (a > 0 && !(r > 235 && g > 235 && b > 235) && Math.max(r, g, b) - Math.min(r, g, b) > 40) coloured++;
  }
  return coloured;
}"""


def open_page(browser, url, problems, requests=None):
    """A page at ``url`` that records console errors and page errors into ``problems`` (and its requests' paths)."""
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    if requests is not None:
        page.on("request", lambda r: requests.append(urllib.parse.urlsplit(r.url).path))
    def on_console(message):
        if message.type in {"error", "warning"}:
            problems.append(f"console {message.type}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.goto(url)
    page.wait_for_function(ALL_DRAWN, timeout=60_000)
    return page


def test_page_draws_every_section_zooms_together_and_keeps_the_range_in_the_url(
    recording, viewer_factory, browser, artifacts
):
    """No console errors; every section has non-empty charts; a drag zooms all charts; the URL reopens the zoom.

    The page's first requests are the charts: it carries its plan, scripts and styles, and loads uPlot meanwhile.
    """
    viewer = viewer_factory(str(recording))
    problems: list[str] = []
    requests: list[str] = []
    page = open_page(browser, viewer.url, problems, requests)
    assert requests[:2] == ["/", "/static/vendor/uPlot.iife.min.js"]
    assert set(requests[2:]) == {"/api/chart"}

    sections = page.eval_on_selector_all("section", "els => els.map(e => e.dataset.section)")
    assert sections == SECTIONS
    for section in SECTIONS:
        cards = page.query_selector_all(f"section[data-section='{section}'] .card")
        assert cards, f"section {section} has no charts"
        for card in cards:
            assert int(card.get_attribute("data-points") or 0) > 0, card.get_attribute("data-chart")
            assert card.query_selector("canvas") is not None

    assert page.evaluate(HEATMAP_PIXELS, "overview.scheduler_runqueue_latency") > 500
    assert page.evaluate(HEATMAP_PIXELS, "cpu.cpu_usage-per-cpu") > 500
    page.screenshot(path=str(artifacts / "viewer-overview.png"))
    page.screenshot(path=str(artifacts / "viewer-full.png"), full_page=True)

    before = page.evaluate("window.rezolusViewer.generation")
    over = page.query_selector("[data-chart='overview.cpu'] .u-over").bounding_box()
    y = over["y"] + over["height"] / 2
    page.mouse.move(over["x"] + over["width"] * 0.3, y)
    page.mouse.down()
    page.mouse.move(over["x"] + over["width"] * 0.45, y, steps=5)
    page.mouse.up()
    page.wait_for_function(f"window.rezolusViewer.generation > {before}", timeout=10_000)
    page.wait_for_function(ALL_DRAWN, timeout=60_000)

    query = urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)
    start_ms, end_ms = int(query["start"][0]), int(query["end"][0])
    info = page.evaluate("window.rezolusViewer.info")
    full_ms = (info["end_ns"] - info["start_ns"]) / 1e6
    assert 0.1 * full_ms < end_ms - start_ms < 0.2 * full_ms
    scales = page.evaluate(X_SCALES)
    for chart_id, lo, hi in scales:
        assert lo == pytest.approx(start_ms / 1e3, abs=1), chart_id
        assert hi == pytest.approx(end_ms / 1e3, abs=1), chart_id
    xs = page.evaluate("window.rezolusViewer.charts.map(c => c.uplot.data[0])")
    assert all(start_ms / 1e3 - 1 <= x[0] and x[-1] <= end_ms / 1e3 + 1 for x in xs)
    page.screenshot(path=str(artifacts / "viewer-zoomed.png"))

    shared = open_page(browser, page.url, problems)
    assert shared.evaluate("window.rezolusViewer.range") == [start_ms, end_ms]
    assert "zoomed" in shared.inner_text("#range-text")

    shared.click("#reset")
    shared.wait_for_function("!location.search.includes('start=')", timeout=10_000)
    shared.wait_for_function(ALL_DRAWN, timeout=60_000)
    assert problems == []


def test_a_recording_of_two_hosts_shows_a_host_selector(tmp_path, viewer_factory, browser):
    """Two hosts: a <select> lists both; choosing one reloads the page on that host's rows, without errors."""
    from rezolus_recording.builder import TableBuilder  # noqa: PLC0415 - only this test builds a file
    from rezolus_recording.writer import write_table  # noqa: PLC0415
    from support import synth  # noqa: PLC0415

    builder = TableBuilder(source="tcp://a:1", interval_ns=synth.SEC)
    for k, (name, rows) in enumerate((("web1", 20), ("web2", 30))):
        agent = synth.Agent(synth.catalog(f"i{k}", host={**synth.HOST, "hostname": name}))
        for seq in range(1, rows + 1):
            builder.add(agent.delivery(seq, 1_800_000_000 * synth.SEC + seq * synth.SEC), source=f"tcp://{name}:1")
    write_table(builder.table(), tmp_path / "two.parquet")
    viewer = viewer_factory(str(tmp_path / "two.parquet"))
    problems: list[str] = []
    page = open_page(browser, viewer.url, problems)
    assert page.eval_on_selector_all("select#host option", "os => os.map(o => o.value)") == ["web1", "web2"]
    assert page.evaluate("window.rezolusViewer.info.rows") == 20
    page.select_option("select#host", "web2")
    page.wait_for_url("**instance=web2**")
    page.wait_for_function(ALL_DRAWN, timeout=60_000)
    assert page.evaluate("[window.rezolusViewer.info.hostname, window.rezolusViewer.info.rows]") == ["web2", 30]
    assert page.eval_on_selector("select#host", "s => s.value") == "web2"
    assert problems == []
