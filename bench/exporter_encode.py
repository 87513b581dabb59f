"""Where a /metrics answer spends its time: rendering families vs prometheus_client's encoders.

Builds 16 histogram series (like the agent's syscall_latency) fed 16 frames of
random latencies, then times, each as the median of N repetitions in this
process: rendering the families (cached label sets, as in the exporter), the
text 0.0.4 encoder, the OpenMetrics encoder as prometheus_client's
choose_encoder picks it, the same encoder on the exporter's fast path
(``server.encoder_for``), the whole answer with bucket lines on
``fasttext``'s path, the protobuf answer with native histograms (plus the
classic buckets unless --no-histograms), gzip level 1, and a scrape of a
frame whose answer is already encoded (``answer``: what every scrape after
the frame's arrival costs).

Usage: .venv/bin/python bench/exporter_encode.py [--grouping-power 3] [--repeat 20] [--no-histograms]
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder, generate_latest

from rezolus_core import histogram, log
from rezolus_core.bus import MemoryBus
from rezolus_core.frame import Catalog, Frame, HistogramValue, MetricType, SeriesSpec
from rezolus_exporter import answer, fasttext, protobuf
from rezolus_exporter.collector import AgentCollector
from rezolus_exporter.config import DEFAULT_QUANTILES
from rezolus_exporter.render import Settings, render
from rezolus_exporter.server import encoder_for
from rezolus_exporter.state import AgentState

if TYPE_CHECKING:
    from collections.abc import Callable

OPS = ("other", "read", "write", "poll", "lock", "time", "sleep", "socket", "yield",
       "filesystem", "memory", "process", "query", "ipc", "timer", "event")  # fmt: skip
OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"


def frames(count: int) -> tuple[Catalog, list[Frame]]:
    """A catalog of 16 latency histograms and ``count`` cumulative frames."""
    catalog = Catalog(
        "bench",
        tuple(SeriesSpec(i, "syscall_latency", MetricType.HISTOGRAM, {"op": op}, "nanoseconds", "Latency.")
              for i, op in enumerate(OPS)),
    )  # fmt: skip
    rng = np.random.default_rng(1)
    totals = [histogram.empty() for _ in OPS]
    out = []
    empty_ids = np.zeros(0, np.uint32)
    for seq in range(count):
        hists = []
        for i, total in enumerate(totals):
            np.add(total, histogram.from_values(rng.lognormal(9, 1.5, 2000).astype(np.uint64)), out=total)
            idx, cnt = histogram.to_sparse(total)
            hists.append(HistogramValue(i, idx, cnt))
        out.append(
            Frame("bench", seq, 10**18 + seq * 10**9, (seq + 1) * 10**9, 10**9, "h", len(OPS),
                  empty_ids, np.zeros(0, np.uint64), empty_ids, np.zeros(0, np.int64)).with_histograms(hists)
        )  # fmt: skip
    return catalog, out


def timed(action: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``action`` in milliseconds."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def fresh_values(templates: fasttext.Templates, registry: CollectorRegistry, encoder: Callable[..., bytes]) -> bytes:
    """The fast path as for a new frame: cached templates, but no family's text reused."""
    for template in templates.values():
        if template is not None and not isinstance(template, str):  # a header has no values
            template.last_values = []
    return fasttext.generate(registry.collect(), encoder, templates)


def main() -> int:
    """Print the timings as a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grouping-power", type=int, default=3, choices=range(4))
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--no-histograms", action="store_true", help="summaries only (the default config)")
    args = parser.parse_args()
    log.configure("exporter-bench", "warning")
    catalog, sequence = frames(16)
    state = AgentState(15 * 10**9, clock=lambda: 0)
    bus = MemoryBus()
    subscription = bus.attach()
    bus.publish_catalog(catalog)
    for frame in sequence:
        bus.publish_frame(frame)
    for delivery in subscription.deliveries:
        state.ingest(delivery)
    settings = Settings(DEFAULT_QUANTILES, (50.0, 90.0, 99.0, 99.9, 99.99), args.grouping_power)
    collector = AgentCollector(state, settings, summaries=True, histograms=not args.no_histograms)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    native_collector = AgentCollector(
        state, settings, summaries=True, histograms=not args.no_histograms, native_histograms=True
    )
    list(collector.collect())
    assert collector.plan is not None
    window = state.window()
    assert window is not None
    label_sets: dict[tuple[str, int], Any] = {}
    render(collector.plan, window, settings, label_sets)
    samples = sum(len(m.samples) for m in collector.collect())
    library_openmetrics = choose_encoder(OPENMETRICS)[0]
    fast_openmetrics = encoder_for(OPENMETRICS)[0]
    body = fast_openmetrics(registry)
    templates: fasttext.Templates = fasttext.Templates()
    fasttext.generate(registry.collect(), fast_openmetrics, templates)  # templates built once, as in the exporter
    answers = answer.Answers(collector, fasttext.Families([]))

    def cached(*, gzipped: bool) -> bytes:
        return answers.answer(fast_openmetrics, gzipped=gzipped)

    cached(gzipped=True)  # the frame's part and its gzip stream, built once
    rows = [
        (
            "render families (label sets cached)",
            timed(lambda: render(collector.plan, window, settings, label_sets), args.repeat),
        ),  # type: ignore[arg-type]
        ("text 0.0.4 encoder", timed(lambda: generate_latest(registry), args.repeat)),
        ("OpenMetrics, library's escaping", timed(lambda: library_openmetrics(registry), args.repeat)),
        ("OpenMetrics, exporter's fast path", timed(lambda: fast_openmetrics(registry), args.repeat)),
        (
            "OpenMetrics, bucket lines on fasttext's path",
            timed(lambda: fresh_values(templates, registry, fast_openmetrics), args.repeat),
        ),
        ("protobuf with native histograms", timed(lambda: protobuf.generate(native_collector.families()), args.repeat)),
        ("gzip level 1 of the OpenMetrics body", timed(lambda: gzip.compress(body, 1), args.repeat)),
        ("a scrape of a frame already encoded (answer.py), gzip", timed(lambda: cached(gzipped=True), args.repeat)),
        ("a scrape of a frame already encoded (answer.py), plain", timed(lambda: cached(gzipped=False), args.repeat)),
    ]
    mode = "summaries only" if args.no_histograms else f"summaries + histograms g={args.grouping_power}"
    print(f"{mode}: {samples} samples, {len(body) / 1024:.0f} KiB OpenMetrics")
    print("| step | median ms | µs per sample |")
    print("|---|---|---|")
    for name, ms in rows:
        print(f"| {name} | {ms:.2f} | {ms * 1000 / samples:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
