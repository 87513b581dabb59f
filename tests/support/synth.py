"""The one synthetic agent and the one catalog builder of the subscribers' tests and benchmarks.

Invariants:
- ``catalog`` is the only catalog builder: a suite describes its series as
  rows (name, type, labels, unit[, description]); ids follow row order.
- ``Agent`` is the only frame source: every frame carries every series of its
  catalog, cumulative, with values from a ``Values`` model.  The default
  model is a pure function of (seq, series id), so a test can recompute what
  any recorded row must contain; suites may plug in their own model.
- ``SyntheticAgent`` publishes an ``Agent``'s frames on the bus, one per
  tick of the wall-clock grid, from a thread.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from rezolus_core.bus import BusError, ZmqPublisher
from rezolus_core.frame import Catalog, Frame, HistogramValue, MetricType, SeriesSpec, encode_catalog, encode_frame
from rezolus_core.tracker import Delivery

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

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


Row = tuple[str, MetricType, dict[str, str], str] | tuple[str, MetricType, dict[str, str], str, str]


def default_rows(cpus: int = 2, extra_cgroups: int = 0) -> list[Row]:
    """Per-CPU counters, a gauge, a histogram, a softirq counter and optional cgroup series."""
    rows: list[Row] = [
        ("cpu_usage", MetricType.COUNTER, {"state": state, "id": str(cpu)}, "nanoseconds")
        for cpu in range(cpus)
        for state in ("user", "system")
    ]
    rows.append(("memory_free", MetricType.GAUGE, {}, "bytes"))
    rows.append(("syscall_latency", MetricType.HISTOGRAM, {"op": "read"}, "nanoseconds"))
    rows.append(("softirq", MetricType.COUNTER, {"kind": "hi", "id": "0"}, "interrupts"))
    rows.extend(
        ("cgroup_cpu_usage", MetricType.COUNTER, {"name": f"/svc/c{n}", "state": "user"}, "ns")
        for n in range(extra_cgroups)
    )
    return rows


def catalog(
    instance: str = "inst-a",
    *,
    cpus: int = 2,
    extra_cgroups: int = 0,
    rows: Iterable[Row] | None = None,
    padding: int = 0,
    host: Mapping[str, str] = HOST,
) -> Catalog:
    """Build a catalog: ``rows`` (default ``default_rows``) then ``padding`` per-id ``test_pad`` counters.

    A row is (name, type, labels, unit[, description]); ids follow the row order.
    """
    chosen: list[Row] = default_rows(cpus, extra_cgroups) if rows is None else list(rows)
    chosen.extend(("test_pad", MetricType.COUNTER, {"id": str(i)}, "operations", "padding") for i in range(padding))
    series = tuple(
        SeriesSpec(i, row[0], row[1], row[2], row[3], row[4] if len(row) > 4 else f"synthetic {row[0]}")
        for i, row in enumerate(chosen)
    )
    return Catalog(instance=instance, series=series, host=dict(host))


def counter_value(seq: int, sid: int) -> int:
    """Return the cumulative value of counter ``sid`` at ``seq`` (the default value model)."""
    return 1000 * seq * (sid + 1) + sid


class Values:
    """The default value model: every value a pure function of (seq, series id), cumulative in ``seq``.

    Suites with other needs (cumulative random walks, incompressible padding)
    subclass it; the agent asks it for every value of every frame.
    """

    def counter(self, spec: SeriesSpec, seq: int) -> int:
        """Cumulative value of counter ``spec`` at ``seq``."""
        return counter_value(seq, spec.id)

    def counters(self, specs: list[SeriesSpec], seq: int) -> list[int] | np.ndarray:
        """Cumulative values of the counters ``specs`` at ``seq`` (one call per frame, in catalog order)."""
        return [self.counter(spec, seq) for spec in specs]

    def gauge(self, spec: SeriesSpec, seq: int) -> int:  # noqa: ARG002 - same for every gauge
        """Value of gauge ``spec`` at ``seq``."""
        return -seq - 1

    def histogram(self, spec: SeriesSpec, seq: int) -> tuple[np.ndarray, np.ndarray]:  # noqa: ARG002
        """Sparse cumulative buckets (indices, counts) of histogram ``spec`` at ``seq``."""
        return (
            np.array([3, 40, 63], dtype=np.uint16),
            np.array([seq + 1, 2 * seq + 1, 5 * seq + 2], dtype=np.uint64),
        )


class Agent:
    """One synthetic agent instance: builds the frames (and bus payloads) the real agent would publish.

    Every frame carries every series of ``cat``; values come from ``values``.
    ``next_frame`` numbers frames itself (``seq`` is the last one built).
    """

    def __init__(
        self, cat: Catalog, interval_ns: int = SEC, values: Values | None = None, hostname: str | None = None
    ) -> None:
        self.cat = cat
        self.interval_ns = interval_ns
        self.values = values or Values()
        self.hostname = hostname if hostname is not None else cat.host.get("hostname", "")
        self.seq = 0
        self._by_type = tuple([s for s in cat.series if s.type is kind] for kind in MetricType)

    @property
    def instance(self) -> str:
        """The agent instance id."""
        return self.cat.instance

    def frame(self, seq: int, timestamp_ns: int, monotonic_ns: int | None = None) -> Frame:
        """Build the frame of every series at ``seq`` (monotonic time ``seq`` intervals unless given)."""
        counters, gauges, hists = self._by_type
        return Frame(
            instance=self.cat.instance,
            seq=seq,
            timestamp_ns=timestamp_ns,
            monotonic_ns=seq * self.interval_ns if monotonic_ns is None else monotonic_ns,
            interval_ns=self.interval_ns,
            host=self.hostname,
            catalog_version=self.cat.version,
            counter_ids=np.array([s.id for s in counters], dtype=np.uint32),
            counter_values=np.array(self.values.counters(counters, seq), dtype=np.uint64),
            gauge_ids=np.array([s.id for s in gauges], dtype=np.uint32),
            gauge_values=np.array([self.values.gauge(s, seq) for s in gauges], dtype=np.int64),
        ).with_histograms([HistogramValue(s.id, *self.values.histogram(s, seq)) for s in hists])

    def next_frame(self, timestamp_ns: int, monotonic_ns: int | None = None) -> Frame:
        """Build the next frame (``seq`` + 1), stamped ``timestamp_ns`` (and ``monotonic_ns`` if given)."""
        self.seq += 1
        return self.frame(self.seq, timestamp_ns, monotonic_ns)

    def next_payload(self, timestamp_ns: int) -> bytes:
        """The next frame, encoded as the bus carries it."""
        return encode_frame(self.next_frame(timestamp_ns))

    def catalog_payload(self) -> bytes:
        """The catalog, encoded as the bus carries it."""
        return encode_catalog(self.cat)

    def delivery(self, seq: int, timestamp_ns: int, *, restarted: bool = False) -> Delivery:
        """The frame at ``seq`` as a tracker would hand it over."""
        return Delivery(self.frame(seq, timestamp_ns), self.cat, 0, restarted)


def frame(cat: Catalog, seq: int, timestamp_ns: int, interval_ns: int = SEC) -> Frame:
    """Build the default-valued frame of every series of ``cat`` at ``seq``."""
    return Agent(cat, interval_ns).frame(seq, timestamp_ns)


def delivery(cat: Catalog, seq: int, timestamp_ns: int, *, restarted: bool = False) -> Delivery:
    """Build a default-valued delivery as a tracker would hand it over."""
    return Agent(cat).delivery(seq, timestamp_ns, restarted=restarted)


def free_endpoint() -> str:
    """Return a loopback TCP endpoint on a port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{sock.getsockname()[1]}"


class SyntheticAgent:
    """Publishes synthetic frames on the wall-clock grid of ``interval_ns`` from a thread."""

    def __init__(
        self, endpoint: str, *, interval_ns: int = 100_000_000, instance: str = "inst-a",
        cpus: int = 2, host: Mapping[str, str] = HOST,
    ) -> None:
        self.endpoint = endpoint
        self.host = dict(host)
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
        try:
            publisher = bind_publisher(self.endpoint, timeout_s, catalog_every_s=1.0)
        except BusError as exc:
            self._error = exc
            self._bound.set()
            return
        self._bound.set()
        cat = catalog(self.instance, cpus=self.cpus, host=self.host)
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
                    cat = catalog(self.instance, cpus=self.cpus, extra_cgroups=2, host=self.host)
                    publisher.publish_catalog(cat)
                out = Agent(cat, self.interval_ns).frame(seq, time.time_ns())
                publisher.publish_frame(out)
                self.published.append(out)
                self.tick_of[out.timestamp_ns] = next_tick
        finally:
            publisher.close()


def bind_publisher(where: str, timeout_s: float = 5.0, **kwargs: Any) -> ZmqPublisher:
    """A publisher on ``where``, retried while a listener closed in this process still holds the port.

    ZeroMQ closes a socket's listener on its I/O thread after ``close()`` returns, so a publisher
    bound again at once in the same process (a test's "restarted agent") can meet EADDRINUSE.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return ZmqPublisher(where, **kwargs)
        except BusError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
