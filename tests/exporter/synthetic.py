"""A fixed synthetic agent: a small catalog like the agent's and deterministic frames."""

from __future__ import annotations

import numpy as np
from rezolus_core import histogram
from rezolus_core.frame import Catalog, Frame, HistogramValue, MetricType, SeriesSpec

INTERVAL_NS = 1_000_000_000

C, G, H = MetricType.COUNTER, MetricType.GAUGE, MetricType.HISTOGRAM


def catalog(instance: str = "agent-a") -> Catalog:
    """Counters, gauges and histograms with the agent's units and labels."""
    rows = [
        ("cpu_usage", C, {"state": "user", "id": "0"}, "nanoseconds", "CPU time spent, by state."),
        ("cpu_usage", C, {"state": "system", "id": "0"}, "nanoseconds", "CPU time spent, by state."),
        ("cpu_usage", C, {"state": "user", "id": "1"}, "nanoseconds", "CPU time spent, by state."),
        ("syscall", C, {"op": "read"}, "syscalls", "System calls, by family."),
        ("blockio_bytes", C, {"op": "write"}, "bytes", "Bytes of completed block requests."),
        ("memory_total", G, {}, "bytes", "Total memory."),
        ("cpu_cores", G, {}, "cpus", "Online CPUs."),
        ("widget_level", G, {}, "widgets", "A metric with a unit nobody knows."),
        ("syscall_latency", H, {"op": "read"}, "nanoseconds", "System call latency."),
        ("blockio_size", H, {"op": "write"}, "bytes", "Block request sizes."),
    ]
    series = tuple(
        SeriesSpec(i, name, kind, labels, unit, text)
        for i, (name, kind, labels, unit, text) in enumerate(rows)
    )
    return Catalog(instance=instance, series=series, host={"hostname": "synthetic"})


def latencies(step: int) -> list[int]:
    """Deterministic latency values (ns) recorded during one interval."""
    return [1000 * (step + 1) + 37 * k for k in range(50)] + [2_000_000 + step]


def frame(step: int, instance: str = "agent-a", *, seq: int | None = None) -> Frame:
    """The cumulative frame after ``step`` intervals of a steady synthetic workload."""
    n = step + 1
    counters = np.array(
        [n * 250_000_000, n * 50_000_000, n * 900_000_000, n * 1000, n * 4096], dtype=np.uint64
    )
    lat = histogram.empty()
    for k in range(n):
        lat += histogram.from_values(latencies(k))
    sizes = histogram.from_values([4096] * (3 * n) + [65536] * n)
    hists = []
    for sid, dense in ((8, lat), (9, sizes)):
        idx, cnt = histogram.to_sparse(dense)
        hists.append(HistogramValue(sid, idx, cnt))
    return Frame(
        instance=instance,
        seq=step if seq is None else seq,
        timestamp_ns=1_700_000_000_000_000_000 + n * INTERVAL_NS,
        monotonic_ns=5_000_000_000 + n * INTERVAL_NS,
        interval_ns=INTERVAL_NS,
        host="synthetic",
        catalog_version=10,
        counter_ids=np.arange(5, dtype=np.uint32),
        counter_values=counters,
        gauge_ids=np.array([5, 6, 7], dtype=np.uint32),
        gauge_values=np.array([8_000_000_000, 2, -3], dtype=np.int64),
        histograms=tuple(hists),
    )
