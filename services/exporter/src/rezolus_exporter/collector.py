"""The prometheus_client collectors: agent series and the exporter's own health.

Invariants:
- ``AgentCollector.collect`` yields nothing unless the agent is up (a frame
  arrived within ``stale_intervals`` intervals): stale numbers are never
  served, and Prometheus marks the vanished series stale.
- The plan is rebuilt only when the catalog changes, the families only when
  a new frame arrived, so many scrapers cost one rendering per frame.
- ``SelfCollector`` always answers, agent or not; its counters are the
  subscription tracker's own and only ever grow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from rezolus_core import log
from rezolus_exporter import plan as plan_mod
from rezolus_exporter.histfamily import HistogramFamily, Shape
from rezolus_exporter.render import LabelSets, Settings, render_each

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from prometheus_client.core import Metric

    from rezolus_core.tracker import TrackerStats
    from rezolus_exporter.state import AgentState, Window

WindowKey = tuple[str, int, int | None]
"""What a window's families depend on: agent instance, newest and baseline sequence numbers."""

SCRAPE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


@dataclass
class ScrapeStats:
    """A small fixed-bucket histogram of how long /metrics took to answer."""

    counts: list[int] = field(default_factory=lambda: [0] * len(SCRAPE_BUCKETS))
    total: int = 0
    seconds: float = 0.0

    def observe(self, seconds: float) -> None:
        """Record one scrape's duration."""
        self.total += 1
        self.seconds += seconds
        for i, bound in enumerate(SCRAPE_BUCKETS):
            if seconds <= bound:
                self.counts[i] += 1


class AgentCollector:
    """Families for the agent's series, from the state's current window."""

    def __init__(
        self,
        state: AgentState,
        settings: Settings,
        *,
        summaries: bool,
        histograms: bool,
        native_histograms: bool = False,
    ) -> None:
        self.state = state
        self.settings = replace(settings, classic=histograms, native=native_histograms)
        self.summaries = summaries
        self.histograms = histograms or native_histograms
        self.plan: plan_mod.Plan | None = None
        self._cache_key: WindowKey | None = None
        self._cache: list[Metric] = []
        self._label_sets: LabelSets = {}
        self._shapes: dict[tuple[Any, ...], Shape] = {}

    def collect(self) -> Iterator[Metric]:
        """Yield the agent's text families, or nothing when the agent is down or stale."""
        for family in self.families():
            if not isinstance(family, HistogramFamily) or family.classic:
                yield family

    def families(self) -> list[Metric]:
        """Every agent family, native-only histograms included (for protobuf answers)."""
        return self.current()[1]

    def key(self) -> WindowKey | None:
        """The current window's key, None when the agent is down or stale (nothing rendered)."""
        window = self.state.window()
        return None if window is None else _key(window)

    def current(self) -> tuple[WindowKey | None, list[Metric]]:
        """The window's key (None when the agent is down or stale) and its families, rendered once per window."""
        for _ in self.prepare():
            pass
        return self._cache_key, self._cache

    def prepare(self) -> Iterator[None]:
        """Render the current window's families unless done, pausing after each family."""
        window = self.state.window()
        if window is None:
            self._cache_key, self._cache = None, []
            return
        catalog = window.catalog
        if self.plan is None or (self.plan.instance, self.plan.version) != (
            catalog.instance,
            catalog.version,
        ):
            self.plan = plan_mod.build(
                catalog, summaries=self.summaries, histograms=self.histograms, names=self.settings.names
            )
            self._label_sets = {}
            for series, reason in self.plan.dropped:
                log.get().warning("series not exported", series=series, reason=reason)
        key = _key(window)
        if key == self._cache_key:
            return
        families = []
        for family in render_each(self.plan, window, self.settings, self._label_sets, self._shapes):
            families.append(family)
            yield
        self._cache, self._cache_key = families, key


def _key(window: Window) -> WindowKey:
    return (window.latest.instance, window.latest.seq, None if window.baseline is None else window.baseline.seq)


class SelfCollector:
    """The exporter's health: subscription counters, agent up, scrape durations."""

    def __init__(
        self,
        state: AgentState,
        stats: Callable[[], TrackerStats],
        scrapes: ScrapeStats,
        agent: AgentCollector,
    ) -> None:
        self.state = state
        self.stats = stats
        self.scrapes = scrapes
        self.agent = agent

    def collect(self) -> Iterator[Metric]:
        """Yield the current health families."""
        p = plan_mod.SELF_PREFIX
        stats = self.stats()
        up = self.state.is_up()
        yield GaugeMetricFamily(
            f"{p}agent_up",
            "1 when a frame arrived within the staleness limit, else 0.",
            value=1.0 if up else 0.0,
        )
        counters = (
            (
                "messages_received",
                "Bus messages received (catalogs and frames, valid or not).",
                stats.received,
            ),
            ("frames_received", "Frames delivered from the agent.", stats.delivered),
            (
                "frames_missed",
                "Frames the agent sent that never arrived (sequence gaps).",
                stats.missed,
            ),
            (
                "decode_errors",
                "Messages dropped because they could not be decoded or checked.",
                stats.decode_errors + self.state.rejected,
            ),
            (
                "suspect_frames",
                "Frames dropped as implausible (one frame contradicting the agent's clocks or sequence).",
                stats.suspect,
            ),
            (
                "duplicate_frames",
                "Frames dropped because their sequence number was not new.",
                stats.duplicates,
            ),
            (
                "agent_restarts",
                "Times a new agent instance replaced the one followed.",
                stats.restarts,
            ),
        )
        for name, doc, value in counters:
            yield CounterMetricFamily(f"{p}{name}", doc, value=float(value))
        age = self.state.age_ns()
        if age is not None:
            yield GaugeMetricFamily(
                f"{p}last_frame_age_seconds",
                "Time since the newest frame arrived.",
                value=age / 1e9,
            )
        stamp = self.state.last_timestamp_ns
        if stamp is not None:
            yield GaugeMetricFamily(
                f"{p}last_frame_timestamp_seconds",
                "Agent wall-clock time at which the newest frame was sampled (Unix seconds).",
                value=stamp / 1e9,
            )
        interval = self.state.interval_ns
        if interval is not None:
            yield GaugeMetricFamily(
                f"{p}agent_interval_seconds", "The agent's sampling interval.", value=interval / 1e9
            )
        window = self.state.window()
        span = math.nan if window is None else window.span_ns / 1e9
        yield GaugeMetricFamily(
            f"{p}window_seconds",
            "Agent time covered by the summary quantiles (NaN until two frames arrived).",
            value=span,
        )
        plan = self.agent.plan
        dropped = 0.0 if plan is None else float(len(plan.dropped))
        yield GaugeMetricFamily(
            f"{p}series_dropped",
            "Catalog series left out of the exposition (see the log).",
            value=dropped,
        )
        cumulative = list(self.scrapes.counts)
        yield HistogramMetricFamily(
            f"{p}scrape_duration_seconds",
            "Time to build and encode the /metrics answer.",
            buckets=[
                *((str(b), float(c)) for b, c in zip(SCRAPE_BUCKETS, cumulative, strict=True)),
                ("+Inf", float(self.scrapes.total)),
            ],
            sum_value=self.scrapes.seconds,
        )
