"""Declared map → metric wiring on hand-made maps (no BPF needed): which column becomes which series."""

from __future__ import annotations

import numpy as np

from rezolus_agent.bpfload import BpfMaps
from rezolus_agent.cgroup_table import CGROUP_HIST_GROUPING_POWER, widen_index
from rezolus_agent.sampler import BpfSampler, BpfSpec, SamplerContext
from rezolus_agent.series import FrameBuilder, SeriesRegistry
from rezolus_agent.wiring import Counters, Histograms, Series, each, hist_row, one
from rezolus_core import histogram
from rezolus_core.config import Section
from rezolus_core.frame import HistogramValue, iter_values

BUCKETS = histogram.layout().buckets


class Wired(BpfSampler):
    """Two counters summed over CPUs, one counter per CPU, two histograms."""

    name = "wired"
    bpf = BpfSpec(
        hooks=(),
        maps=("summed", "percpu", "hists"),
        metrics=(
            Counters("summed", (*each("w_bytes", "bytes", "d", "direction", ("receive", "transmit")),)),
            Counters("percpu", (Series("w_events", "events", "d", (("kind", "a"),)),), per_cpu=True),
            Histograms("hists", (*one("w_latency", "nanoseconds", "d"), *one("w_size", "bytes", "d"))),
        ),
    )


def test_columns_become_the_declared_series() -> None:
    """Columns map to series in order; per-CPU series carry ``id`` after their labels; unused columns stay out."""
    cpus = 2
    maps = BpfMaps(arrays={
        "summed": np.array([1, 2, 99, 0, 10, 20, 99, 0], dtype=np.uint64),
        "percpu": np.array([5, 7, 3, 9], dtype=np.uint64),
        "hists": np.zeros(cpus * hist_row(2), dtype=np.uint64),
    })
    rows = maps.arrays["hists"].reshape(cpus, hist_row(2))[:, : 2 * BUCKETS].reshape(cpus, 2, BUCKETS)
    rows[0, 0, 3], rows[1, 0, 3], rows[1, 1, 7] = 1, 2, 4
    registry = SeriesRegistry("t", {})
    sampler = Wired(SamplerContext(registry, Section({}, "t"), cpus=cpus))
    sampler.options()
    sampler.attach(maps)
    out = FrameBuilder()
    sampler.sample(out)
    frame = out.build(registry=registry, seq=1, timestamp_ns=1, monotonic_ns=1, interval_ns=1, host="h")
    values = {spec.key(): value for spec, value in iter_values(frame, registry.catalog())}
    assert values[("w_bytes", (("direction", "receive"),))] == 11
    assert values[("w_bytes", (("direction", "transmit"),))] == 22
    assert values[("w_events", (("id", "0"), ("kind", "a")))] == 5
    assert values[("w_events", (("id", "1"), ("kind", "a")))] == 3
    assert [list(s.labels) for s in registry.catalog().series if s.name == "w_events"] == [["kind", "id"]] * 2
    latency, size = values[("w_latency", ())], values[("w_size", ())]
    assert isinstance(latency, HistogramValue)
    assert isinstance(size, HistogramValue)
    assert (list(latency.indices), list(latency.counts)) == ([3], [3])
    assert (list(size.indices), list(size.counts)) == ([7], [4])
    assert len(values) == 6
    maps.arrays["summed"][4] += 5
    again = FrameBuilder()
    sampler.sample(again)
    assert int(again.build(registry=registry, seq=2, timestamp_ns=2, monotonic_ns=2, interval_ns=1,
                           host="h").counter_values[0]) == 16, "values are read live from the map each frame"


def test_coarse_cgroup_histograms_carry_unchanged_in_the_fine_layout() -> None:
    """Widened grouping-power-2 counts answer percentiles with the coarse bucket's upper bound, and downsample back."""
    coarse_layout = histogram.layout(CGROUP_HIST_GROUPING_POWER)
    rng = np.random.default_rng(7)
    values = np.concatenate([
        rng.integers(0, 20, 500).astype(np.uint64),
        np.minimum(rng.lognormal(10, 3, 5000), 2.0**62).astype(np.uint64),
        np.array([2**64 - 1, 2**63], dtype=np.uint64),
    ])
    coarse = histogram.empty(coarse_layout)
    histogram.record(coarse, values, coarse_layout)
    fine = histogram.empty()
    fine[widen_index()] = coarse
    wanted = [0.0, 1.0, 50.0, 90.0, 99.0, 99.9, 100.0]
    assert histogram.percentiles(fine, wanted) == histogram.percentiles(coarse, wanted, coarse_layout)
    assert np.array_equal(histogram.downsample(fine, CGROUP_HIST_GROUPING_POWER), coarse)
    assert len(set(widen_index().tolist())) == coarse_layout.buckets
