"""The HTTP side: /metrics with content negotiation and gzip, / and /healthz.

Invariants:
- Text is produced by prometheus_client's encoders (histogram bucket lines
  byte-identically on ``fasttext``'s path), chosen by ``choose_encoder``
  from the Accept header; with native histograms on, a scraper that prefers
  ``application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily;
  encoding=delimited`` gets protobuf (``protobuf``) instead; an Accept header it cannot make
  sense of (garbage, a bad version) gets the Prometheus text format 0.0.4.
- The body is gzip-compressed exactly when Accept-Encoding allows gzip
  (a ``q=0`` refusal counts as not allowed).
- A scrape runs to completion on the event loop between frames, so it
  always sees one consistent window.
"""

from __future__ import annotations

import gzip
import html
import time
from functools import partial
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics

from rezolus_exporter import fasttext, protobuf

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from prometheus_client.core import Metric
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
    protobuf_families: Callable[[], Iterable[Metric]] | None = None,
    answers: fasttext.Answers | None = None,
) -> web.Application:
    """Build the aiohttp application serving one registry.

    With ``protobuf_families``, a scraper preferring Prometheus's protobuf
    format gets those families (native histograms included) in it.
    ``answers`` holds the text templates (shared with whoever prerenders).
    """
    answers = fasttext.Answers(time.monotonic) if answers is None else answers

    async def metrics(request: web.Request) -> web.Response:
        started = time.perf_counter()
        accept = request.headers.get("Accept", "")
        if protobuf_families is not None and protobuf.prefers_protobuf(accept):
            body, content_type = protobuf.generate(protobuf_families()), protobuf.CONTENT_TYPE
        else:
            encoder, content_type = encoder_for(accept)
            body = answers.generate(registry.collect(), encoder)
        headers = {"Content-Type": content_type}
        if accepts_gzip(request.headers.get("Accept-Encoding", "")):
            body = gzip.compress(body, compresslevel=gzip_level)
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
