"""Answers cached per frame (text, protobuf, gzip) are exactly the answers built from scratch."""

from __future__ import annotations

import zlib

import exporter_helpers as h
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from test_exporter_fasttext import ACCEPTS
from test_exporter_render import PERCENTS, feed

from rezolus_core.bus import MemoryBus
from rezolus_core.tracker import TrackerStats
from rezolus_exporter import answer, fasttext, protobuf
from rezolus_exporter.collector import AgentCollector, ScrapeStats, SelfCollector
from rezolus_exporter.config import DEFAULT_QUANTILES
from rezolus_exporter.render import Settings
from rezolus_exporter.server import encoder_for

FORMATS = [*ACCEPTS, None]  # None: Prometheus's protobuf format
# (instance, step, seconds to wait after the frame): idle histograms (repeated steps), a restart, a stale agent.
SCRIPT = [("agent-a", 0, 0.5), ("agent-a", 1, 1), ("agent-a", 1, 1), ("agent-a", 4, 5), ("agent-b", 0, 1),
          ("agent-b", 2, 1), ("agent-b", 3, 1)]  # fmt: skip


def one_stream(body: bytes) -> bytes:
    """The content of a body that must be exactly one complete gzip stream."""
    stream = zlib.decompressobj(31)
    content = stream.decompress(body) + stream.flush()
    assert stream.eof
    assert stream.unused_data == b""
    return content


class Agent:
    """A state fed frame by frame through a MemoryBus, with one catalog per instance."""

    def __init__(self, *, classic: bool, native: bool) -> None:
        self.registry, self.clock, self.collector = feed([])
        self.settings = Settings(DEFAULT_QUANTILES, PERCENTS, 3)
        self.collector = AgentCollector(
            self.collector.state, self.settings, summaries=True, histograms=classic, native_histograms=native
        )
        self.classic, self.native = classic, native
        self.bus = MemoryBus()
        self.subscription = self.bus.attach()
        self.seq: dict[str, int] = {}

    def send(self, instance: str, step: int) -> None:
        """Publish and ingest one frame (a catalog first for a new instance)."""
        if instance not in self.seq:
            self.bus.publish_catalog(h.catalog(instance))
            self.seq[instance] = 0
        self.bus.publish_frame(h.frame(step, instance, seq=self.seq[instance]))
        self.seq[instance] += 1
        for delivery in self.subscription.deliveries:
            self.collector.state.ingest(delivery)
        self.subscription.deliveries.clear()

    def fresh(self) -> AgentCollector:
        """A collector built now, with nothing cached."""
        return AgentCollector(
            self.collector.state, self.settings, summaries=True, histograms=self.classic, native_histograms=self.native
        )


def from_scratch(agent: Agent, own: SelfCollector, encoder) -> bytes:
    """The whole answer encoded now by a fresh collector and the library (or the protobuf encoder)."""
    if encoder is None:
        return protobuf.generate([*agent.fresh().families(), *own.collect()])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(agent.fresh())
    registry.register(own)
    return encoder(registry)


@pytest.mark.parametrize("accept", FORMATS)
@pytest.mark.parametrize(("classic", "native"), [(True, False), (False, True), (True, True)])
def test_cached_answers_equal_answers_built_from_scratch(accept, classic, native):
    """Frame by frame, two scrapes each, plain and gzip: the same bytes (content) as a fresh encoding."""
    agent = Agent(classic=classic, native=native)
    scrapes = ScrapeStats()
    own = SelfCollector(agent.collector.state, TrackerStats, scrapes, agent.collector)
    answers = answer.Answers(agent.collector, own, clock=lambda: agent.clock.now / 1e9)
    encoder = None if accept is None else encoder_for(accept)[0]
    for instance, step, wait_s in SCRIPT:
        agent.send(instance, step)
        for _ in range(2):
            plain = answers.answer(encoder, gzipped=False)
            assert plain == from_scratch(agent, own, encoder)
            zipped = answers.answer(encoder, gzipped=True)
            assert one_stream(zipped) == plain
            scrapes.observe(0.003)  # the own families change between scrapes
            agent.clock.now += 1000
        agent.clock.now += int(wait_s * h.SECOND)
    agent.clock.now += 5 * h.SECOND
    final = answers.answer(encoder, gzipped=False)  # stale: the agent's part is empty
    assert final == from_scratch(agent, own, encoder)
    assert b"syscall_latency" not in final


class Constant:
    """Own families that never change (so answers of one frame compare equal)."""

    def collect(self):
        """One gauge."""
        yield GaugeMetricFamily("rezolus_exporter_agent_up", "Up.", value=1.0)


def drive(coroutine) -> int:
    """Run a coroutine that only ever awaits ``asyncio.sleep(0)``; return how many times it paused."""
    pauses = 0
    try:
        while True:
            coroutine.send(None)
            pauses += 1
    except StopIteration:
        return pauses


@pytest.mark.parametrize("accept", [ACCEPTS[0], None])
def test_prerender_builds_the_answer_as_the_frame_arrives_and_scrapes_meanwhile_get_the_previous_one(
    accept, monkeypatch
):
    """While a frame's answer is built, a scrape gets the previous frame's, whole; afterwards the new one, ready."""
    monkeypatch.setattr(answer, "SLICE_S", 0.0)  # pause after every family
    agent = Agent(classic=True, native=True)
    now = [0.0]
    answers = answer.Answers(agent.collector, Constant(), clock=lambda: now[0])
    encoder = None if accept is None else encoder_for(accept)[0]
    key = answer.PROTOBUF if encoder is None else fasttext.format_key(encoder)
    for step in range(3):  # scrapes once a second, as often as frames
        agent.send("agent-a", step)
        paused = drive(answers.prerender(1.0))
        assert (paused > 0) == (step == 2)  # once two scrapes have shown their rhythm
        answers.answer(encoder, gzipped=True)
        now[0] += 1.0
    previous = answers.answer(encoder, gzipped=False), one_stream(answers.answer(encoder, gzipped=True))
    agent.send("agent-a", 3)
    building = answers.prerender(1.0)
    building.send(None)  # paused after the first family
    assert answers.answer(encoder, gzipped=False) == previous[0]
    assert one_stream(answers.answer(encoder, gzipped=True)) == previous[1]
    drive(building)
    part = answers._formats[key].part
    assert part.key == agent.collector.current()[0]
    assert part.gzip is not None  # gzip was asked for: compressed as the frame arrived
    registry = CollectorRegistry(auto_describe=False)
    registry.register(agent.fresh())
    registry.register(Constant())
    want = protobuf.generate([*agent.fresh().families(), *Constant().collect()]) if encoder is None else None
    want = encoder(registry) if encoder is not None else want
    assert answers.answer(encoder, gzipped=False) == want
    assert answers._formats[key].part is part  # the scrape used what was built, nothing again


def test_nothing_is_prerendered_while_scrapes_are_slower_than_frames():
    """Frames every second, scrapes every 15 s: the first scrape of a frame builds its part, not the frame."""
    agent = Agent(classic=True, native=False)
    now = [0.0]
    answers = answer.Answers(agent.collector, Constant(), clock=lambda: now[0])
    encoder = encoder_for(ACCEPTS[0])[0]
    agent.send("agent-a", 0)
    answers.answer(encoder, gzipped=False)
    now[0] += 15.0
    answers.answer(encoder, gzipped=False)
    part = answers._formats[fasttext.format_key(encoder)].part
    agent.send("agent-a", 1)
    assert drive(answers.prerender(1.0)) == 0
    assert answers._formats[fasttext.format_key(encoder)].part is part


@pytest.mark.parametrize(
    "offsets",
    [
        [0.05, 0.95] * 10,  # each second's scrape at an alternating phase: gaps of 1.9 s and 0.1 s
        [0.0] * 18 + [20.0] * 6,  # a steady rhythm, one 21 s pause, then steady again
    ],
)
def test_scrapes_at_the_frame_rate_keep_prerendering_whatever_their_phase_or_one_pause(offsets):
    """One scrape per frame on average: once the rhythm is known, every frame is prerendered (no scrape builds)."""
    agent = Agent(classic=True, native=False)
    now = [0.0]
    answers = answer.Answers(agent.collector, Constant(), clock=lambda: now[0])
    encoder = encoder_for(ACCEPTS[0])[0]
    key = fasttext.format_key(encoder)
    for step, offset in enumerate(offsets):
        now[0] = step + offset
        agent.send("agent-a", step)
        drive(answers.prerender(1.0))
        if step > answer.GAPS:
            assert answers._formats[key].part.key == agent.collector.key()
        answers.answer(encoder, gzipped=False)
