"""The viewer's HTTP API and static page, as an aiohttp application.

Invariants:
- ``GET /`` is the page; ``/static/`` serves only files inside the package's
  static directory (vendored libraries included), so the page works offline.
  The page (``page.py``) carries its own scripts and styles and what
  ``GET /api/info`` would answer for the same query (files only: live pages
  poll it), so its first chart requests need no round trip before them;
  when that answer would be an error the page asks the API and shows it.
- ``GET /api/info`` describes the recording and the planned sections;
  ``GET /api/chart?id=&start=&end=&points=`` returns one chart's data.
  Which recording answers is ``views``' choice (``views.py``): with
  ``side=`` one of a comparison's two files, live the newest snapshot;
  ``focus=`` keeps one series label in a top-N chart.
  ``start``/``end`` are integer nanoseconds since the Unix epoch (default:
  the whole recording).  Bad input (unknown chart, non-integer or empty
  range, range outside the recording, points out of bounds) is a 400 with
  ``{"error": "..."}``; unknown API paths are a 404 with the same shape.
- A recording of several hosts (``hosts.HostViews``, mode ``hosts``) is
  viewed one host at a time: ``instance=HOST`` on ``/api/info`` and
  ``/api/chart`` picks it (default: the first host; an unknown one is a
  400), and ``/api/info`` lists every host in ``hosts``.
- Computation runs in worker threads, so the event loop keeps answering;
  answers of files are cached per (side, chart, start, end, points, focus).
- After start-up, the overview's scalar columns are read chart by chart
  (while the browser is still loading the page), then histogram indexes are built in
  the background in page order, only while no chart request is being computed, so later heatmaps
  answer quickly without slowing down the first ones.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from aiohttp import web

from rezolus_viewer import page, query
from rezolus_viewer.views import Fixed, View, Views, describe

if TYPE_CHECKING:
    from rezolus_viewer.dashboard import Dashboard
    from rezolus_viewer.recording import Recording
    from rezolus_viewer.source import Source

MAX_POINTS = 4000
CACHE_ENTRIES = 512
WARM_POLL_S = 0.2
RECORDING: web.AppKey[Recording] = web.AppKey("recording")
DASHBOARD: web.AppKey[Dashboard] = web.AppKey("dashboard")
VIEWS: web.AppKey[Views] = web.AppKey("views")
STATE: web.AppKey[State] = web.AppKey("state")


class BadRequestError(ValueError):
    """The request cannot be answered as asked; the message says why."""


class State:
    """The worker pool, the answer cache and the background index builder of one app."""

    def __init__(self) -> None:
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=3, thread_name_prefix="viewer")
        self.cache: OrderedDict[tuple[object, ...], dict[str, Any]] = OrderedDict()
        self.stop = threading.Event()
        self.warmer: threading.Thread | None = None
        self.inflight = 0
        self.idle = threading.Event()
        self.idle.set()
        self.page: str | None = None

    def begin(self) -> None:
        """A chart computation starts (the background builder yields to it)."""
        self.inflight += 1
        self.idle.clear()

    def end(self) -> None:
        """A chart computation ended."""
        self.inflight -= 1
        if self.inflight == 0:
            self.idle.set()


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _int_param(request: web.Request, name: str, default: int) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise BadRequestError(f"{name} must be an integer, got {text!r}") from None


def parse_range(request: web.Request, rec: Source) -> tuple[int, int, int]:
    """Validated (start_ns, end_ns, points) of a chart request."""
    start = _int_param(request, "start", rec.start_ns)
    end = _int_param(request, "end", rec.end_ns)
    points = _int_param(request, "points", 800)
    if start >= end:
        raise BadRequestError(f"empty range: start {start} is not before end {end}")
    if end < rec.start_ns or start > rec.end_ns:
        raise BadRequestError(f"range {start}..{end} is outside the recording ({rec.start_ns}..{rec.end_ns})")
    if not 2 <= points <= MAX_POINTS:
        raise BadRequestError(f"points must be between 2 and {MAX_POINTS}, got {points}")
    return max(start, rec.start_ns), min(end, rec.end_ns), points


def view_of(request: web.Request) -> tuple[str, View]:
    """The side a request names (``side=``, or a host's ``instance=``; default the first) and its view."""
    side = request.query.get("side", "") or request.query.get("instance", "")
    try:
        return side, request.app[VIEWS].get(side)
    except LookupError as exc:
        raise BadRequestError(str(exc.args[0])) from None


def info_body(request: web.Request) -> dict[str, Any]:
    """What ``/api/info`` answers for this request's query."""
    views = request.app[VIEWS]
    extra = views.info()
    if extra.get("waiting"):
        return {"mode": views.mode, **extra, "sections": []}
    _, view = view_of(request)
    name = getattr(view.rec, "path", None)
    body = describe(view.rec, name.name if name is not None else "")
    body["sections"] = view.dash.describe()
    if views.mode != "single":
        body["mode"] = views.mode
        body.update(extra)
    return body


async def info(request: web.Request) -> web.Response:
    """The recording's description and the planned sections and charts (and the mode's extras)."""
    return web.json_response(info_body(request))


async def index(request: web.Request) -> web.Response:
    """The page, with the answer of ``/api/info`` for the same query embedded (files only)."""
    state = request.app[STATE]
    if state.page is None:
        state.page = page.build(page.static_dir())
    body = None
    if request.app[VIEWS].mode != "live":
        try:
            body = info_body(request)
        except BadRequestError:
            body = None
    return web.Response(text=page.render(state.page, body), content_type="text/html")


async def chart(request: web.Request) -> web.Response:
    """One chart's data over the requested range."""
    state = request.app[STATE]
    side, view = view_of(request)
    rec = view.rec
    chart_id = request.query.get("id", "")
    spec = view.dash.charts.get(chart_id)
    if spec is None:
        raise BadRequestError(f"unknown chart {chart_id!r}" if chart_id else "missing chart id")
    start, end, points = parse_range(request, rec)
    focus = request.query.get("focus", "")
    key = (side, view.key, chart_id, start, end, points, focus)
    data = state.cache.get(key)
    if data is None:
        loop = asyncio.get_running_loop()
        state.begin()
        try:
            data = await loop.run_in_executor(
                state.pool, functools.partial(query.evaluate, rec, spec, start, end, points, focus=focus))
        finally:
            state.end()
        if view.key == 0:  # a live snapshot's answers are asked for once: not worth keeping
            state.cache[key] = data
            while len(state.cache) > CACHE_ENTRIES:
                state.cache.popitem(last=False)
    return web.json_response(data)


@web.middleware
async def errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turn bad input into 400 JSON and unknown API paths into 404 JSON."""
    try:
        response: web.StreamResponse = await handler(request)
    except BadRequestError as exc:
        return _error(400, str(exc))
    except web.HTTPNotFound:
        if request.path.startswith("/api/"):
            return _error(404, f"no such API endpoint: {request.path}")
        raise
    return response


def _warm(recs: list[Source], dash: Dashboard, state: State) -> None:
    for rec in recs:
        _warm_one(rec, dash, state)


def _warm_one(rec: Source, dash: Dashboard, state: State) -> None:
    """Read the overview's scalar columns, then build histogram indexes in page order, yielding to requests."""
    ordered = [c for _, _, charts in dash.sections for c in charts]
    overview = [c for sid, _, charts in dash.sections if sid == "overview" for c in charts]
    for chart in overview:
        scalars = [
            col for s in chart.series if s.kind in {"rate", "gauge", "ratio"} for col in (*s.columns, *s.denominator)
        ]
        if scalars and not state.stop.is_set():
            rec.scalars(scalars)
    for spec in ordered:
        for series in spec.series:
            if series.kind in {"histogram", "percentile"}:
                for column in series.columns:
                    while not state.stop.is_set() and not state.idle.wait(WARM_POLL_S):
                        pass
                    if state.stop.is_set():
                        return
                    rec.histogram_index(column)


CLOSE_TIMEOUT_S = 30.0


async def _start_warmer(app: web.Application) -> None:
    state = app[STATE]
    state.warmer = threading.Thread(
        target=_warm, args=(app[VIEWS].recordings(), app[DASHBOARD], state), name="viewer-warm", daemon=True
    )
    state.warmer.start()


async def _close(app: web.Application) -> None:
    """Stop and join every worker before the interpreter exits.

    A thread still inside pyarrow's C++ code at exit aborts the process
    ("terminate called without an active exception"), so nothing is left running.
    """
    state = app[STATE]
    state.stop.set()
    state.pool.shutdown(wait=False, cancel_futures=True)
    loop = asyncio.get_running_loop()
    if state.warmer is not None:
        await loop.run_in_executor(None, state.warmer.join, CLOSE_TIMEOUT_S)
    await loop.run_in_executor(None, functools.partial(state.pool.shutdown, wait=True))
    for rec in app[VIEWS].recordings():
        await loop.run_in_executor(None, rec.close)


def make_app(
    rec: Recording | None, dash: Dashboard, warm: bool = True, *, views: Views | None = None
) -> web.Application:
    """Build the application serving ``rec`` laid out as ``dash`` (or, when given, the sources of ``views``)."""
    app = web.Application(middlewares=[errors])
    if rec is not None:
        app[RECORDING] = rec
    app[DASHBOARD] = dash
    if views is None:
        if rec is None:
            raise ValueError("make_app needs a recording or views")
        views = Fixed({"": rec}, dash)
    app[VIEWS] = views
    app[STATE] = State()
    app.router.add_get("/", index)
    app.router.add_get("/api/info", info)
    app.router.add_get("/api/chart", chart)
    app.router.add_static("/static/", page.static_dir(), follow_symlinks=False)
    if warm:
        app.on_startup.append(_start_warmer)
    app.on_cleanup.append(_close)
    return app
