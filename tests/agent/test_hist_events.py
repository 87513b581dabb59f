"""Each CPU's event count of a histogram decides when it is summed again (issue #19).

The kernel bumps a histogram's count on its CPU after the bucket
(``rz_hist_add`` in ``samplers/rezolus.h``); the agent sums again only the
histograms whose count moved on some CPU since the read before the last sum
and keeps the others' values.  Here a fake kernel changes buckets with or
without a count to show which histograms are summed: only those whose count
moved, on any CPU (x86-64), the whole map every frame elsewhere; and an
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
HISTS = 3
BUCKETS = histogram.layout().buckets


class _Hist(BpfSampler):
    name = "hist_events_test"
    bpf = BpfSpec(hooks=(), maps=("h",), metrics=(
        wiring.Histograms("h", wiring.each("lat", "nanoseconds", "d", "op", ("a", "b", "c"))),))


class _Map:
    """A histogram map as the kernel lays it out; an event with its count, or (to show what is read) without."""

    def __init__(self) -> None:
        self.arr = np.zeros(CPUS * wiring.hist_row(HISTS), dtype=np.uint64)
        per_cpu = self.arr.reshape(CPUS, wiring.hist_row(HISTS))
        self.cells = per_cpu[:, : HISTS * BUCKETS].reshape(CPUS, HISTS, BUCKETS)
        self.events = per_cpu[:, HISTS * BUCKETS : HISTS * (BUCKETS + 1)]

    def event(self, cpu: int, hist: int, bucket: int, *, count: bool = True) -> None:
        self.cells[cpu, hist, bucket] += np.uint64(1)
        if count:
            self.events[cpu, hist] += np.uint64(1)

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


def _emitter(sampler: _Hist) -> wiring._Hists:
    emitter = sampler._wired[0]
    assert isinstance(emitter, wiring._Hists)
    return emitter


@pytest.fixture
def x86(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run as on x86-64, where the counts are trusted."""
    monkeypatch.setattr(wiring.platform, "machine", lambda: "x86_64")


@pytest.mark.usefixtures("x86")
def test_a_histogram_is_summed_again_after_its_count_moves_on_any_cpu() -> None:
    """Buckets changed without a count are not read; a histogram's count moving on any CPU brings its sum, only its."""
    fake = _Map()
    sampler = _attach(fake)
    fake.event(0, 0, 5)
    assert _totals(sampler) == [1, 0, 0]
    fake.event(1, 1, 9, count=False)
    assert _totals(sampler) == [1, 0, 0], "no count moved: the last values, not a sum"
    fake.event(2, 0, 4)
    assert _totals(sampler) == [2, 0, 0], "only histogram a's count moved: b is not summed"
    for cpu in range(CPUS):
        fake.event(cpu, 1, 3)
        assert _totals(sampler) == fake.totals(), f"b's count moved on CPU {cpu}"
    fake.event(CPUS - 1, 2, 8)
    fake.event(0, 0, 1)
    assert _totals(sampler) == fake.totals(), "two histograms moved on different CPUs"
    assert _totals(sampler) == fake.totals()


def test_elsewhere_every_frame_sums(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without x86-64's load ordering the counts are not trusted: changes without a count are read too."""
    monkeypatch.setattr(wiring.platform, "machine", lambda: "aarch64")
    fake = _Map()
    sampler = _attach(fake)
    assert _totals(sampler) == [0, 0, 0]
    fake.event(2, 0, 7, count=False)
    assert _totals(sampler) == [1, 0, 0]
    fake.event(1, 2, 7, count=False)
    assert _totals(sampler) == [1, 0, 1]


class _EventAfterSum(np.ndarray):
    """The buckets; summing them lets one kernel event (bucket, then count) land right after the sum."""

    fake: _Map

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        result = getattr(ufunc, method)(*(np.asarray(x) for x in inputs), **kwargs)
        self.fake.event(3, 0, 11)
        return result


@pytest.mark.usefixtures("x86")
def test_an_event_after_the_count_read_is_in_the_next_frame() -> None:
    """The counts kept are those read before the sum: an event the sum missed moves them, so it is summed next."""
    fake = _Map()
    sampler = _attach(fake)
    emitter = _emitter(sampler)
    plain = emitter.rows
    racy = plain.view(_EventAfterSum)
    racy.fake = fake
    fake.event(0, 0, 2)
    emitter.rows = racy
    assert _totals(sampler) == [1, 0, 0]
    emitter.rows = plain
    assert _totals(sampler) == [2, 0, 0], "the event after the sum moved a's count: a is summed again"
