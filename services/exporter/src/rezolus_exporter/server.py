"""The HTTP side: /metrics with content negotiation and gzip, / and /healthz.

Invariants:
- Text is produced by prometheus_client's encoders (byte-identically on
  ``fasttext``'s path, the agent's part once per frame: ``answer``), chosen
  by ``choose_encoder`` from the Accept header; with native histograms on, a scraper that prefers
  ``application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily;
  encoding=delimited`` gets protobuf (``protobuf``) instead; an Accept header it cannot make
  sense of (garbage, a bad version) gets the Prometheus text format 0.0.4.
- The body is gzip-compressed exactly when Accept-Encoding allows gzip
  (a ``q=0`` refusal counts as not allowed); it is one gzip stream.
- A scrape runs to completion on the event loop between frames, so it
  always sees one consistent window.
"""

from __future__ import annotations

import html
import time
from functools import partial
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics

from rezolus_exporter import protobuf
from rezolus_exporter.answer import Answers

if TYPE_CHECKING:
    from collections.abc import Callable

    from prometheus_client.registry import Collector, CollectorRegistry

    from rezolus_exporter.collector import ScrapeStats
    from rezolus_exporter.state import AgentState

INDEX = """<!doctype html>
<html><head><title>Rezolus exporter</title></head>
<body><h1>Rezolus exporter</h1>
<p>Source: {source}</p>
<ul><li><a href="/metrics">/metrics</a></li><li><a href="/healthz">/healthz</a></li></ul>
</body></html>
"""


def encoder_for(accept: str) -> tuple[Callable[[Collector], bytes], str]:
    """Pick the exposition encoder and content type for an Accept header."""
    try:
        encoder, content_type = choose_encoder(accept)
    except (TypeError, ValueError):
        return generate_latest, CONTENT_TYPE_PLAIN_0_0_4
    if isinstance(encoder, partial) and encoder.func is openmetrics.generate_latest:
        # Every exposed name is already in the legacy character set (naming.py),
        # so any escaping scheme leaves it unchanged; ALLOWUTF8 is the encoder's
        # fast path (the others rebuild each sample name character by character,
        # about 3x the cost of the whole encoding).
        encoder = partial(encoder, escaping=openmetrics.ALLOWUTF8)
    return encoder, content_type


def accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding header allows gzip."""
    for item in header.split(","):
        parts = [p.strip() for p in item.split(";")]
        if parts[0].lower() not in {"gzip", "*"}:
            continue
        q = 1.0
        for param in parts[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0:
            return True
    return False


def make_app(
    registry: CollectorRegistry,
    state: AgentState,
    scrapes: ScrapeStats,
    source: str,
    gzip_level: int = 1,
    *,
    answers: Answers | None = None,
    native_histograms: bool = False,
) -> web.Application:
    """Build the aiohttp application serving one registry.

    ``answers`` holds the agent's parts of the answers (shared with whoever
    prerenders them); without it every scrape encodes the whole registry.
    With ``native_histograms``, a scraper preferring Prometheus's protobuf
    format gets the answer (native histograms included) in it.
    """
    answers = Answers(None, registry, gzip_level) if answers is None else answers

    async def metrics(request: web.Request) -> web.Response:
        started = time.perf_counter()
        accept = request.headers.get("Accept", "")
        gzipped = accepts_gzip(request.headers.get("Accept-Encoding", ""))
        encoder: Callable[[Collector], bytes] | None
        if native_histograms and protobuf.prefers_protobuf(accept):
            encoder, content_type = None, protobuf.CONTENT_TYPE
        else:
            encoder, content_type = encoder_for(accept)
        headers = {"Content-Type": content_type}
        body = answers.answer(encoder, gzipped=gzipped)
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        scrapes.observe(time.perf_counter() - started)
        return web.Response(body=body, headers=headers)

    async def index(_request: web.Request) -> web.Response:
        return web.Response(text=INDEX.format(source=html.escape(source)), content_type="text/html")

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "agent_up": state.is_up(), "source": source})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    return app
