"""Core tests' small catalog (through the shared builder, ``support.synth``) and hand-made frames."""

from __future__ import annotations

import numpy as np

from rezolus_core import histogram
from rezolus_core.frame import Catalog, Frame, HistogramValue, MetricType
from support import synth


def catalog(instance: str = "a" * 32, extra: int = 0) -> Catalog:
    """A small catalog (shared builder): one counter, one gauge, one histogram, plus ``extra`` counters."""
    rows: list[synth.Row] = [
        ("cpu_usage", MetricType.COUNTER, {"state": "user", "id": "0"}, "nanoseconds", "cpu"),
        ("memory_free", MetricType.GAUGE, {}, "bytes", "free"),
        ("syscall_latency", MetricType.HISTOGRAM, {"op": "read"}, "nanoseconds", "lat"),
    ]
    rows += [("syscall", MetricType.COUNTER, {"op": f"x{i}"}, "syscalls", "n") for i in range(extra)]
    return synth.catalog(instance, rows=rows, host={"hostname": "test"})


def frame(seq: int, instance: str = "a" * 32, version: int = 3, value: int = 0) -> Frame:
    """A frame matching ``catalog``; its counter and histogram grow with ``seq`` as cumulative values do."""
    hist = histogram.from_values([10, 2**40, *([1000] * seq)])
    idx, cnt = histogram.to_sparse(hist)
    return Frame(
        instance=instance,
        seq=seq,
        timestamp_ns=1_700_000_000_000_000_000 + seq * 1_000_000_000,
        monotonic_ns=seq * 1_000_000_000,
        interval_ns=1_000_000_000,
        host="test",
        catalog_version=version,
        counter_ids=np.array([0], dtype=np.uint32),
        counter_values=np.array([value or seq * 1000], dtype=np.uint64),
        gauge_ids=np.array([1], dtype=np.uint32),
        gauge_values=np.array([-seq], dtype=np.int64),
    ).with_histograms((HistogramValue(2, idx, cnt),))


def endpoint() -> str:
    """A tcp:// endpoint on a loopback port that was free a moment ago."""
    import socket  # noqa: PLC0415 - keeps this module's import surface small

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{sock.getsockname()[1]}"

