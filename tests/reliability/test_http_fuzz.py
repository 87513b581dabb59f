"""HTTP fuzz of hindsight, the exporter and the viewer (in-process, loopback, bounded).

Every service answers every drawn request (methods, odd paths, query
strings, headers, bodies, content encodings) with a status below 500; a
HEAD answer carries no body; hindsight writes nothing outside its output
directory and leaves no scratch directory behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from adversary import FIGURES, T0, S, Subscribers, catalog, honest, write_figures
from aiohttp import web
from http_fuzz import requests, send
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from rezolus_core.frame import encode_catalog, encode_frame
from rezolus_core.tracker import Tracker
from rezolus_exporter.collector import AgentCollector, ScrapeStats, SelfCollector
from rezolus_exporter.render import Settings
from rezolus_exporter.server import make_app as exporter_app
from rezolus_exporter.state import AgentState
from rezolus_hindsight.http import make_app as hindsight_app
from rezolus_viewer import dashboard
from rezolus_viewer.api import make_app as viewer_app
from rezolus_viewer.recording import Recording
from support.hindsight_service import empty_service

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from rezolus_hindsight.service import HindsightService

BATCH = 10
EXAMPLES = 15
PHASES = (Phase.explicit, Phase.reuse, Phase.generate)  # a failure prints its batch; shrinking takes minutes
STATUSES: dict[str, Counter[int]] = {}


def files(root: Path) -> set[Path]:
    """Every file under ``root``."""
    return {p for p in root.rglob("*") if p.is_file()}


def scratch_dirs() -> set[str]:
    """Hindsight's GET scratch directories in the temporary directory."""
    return {p.name for p in Path(tempfile.gettempdir()).glob("rezolus-hindsight-*")}


def parser_refusal(answer: Any) -> bool:
    """A 400 that aiohttp's HTTP parser wrote itself, before any application code ran.

    Such answers (a request-target with raw non-ASCII bytes, ``HEAD *``, a
    Content-Encoding aiohttp cannot decode) carry a text body even for HEAD;
    that is aiohttp's protocol layer, outside what the services can shape.
    """
    return answer.status == 400 and b"text/plain" in answer.head and answer.body != b""


async def serve(app: web.Application, batch: list[bytes], service: str) -> None:
    """Serve ``app`` on a loopback port and check the answer to every request of ``batch``."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        for raw in batch:
            answer = await send(port, raw)
            STATUSES.setdefault(service, Counter())[answer.status] += 1
            FIGURES[f"http {service}: requests"] += 1
            assert 100 <= answer.status < 500, (raw[:160], answer.head[:160], answer.body[:160])
            if raw.startswith(b"HEAD "):
                if parser_refusal(answer):
                    FIGURES[f"http {service}: HEAD refused by aiohttp's parser (400 with a body)"] += 1
                    continue
                assert answer.body == b"", (raw[:160], answer.body[:80])
                FIGURES[f"http {service}: HEAD answers without a body"] += 1
    finally:
        await runner.cleanup()


def hindsight_service(root: Path) -> HindsightService:
    """A hindsight service (no bus) whose buffer holds 30 one-second frames."""
    svc = empty_service(root)
    tracker = Tracker(clock=lambda: T0 + 10_000 * S)
    tracker.feed(encode_catalog(catalog()))
    catalog_payload = encode_catalog(catalog())
    for seq in range(1, 31):
        payload = encode_frame(honest(seq))
        for delivery in tracker.feed(payload):
            svc.buffer.ingest(delivery, payload, catalog_payload)
    return svc


@pytest.fixture(scope="module")
def recording() -> Iterator[Path]:
    """A small real recording, made by the recorder's own journal and conversion."""
    with tempfile.TemporaryDirectory() as tmp:
        subs = Subscribers(Path(tmp), clock=lambda: T0 + 10_000 * S)
        subs.feed(encode_catalog(catalog()))
        for seq in range(1, 31):
            subs.feed(encode_frame(honest(seq)))
        subs.buffer.close()
        asyncio.run(subs.recorder.shutdown())
        assert subs.recorder.result is not None
        yield subs.recorder.result.output


def batches(paths: tuple[str, ...], params: tuple[str, ...]) -> Any:
    """A strategy for one batch of requests."""
    return st.lists(requests(paths, params), min_size=BATCH, max_size=BATCH)


@settings(max_examples=EXAMPLES, deadline=None, phases=PHASES, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches(("/snapshot", "/status"), ("last", "start", "end", "name")))
def test_hindsight(batch: list[bytes]) -> None:
    """No 5xx, HEAD without a body, no file outside the output directory, no scratch left."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        svc = hindsight_service(root)
        before = files(root) - files(root / "out") - files(root / "data")
        scratch = scratch_dirs()
        try:
            asyncio.run(serve(hindsight_app(svc), batch, "hindsight"))
        finally:
            svc.buffer.close()
            svc._executor.shutdown(wait=True)
        assert files(root) - files(root / "out") - files(root / "data") == before
        assert all(p.suffix == ".parquet" and not p.name.startswith(".") for p in files(root / "out"))
        assert scratch_dirs() <= scratch
        FIGURES["http hindsight: nothing written outside the output directory"] += 1


def exporter() -> Callable[[], web.Application]:
    """An exporter app factory whose state holds ten frames (agent up whatever the clock)."""
    state = AgentState(60 * S, stale_intervals=10**9, clock=lambda: 0)
    registry = CollectorRegistry(auto_describe=False)
    agent = AgentCollector(state, Settings((0.5, 0.99), (50.0, 99.0), 3), summaries=True, histograms=True)
    tracker = Tracker(clock=lambda: T0 + 10_000 * S)
    tracker.feed(encode_catalog(catalog()))
    for seq in range(1, 11):
        for delivery in tracker.feed(encode_frame(honest(seq))):
            state.ingest(delivery)
    scrapes = ScrapeStats()
    registry.register(agent)
    registry.register(SelfCollector(state, lambda: tracker.stats, scrapes, agent))
    return lambda: exporter_app(registry, state, scrapes, "tcp://127.0.0.1:4241")


@settings(max_examples=EXAMPLES, deadline=None, phases=PHASES, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches(("/metrics", "/", "/healthz"), ("name[]", "format")))
def test_exporter(batch: list[bytes]) -> None:
    """No 5xx and HEAD without a body, whatever the Accept headers say."""
    asyncio.run(serve(exporter()(), batch, "exporter"))


@settings(max_examples=EXAMPLES, deadline=None, phases=PHASES, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches(("/", "/api/info", "/api/chart", "/static/app.js"), ("id", "start", "end", "points")))
def test_viewer(batch: list[bytes], recording: Path) -> None:
    """No 5xx and HEAD without a body, for any chart id, range and static path."""
    rec = Recording(recording)
    app = viewer_app(rec, dashboard.plan(rec.columns.values()), warm=False)
    asyncio.run(serve(app, batch, "viewer"))


@pytest.fixture(autouse=True, scope="module")
def _figures() -> Iterator[None]:
    yield
    for service, counts in STATUSES.items():
        FIGURES[f"http {service}: 5xx answers"] += sum(n for code, n in counts.items() if code >= 500)
        with contextlib.suppress(KeyError):
            FIGURES[f"http {service}: 4xx answers"] += sum(n for code, n in counts.items() if 400 <= code < 500)
    write_figures()
