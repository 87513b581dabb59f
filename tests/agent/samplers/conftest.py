"""Fixtures of the sampler tests: load samplers without the agent; reap workloads a failed test left."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import sched_workloads

from rezolus_agent.bpfload import BpfLoader
from rezolus_agent.cpus import possible_cpus
from rezolus_agent.registry import available
from rezolus_agent.sampler import BpfSampler, ProcSampler, Sampler, SamplerContext
from rezolus_agent.series import FrameBuilder, SeriesRegistry
from rezolus_core.config import Section
from rezolus_core.frame import MetricType
from support.live import reap_bpftrace

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@dataclass
class Loaded:
    """Started samplers sharing one registry; ``read`` returns current values by series key."""

    registry: SeriesRegistry
    samplers: list[Sampler]

    def read(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], Any]:
        """Series (name, sorted labels) -> counter value or dense histogram."""
        builder = FrameBuilder()
        for sampler in self.samplers:
            sampler.sample(builder)
        frame = builder.build(
            registry=self.registry,
            seq=1,
            timestamp_ns=0,
            monotonic_ns=0,
            interval_ns=1,
            host="test",
        )
        specs = self.registry.catalog().series
        out: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = {}
        for sid, value in zip(frame.counter_ids, frame.counter_values, strict=True):
            spec = specs[int(sid)]
            out[(spec.name, tuple(sorted(spec.labels.items())))] = int(value)
        for hist in frame.histograms:
            spec = specs[hist.id]
            assert spec.type is MetricType.HISTOGRAM
            dense = np.zeros(496, dtype=np.uint64)
            dense[np.asarray(hist.indices, dtype=np.int64)] = hist.counts
            out[(spec.name, tuple(sorted(spec.labels.items())))] = dense
        return out


@pytest.fixture
def load_samplers(root_bpf: None) -> Iterator[Callable[..., Loaded]]:  # noqa: ARG001 - needs BPF
    """Compile and start the named samplers (with optional options per sampler); detach at teardown."""
    loaders: list[BpfLoader] = []
    started: list[Sampler] = []

    def _load(*names: str, options: dict[str, dict[str, Any]] | None = None) -> Loaded:
        classes = available()
        cpus = possible_cpus(Path("/sys"))
        registry = SeriesRegistry("test", {})
        samplers: list[Sampler] = []
        for name in names:
            section = Section(dict((options or {}).get(name, {})), "test", f"samplers.{name}")
            sampler = classes[name](SamplerContext(registry=registry, options=section, cpus=cpus))
            sampler.options()
            section.finish()
            samplers.append(sampler)
        loader = BpfLoader(cpus)
        loaders.append(loader)
        maps, failures = loader.load([s for s in samplers if isinstance(s, BpfSampler)])
        assert not failures, failures
        for sampler in samplers:
            if isinstance(sampler, BpfSampler):
                sampler.attach(maps[sampler.name])
            else:
                assert isinstance(sampler, ProcSampler)
                sampler.start()
            started.append(sampler)
        return Loaded(registry, samplers)

    yield _load
    for sampler in started:
        sampler.close()
    for loader in loaders:
        loader.close()


@pytest.fixture(autouse=True)
def _reap_workloads() -> Iterator[None]:
    """Kill workload processes a failed test left parked (so its cgroup can be removed) and its bpftrace."""
    yield
    sched_workloads.reap()
    reap_bpftrace()
