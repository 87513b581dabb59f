"""``rezolus-exporter``: serve the agent's frames as Prometheus metrics.

Invariants:
- Configuration and command-line problems print one line and exit 2; a
  listen address that cannot be bound prints one line and exits 1.
- The exporter starts whether or not the agent is there: the subscriber
  reconnects on its own, ``agent_up`` is 0 until frames arrive.
- One event loop runs both the subscription and the HTTP server, so a scrape
  never sees a half-ingested frame.  Each frame's answer (agent part, gzip
  included) is built as it arrives for the formats scraped in the last
  minute (``answer``), in slices between which scrapes are served.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from rezolus_core import log, web
from rezolus_core.bus import AsyncSubscriber
from rezolus_core.lifecycle import guard_config, run_service
from rezolus_core.shell import config_path
from rezolus_exporter import config as exporter_config
from rezolus_exporter.answer import Answers
from rezolus_exporter.collector import AgentCollector, ScrapeStats, SelfCollector
from rezolus_exporter.render import Settings
from rezolus_exporter.server import make_app
from rezolus_exporter.state import AgentState

if TYPE_CHECKING:
    import argparse

    from rezolus_exporter.config import ExporterConfig

PROG = exporter_config.PROG
WATCH_EVERY_S = 0.5


class Exporter:
    """Subscriber, state, registry and HTTP server of one exporter process."""

    name = PROG

    def __init__(self, cfg: ExporterConfig) -> None:
        self.cfg = cfg
        self.state = AgentState(cfg.window_ns, cfg.stale_intervals, keep_history=cfg.summaries)
        self.scrapes = ScrapeStats()
        self.registry = CollectorRegistry(auto_describe=False)
        self.subscriber: AsyncSubscriber | None = None
        self.agent = AgentCollector(
            self.state,
            Settings(cfg.quantiles, cfg.percents, cfg.histogram_grouping_power, names=cfg.naming),
            summaries=cfg.summaries,
            histograms=cfg.histograms,
            native_histograms=cfg.native_histograms,
        )
        self._served: web.Served | None = None
        self.answers: Answers | None = None

    async def startup(self) -> None:
        """Subscribe to the agent and bind the HTTP server."""
        self.subscriber = AsyncSubscriber(self.cfg.source, keys=self.cfg.curve)
        tracker = self.subscriber.tracker
        self.registry.register(self.agent)
        own = SelfCollector(self.state, lambda: tracker.stats, self.scrapes, self.agent)
        self.registry.register(own)
        self.answers = Answers(self.agent, own, self.cfg.gzip_level)
        app = make_app(
            self.registry,
            self.state,
            self.scrapes,
            self.cfg.source,
            self.cfg.gzip_level,
            answers=self.answers,
            native_histograms=self.cfg.native_histograms,
        )
        self._served = await web.start(app, self.cfg.listen)
        log.get().info("listening", listen=str(self._served.listen), source=self.cfg.source)

    async def _consume(self) -> None:
        assert self.subscriber is not None  # noqa: S101 - startup ran
        async for delivery in self.subscriber.deliveries():
            if delivery.restarted:
                log.get().info("agent restarted", instance=delivery.frame.instance)
            self.state.ingest(delivery)
            if self.answers is not None:  # encode the agent's part now, so a scrape of this frame finds it ready
                await self.answers.prerender(delivery.frame.interval_ns / 1e9)

    async def _watch(self, stopping: asyncio.Event) -> None:
        """Look at the agent's health regularly, so changes are logged without scrapes."""
        while not stopping.is_set():
            self.state.is_up()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=WATCH_EVERY_S)

    async def run(self, stopping: asyncio.Event) -> None:
        """Follow the agent until asked to stop."""
        consumer = asyncio.create_task(self._consume())
        watcher = asyncio.create_task(self._watch(stopping))
        stop = asyncio.create_task(stopping.wait())
        await asyncio.wait({consumer, stop}, return_when=asyncio.FIRST_COMPLETED)
        for task in (consumer, watcher, stop):
            task.cancel()
        results = await asyncio.gather(consumer, watcher, stop, return_exceptions=True)
        failure = next((r for r in results if isinstance(r, Exception)), None)
        if failure is not None:
            raise failure

    async def shutdown(self) -> None:
        """Stop serving and close the subscription."""
        if self._served is not None:
            await self._served.close()
        if self.subscriber is not None:
            self.subscriber.close()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line arguments (argparse exits 2 on usage errors)."""
    parser = exporter_config.SPEC.parser()
    parser.add_argument("config_file", nargs="?", metavar="CONFIG", help="TOML configuration (same as --config)")
    return parser.parse_args(exporter_config.SPEC.normalize(sys.argv[1:] if argv is None else argv))


def main(argv: list[str] | None = None) -> int:
    """Run the exporter; the return value is the process exit code."""
    args = parse_args(argv)

    def build() -> int:
        cfg = exporter_config.load(config_path(args), **exporter_config.SPEC.flags(args))
        log.configure(PROG, cfg.log_level)
        return run_service(Exporter(cfg))

    return guard_config(PROG, build)


if __name__ == "__main__":
    raise SystemExit(main())
