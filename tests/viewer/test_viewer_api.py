"""The viewer's HTTP API: layout description, chart data, static files and bad input answered with 400 JSON."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from aiohttp.test_utils import TestClient, TestServer

from rezolus_viewer import dashboard, page
from rezolus_viewer.api import make_app
from rezolus_viewer.recording import Recording


def call(path, *requests):
    """Serve the recording in-process and return (status, body) for each GET path."""

    async def run():
        rec = Recording(path)
        app = make_app(rec, dashboard.plan(rec.columns.values()), warm=False)
        async with TestClient(TestServer(app)) as client:
            out = []
            for url in requests:
                resp = await client.get(url)
                ctype = resp.headers.get("Content-Type", "")
                body = await resp.json() if "json" in ctype else await resp.text()
                out.append((resp.status, body))
            return out

    return asyncio.run(run())


def test_info_lists_only_sections_present_in_the_file(recording):
    """/api/info names the file's sections in page order, and every chart id answers."""
    [(status, info)] = call(recording, "/api/info")
    assert status == 200
    assert info["rows"] == 600
    assert info["breaks"] == 2
    ids = [s["id"] for s in info["sections"]]
    assert ids == ["overview", "cpu", "scheduler", "syscall", "blockio", "network", "memory", "containers", "rezolus"]
    charts = [c["id"] for s in info["sections"] for c in s["charts"]]
    answers = call(recording, *[f"/api/chart?id={c}&points=100" for c in charts])
    assert all(status == 200 for status, _ in answers)
    assert all(any(v is not None for s in body["series"] for v in s["values"]) for _, body in answers)


def embedded_info(html):
    """The page's embedded ``/api/info`` answer (None when the slot is empty)."""
    found = re.search(r'<script id="rezolus-info" type="application/json">(.*?)</script>', html, re.DOTALL)
    assert found is not None
    return json.loads(found.group(1)) if found.group(1) else None


def test_the_page_carries_its_plan_scripts_and_styles(recording):
    """GET / embeds /api/info's answer and inlines the page's own scripts and styles; uPlot stays a request."""
    [(status, html), (_, info)] = call(recording, "/", "/api/info")
    assert status == 200
    assert embedded_info(html) == info
    static = page.static_dir()
    for name in ("app.js", "modes.js", "app.css", "vendor/uPlot.min.css"):
        assert (static / name).read_text(encoding="utf-8") in html, name
    assert '<script src="/static/' not in html
    assert 'rel="stylesheet"' not in html
    assert '<script id="uplot" src="/static/vendor/uPlot.iife.min.js" async>' in html


def test_embedded_json_cannot_close_its_script_element():
    """A ``<`` in any embedded string is written as a JSON escape, and reads back the same."""
    shown = page.render('<script type="application/json"><!--rezolus-info--></script>', {"file": "a</script>b"})
    assert shown.count("</script>") == 1
    assert embedded_info(shown.replace("<script ", '<script id="rezolus-info" ')) == {"file": "a</script>b"}


def test_chart_range_restricts_the_rows(recording):
    """start/end (ns) restrict the answer to rows in the range."""
    [(_, info)] = call(recording, "/api/info")
    start, end = info["start_ns"] + 100 * 10**9, info["start_ns"] + 160 * 10**9
    [(status, body)] = call(recording, f"/api/chart?id=overview.syscalls&start={start}&end={end}&points=1000")
    assert status == 200
    assert body["x"][0] >= start / 1e9
    assert body["x"][-1] <= end / 1e9
    assert len(body["x"]) == 61  # one point per row in the closed range, each the step ending there


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("id=no.such.chart", "unknown chart 'no.such.chart'"),
        ("", "missing chart id"),
        ("id=overview.cpu&start=abc", "start must be an integer, got 'abc'"),
        ("id=overview.cpu&end=1.5", "end must be an integer, got '1.5'"),
        ("id=overview.cpu&start=20&end=10", "empty range: start 20 is not before end 10"),
        ("id=overview.cpu&start=5&end=5", "empty range: start 5 is not before end 5"),
        ("id=overview.cpu&start=1&end=2", "is outside the recording"),
        ("id=overview.cpu&points=1", "points must be between 2 and 4000, got 1"),
        ("id=overview.cpu&points=100000", "points must be between 2 and 4000, got 100000"),
    ],
)
def test_bad_chart_requests_get_400_with_a_json_error(recording, query, message):
    """Unknown charts and bad ranges or point counts are answered 400 with a one-line JSON error."""
    [(status, body)] = call(recording, f"/api/chart?{query}")
    assert status == 400
    assert message in body["error"]
    assert "\n" not in body["error"]


def test_unknown_api_path_is_404_json_and_static_files_are_served(recording):
    """Unknown API paths get JSON 404s; the page and the vendored uPlot are served locally."""
    answers = call(recording, "/api/nothing", "/", "/static/vendor/uPlot.iife.min.js", "/static/app.js",
                   "/static/../recording.py")
    assert answers[0] == (404, {"error": "no such API endpoint: /api/nothing"})
    assert answers[1][0] == 200
    assert "/static/vendor/uPlot.iife.min.js" in answers[1][1]
    assert "http" not in answers[1][1].replace("http-equiv", "")
    assert answers[2][0] == 200
    assert "uPlot" in answers[2][1]
    assert answers[3][0] == 200
    assert answers[4][0] in {403, 404}
