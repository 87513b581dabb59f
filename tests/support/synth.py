"""Synthetic catalogs and frames for the recorder's tests and benchmarks.

Invariants:
- Values are a pure function of (instance, seq, series), so a test can
  recompute what any recorded row must contain.
- Counters grow with ``seq``; histogram buckets are cumulative and grow too.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING

import numpy as np

from rezolus_core.bus import BusError, ZmqPublisher
from rezolus_core.frame import Catalog, Frame, HistogramValue, MetricType, SeriesSpec
from rezolus_core.tracker import Delivery

if TYPE_CHECKING:
    from collections.abc import Callable

HOST = {"hostname": "synth-host", "kernel": "6.18.0-test"}
MS = 1_000_000
SEC = 1_000_000_000


def wait_until(predicate: Callable[[], object], timeout_s: float, what: str) -> object:
    """Poll ``predicate`` until it is truthy; raise AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def catalog(instance: str = "inst-a", *, cpus: int = 2, extra_cgroups: int = 0) -> Catalog:
    """Build a small catalog: per-CPU counters, a gauge, a histogram and optional cgroup series."""
    specs: list[tuple[str, MetricType, dict[str, str], str]] = []
    specs.extend(
        ("cpu_usage", MetricType.COUNTER, {"state": state, "id": str(cpu)}, "nanoseconds")
        for cpu in range(cpus)
        for state in ("user", "system")
    )
    specs.append(("memory_free", MetricType.GAUGE, {}, "bytes"))
    specs.append(("syscall_latency", MetricType.HISTOGRAM, {"op": "read"}, "nanoseconds"))
    specs.append(("softirq", MetricType.COUNTER, {"kind": "hi", "id": "0"}, "interrupts"))
    specs.extend(
        ("cgroup_cpu_usage", MetricType.COUNTER, {"name": f"/svc/c{n}", "state": "user"}, "ns")
        for n in range(extra_cgroups)
    )
    series = tuple(
        SeriesSpec(i, name, kind, labels, unit, f"synthetic {name}")
        for i, (name, kind, labels, unit) in enumerate(specs)
    )
    return Catalog(instance=instance, series=series, host=HOST)


def counter_value(seq: int, sid: int) -> int:
    """Return the cumulative value of counter ``sid`` at ``seq``."""
    return 1000 * seq * (sid + 1) + sid


def frame(cat: Catalog, seq: int, timestamp_ns: int, interval_ns: int = 1_000_000_000) -> Frame:
    """Build a frame of every series of ``cat`` at ``seq``."""
    counters = [s.id for s in cat.series if s.type is MetricType.COUNTER]
    gauges = [s.id for s in cat.series if s.type is MetricType.GAUGE]
    hists = [s.id for s in cat.series if s.type is MetricType.HISTOGRAM]
    histograms = tuple(
        HistogramValue(
            sid,
            np.array([3, 40, 63], dtype=np.uint16),
            np.array([seq + 1, 2 * seq + 1, 5 * seq + 2], dtype=np.uint64),
        )
        for sid in hists
    )
    return Frame(
        instance=cat.instance,
        seq=seq,
        timestamp_ns=timestamp_ns,
        monotonic_ns=seq * interval_ns,
        interval_ns=interval_ns,
        host=HOST["hostname"],
        catalog_version=cat.version,
        counter_ids=np.array(counters, dtype=np.uint32),
        counter_values=np.array([counter_value(seq, c) for c in counters], dtype=np.uint64),
        gauge_ids=np.array(gauges, dtype=np.uint32),
        gauge_values=np.array([-seq - 1] * len(gauges), dtype=np.int64),
        histograms=histograms,
    )


def delivery(cat: Catalog, seq: int, timestamp_ns: int, *, restarted: bool = False) -> Delivery:
    """Build a delivery as a tracker would hand it over."""
    return Delivery(frame(cat, seq, timestamp_ns), cat, 0, restarted)


def free_endpoint() -> str:
    """Return a loopback TCP endpoint on a port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{sock.getsockname()[1]}"


class SyntheticAgent:
    """Publishes synthetic frames on the wall-clock grid of ``interval_ns`` from a thread."""

    def __init__(
        self, endpoint: str, *, interval_ns: int = 100_000_000, instance: str = "inst-a",
        cpus: int = 2,
    ) -> None:
        self.endpoint = endpoint
        self.cpus = cpus
        self.interval_ns = interval_ns
        self.instance = instance
        self._grow = threading.Event()
        self.published: list[Frame] = []
        self.tick_of: dict[int, int] = {}  # frame timestamp -> the grid tick it was due at
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bound = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout_s: float = 10.0) -> SyntheticAgent:
        """Start publishing; wait until the socket is bound (retrying a busy port)."""
        self._stop.clear()
        self._bound.clear()
        self._thread = threading.Thread(target=self._run, args=(timeout_s,), daemon=True)
        self._thread.start()
        if not self._bound.wait(timeout_s + 1) or self._error is not None:
            raise RuntimeError(f"synthetic agent could not start: {self._error}")
        return self

    def grow(self) -> None:
        """Announce two cgroup series from the next frame on (a catalog update)."""
        self._grow.set()

    def stop(self) -> None:
        """Stop publishing and close the socket."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                publisher = ZmqPublisher(self.endpoint, catalog_every_s=1.0)
                break
            except BusError as exc:
                if time.monotonic() > deadline:
                    self._error = exc
                    self._bound.set()
                    return
                self._stop.wait(0.05)
        self._bound.set()
        cat = catalog(self.instance, cpus=self.cpus)
        publisher.publish_catalog(cat)
        first_tick = time.time_ns() // self.interval_ns + 1
        try:
            while not self._stop.is_set():
                now = time.time_ns()
                next_tick = (now // self.interval_ns + 1) * self.interval_ns
                if self._stop.wait((next_tick - now) / 1e9):
                    break
                seq = next_tick // self.interval_ns - first_tick  # one per tick, like the agent
                if self._grow.is_set() and not any(s.name.startswith("cgroup") for s in cat.series):
                    cat = catalog(self.instance, cpus=self.cpus, extra_cgroups=2)
                    publisher.publish_catalog(cat)
                out = frame(cat, seq, time.time_ns(), self.interval_ns)
                publisher.publish_frame(out)
                self.published.append(out)
                self.tick_of[out.timestamp_ns] = next_tick
        finally:
            publisher.close()
