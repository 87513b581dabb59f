"""Each CPU's event count decides when a histogram map is summed again (issue #19).

The kernel bumps the count after the bucket (``rz_hist_add`` in
``samplers/rezolus.h``); while no CPU's count moved since the read before the
last sum, the agent emits the last values without summing.  Here a fake
kernel changes buckets with or without a bump to show which frames sum:
only those after a bump on any CPU (x86-64), every frame elsewhere; and an
event landing between the count read and the sum is in the next frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rezolus_agent import wiring
from rezolus_agent.bpfload import BpfMaps
from rezolus_agent.sampler import BpfSampler, BpfSpec, SamplerContext
from rezolus_agent.series import FrameBuilder, SeriesRegistry
from rezolus_core import histogram
from rezolus_core.config import Section

CPUS = 4
HISTS = 2
BUCKETS = histogram.layout().buckets


class _Hist(BpfSampler):
    name = "hist_events_test"
    bpf = BpfSpec(hooks=(), maps=("h",), metrics=(
        wiring.Histograms("h", wiring.each("lat", "nanoseconds", "d", "op", ("a", "b"))),))


class _Map:
    """A histogram map as the kernel lays it out, with a kernel's event and an event without its count."""

    def __init__(self) -> None:
        self.arr = np.zeros(CPUS * wiring.hist_row(HISTS), dtype=np.uint64)
        per_cpu = self.arr.reshape(CPUS, wiring.hist_row(HISTS))
        self.cells = per_cpu[:, : HISTS * BUCKETS].reshape(CPUS, HISTS, BUCKETS)
        self.events = per_cpu[:, HISTS * BUCKETS]

    def event(self, cpu: int, hist: int, bucket: int, *, count: bool = True) -> None:
        self.cells[cpu, hist, bucket] += np.uint64(1)
        if count:
            self.events[cpu] += np.uint64(1)

    def totals(self) -> list[int]:
        return [int(n) for n in self.cells.sum(axis=(0, 2))]


def _attach(fake: _Map) -> _Hist:
    sampler = _Hist(SamplerContext(registry=SeriesRegistry("t", {}), options=Section({}, "t"), cpus=CPUS))
    sampler.attach(BpfMaps(arrays={"h": fake.arr}))
    return sampler


def _totals(sampler: _Hist) -> list[int]:
    out = FrameBuilder()
    sampler.sample(out)
    frame = out.build(registry=sampler.ctx.registry, seq=1, timestamp_ns=1, monotonic_ns=1, interval_ns=1, host="h")
    return [int(h.counts.sum()) for h in frame.histograms]


@pytest.fixture
def x86(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run as on x86-64, where the counts are trusted."""
    monkeypatch.setattr(wiring.platform, "machine", lambda: "x86_64")


@pytest.mark.usefixtures("x86")
def test_a_map_is_summed_again_after_a_count_moves_on_any_cpu() -> None:
    """Buckets changed without a count are not read; a count moving on any CPU, the last one too, brings a sum."""
    fake = _Map()
    sampler = _attach(fake)
    fake.event(0, 0, 5)
    assert _totals(sampler) == [1, 0]
    fake.event(1, 1, 9, count=False)
    assert _totals(sampler) == [1, 0], "no count moved: the last values, not a sum"
    for cpu in range(CPUS):
        fake.event(cpu, 1, 3)
        assert _totals(sampler) == fake.totals(), f"a count moved on CPU {cpu}"
    assert _totals(sampler) == fake.totals()


def test_elsewhere_every_frame_sums(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without x86-64's load ordering the counts are not trusted: changes without a count are read too."""
    monkeypatch.setattr(wiring.platform, "machine", lambda: "aarch64")
    fake = _Map()
    sampler = _attach(fake)
    assert _totals(sampler) == [0, 0]
    fake.event(2, 0, 7, count=False)
    assert _totals(sampler) == [1, 0]


class _EventAfterRead(np.ndarray):
    """The event counts; reading them lets one kernel event land before the sum (bucket, then count)."""

    fake: _Map

    def tobytes(self, order: Any = "C") -> bytes:
        raw = np.asarray(self).tobytes(order)
        self.fake.event(3, 0, 11)
        return raw


@pytest.mark.usefixtures("x86")
def test_an_event_between_the_count_read_and_the_sum_is_in_the_next_frame() -> None:
    """The count kept is the one read before the sum, so a frame that summed an event it did not count sums again."""
    fake = _Map()
    sampler = _attach(fake)
    emitter = sampler._wired[0]
    assert isinstance(emitter, wiring._Hists)
    racy = emitter.events.view(_EventAfterRead)
    racy.fake = fake
    emitter.events = racy
    assert _totals(sampler) == [1, 0]
    emitter.events = racy.view(np.ndarray)
    fake.event(0, 1, 2, count=False)
    assert _totals(sampler) == [1, 1], "the count moved after the read: this frame sums, with the uncounted event"
