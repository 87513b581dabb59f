"""``GET /api/compare``: the ranking of ``rezolus compare`` for the two files a comparison view serves.

Invariants:
- The statistics are ``compare_cli.rank``'s (the same rows, order and JSON
  as ``rezolus compare --json``); nothing is recomputed here.
- Each row also names the chart that draws its series (``chart``) and the
  series' label in that chart (``label``), or null when no chart draws it:
  the chart whose matching series has the fewest columns, curated sections
  before generic ones, so a row opens the most specific chart.
- The ranking is computed once, in a worker thread, on first request;
  a comparison that cannot be made is a 400 with its one-line reason.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from aiohttp import web

from rezolus_core.config import ConfigError
from rezolus_viewer import compare_cli

if TYPE_CHECKING:
    from rezolus_viewer.dashboard import Dashboard
    from rezolus_viewer.recording import Recording

RANKING: web.AppKey[Ranked] = web.AppKey("ranking")


def locate(dash: Dashboard) -> dict[str, tuple[str, str]]:
    """Column -> (chart id, series label) of the chart that draws it most specifically."""
    best: dict[str, tuple[int, int, str, str]] = {}
    order = 0
    for _, _, charts in dash.sections:
        for chart in charts:
            order += 1
            for series in chart.series:
                for column in (*series.columns, *series.denominator):
                    rank = (len(series.columns) + len(series.denominator), order)
                    if column not in best or rank < best[column][:2]:
                        best[column] = (*rank, chart.id, series.label)
    return {c: (v[2], v[3]) for c, v in best.items()}


class Ranked:
    """The two files, their page plan and the ranking once computed."""

    def __init__(self, base: Recording, target: Recording, dash: Dashboard) -> None:
        self.base = base
        self.target = target
        self.dash = dash
        self.lock = asyncio.Lock()
        self.body: dict[str, Any] | None = None
        self.error: str | None = None

    def compute(self) -> dict[str, Any]:
        """Rank (in a worker thread) and attach each row's chart."""
        try:
            ranking = compare_cli.rank(self.base, self.target)
        except ConfigError as exc:
            return {"error": exc.problem}
        where = locate(self.dash)
        rows = ranking.json()
        for row in rows:
            chart, label = where.get(row["series"]["column"], (None, None))
            if chart is not None and row["kind"] == "histogram":
                chart_spec = self.dash.charts[chart]
                if chart_spec.kind == "heatmap":
                    label = f"p{row['series']['quantile']:g}"
            row["chart"], row["label"] = chart, label
        return {"rows": rows, "note": ranking.note}


async def ranking(request: web.Request) -> web.Response:
    """The ranked rows (computed on first use)."""
    ranked = request.app[RANKING]
    async with ranked.lock:
        if ranked.body is None:
            ranked.body = await asyncio.to_thread(ranked.compute)
    if "error" in ranked.body:
        return web.json_response(ranked.body, status=400)
    return web.json_response(ranked.body)


def add_routes(app: web.Application, base: Recording, target: Recording, dash: Dashboard) -> None:
    """Serve ``/api/compare`` for ``base`` against ``target``."""
    app[RANKING] = Ranked(base, target, dash)
    app.router.add_get("/api/compare", ranking)
