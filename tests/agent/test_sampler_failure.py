"""A sampler that raises while sampling publishes none of its values in that frame, and is down for it."""

from __future__ import annotations

import asyncio

import pytest

from rezolus_agent.agent import Agent
from rezolus_agent.config import AgentConfig
from rezolus_agent.sampler import ProcSampler
from rezolus_core.config import Section
from rezolus_core.frame import iter_values


class Flaky(ProcSampler):
    """Writes a counter and a gauge, then raises on the frames listed in ``FAIL``."""

    name = "flaky"
    FAIL = frozenset({2})

    def start(self) -> None:
        """Register both series."""
        reg = self.ctx.registry
        self.calls = 0
        self._counter = reg.counter("flaky_counter", None, "events", "test")
        self._gauge = reg.gauge("flaky_gauge", None, "events", "test")

    def sample(self, out) -> None:
        """Counter first, then maybe fail, then the gauge."""
        self.calls += 1
        out.counter(self._counter, self.calls)
        if self.calls in self.FAIL:
            raise RuntimeError("reader broke after its first value")
        out.gauge(self._gauge, -self.calls)


class Steady(ProcSampler):
    """Always works: its values must be published in every frame."""

    name = "steady"

    def start(self) -> None:
        """Register the counter."""
        self.calls = 0
        self._id = self.ctx.registry.counter("steady_counter", None, "events", "test")

    def sample(self, out) -> None:
        """Count calls."""
        self.calls += 1
        out.counter(self._id, self.calls)


class Capture:
    """An in-memory publisher."""

    def __init__(self, _endpoint: str) -> None:
        self.catalog = None
        self.frames: list[dict] = []

    def publish_catalog(self, catalog) -> None:
        """Keep the latest catalog."""
        self.catalog = catalog

    def publish_frame(self, frame) -> None:
        """Decode the frame into {series key: value}."""
        self.frames.append({spec.key(): value for spec, value in iter_values(frame, self.catalog)})

    def close(self) -> None:
        """Nothing to release."""


@pytest.fixture
def agent():
    """An agent with Flaky and Steady, started, publishing into memory."""
    samplers = {"flaky": Flaky, "steady": Steady}
    cfg = AgentConfig(options={n: Section({}, "test", f"samplers.{n}") for n in samplers})
    publishers: list[Capture] = []
    agent = Agent(cfg, samplers, publisher_factory=lambda e: publishers.append(Capture(e)) or publishers[-1])
    asyncio.run(agent.startup())
    yield agent, publishers
    asyncio.run(agent.shutdown())


def up(frame: dict, sampler: str) -> int:
    """The frame's rezolus_sampler_up for one sampler."""
    return frame[("rezolus_sampler_up", (("sampler", sampler),))]


def test_failing_sample_publishes_nothing_of_that_sampler_and_up_is_zero(agent) -> None:
    """Frame 2: flaky raised after writing its counter: neither its counter nor gauge goes out, up = 0."""
    agent, publishers = agent
    for _ in range(3):
        agent.sample_once()
    first, failed, third = publishers[0].frames
    assert first[("flaky_counter", ())] == 1
    assert first[("flaky_gauge", ())] == -1
    assert up(first, "flaky") == 1
    assert ("flaky_counter", ()) not in failed, "a partial set of a failing sampler's values was published"
    assert ("flaky_gauge", ()) not in failed
    assert up(failed, "flaky") == 0
    assert failed[("steady_counter", ())] == 2
    assert up(failed, "steady") == 1
    assert third[("flaky_counter", ())] == 3
    assert third[("flaky_gauge", ())] == -3
    assert up(third, "flaky") == 1
