"""The adversary's pieces: an honest frame stream, one-field lies, and every subscriber's ingest path.

Invariants:
- Honest frames are what an agent sends: consecutive sequence numbers, wall
  and monotonic clocks one interval apart, cumulative counters and buckets.
- A lie is one message that still decodes as far as msgpack goes: the
  msgpack body of an honest frame (or catalog) with exactly one field or one
  array element changed.
- ``Subscribers`` feeds one tracker's deliveries to the exporter's state and
  collector, the recorder's row picking and journal, and hindsight's buffer,
  as the services do, and checks the invariants after every message.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack
import numpy as np
from prometheus_client import CollectorRegistry, generate_latest

from rezolus_core import histogram
from rezolus_core.frame import Catalog, Frame, HistogramValue, MetricType, SeriesSpec, encode_catalog, encode_frame
from rezolus_core.tracker import CONFIRM, Delivery, Tracker
from rezolus_exporter.collector import AgentCollector
from rezolus_exporter.render import Settings
from rezolus_exporter.state import AgentState
from rezolus_hindsight.buffer import Buffer
from rezolus_recorder import journal
from rezolus_recorder.service import Options, Recorder

if TYPE_CHECKING:
    from collections.abc import Callable

S = 1_000_000_000
INSTANCE = "a" * 32
T0 = 1_790_000_000 * S  # a wall-clock time before "now" on any machine running these tests
M0 = 5_000 * S
FIGURES = Counter[str]()


def catalog(instance: str = INSTANCE) -> Catalog:
    """Two counters, a gauge and two histograms."""
    series = (
        SeriesSpec(0, "cpu_usage", MetricType.COUNTER, {"state": "user"}, "nanoseconds", "cpu"),
        SeriesSpec(1, "syscall", MetricType.COUNTER, {"op": "read"}, "syscalls", "n"),
        SeriesSpec(2, "memory_free", MetricType.GAUGE, {}, "bytes", "free"),
        SeriesSpec(3, "syscall_latency", MetricType.HISTOGRAM, {"op": "read"}, "nanoseconds", "lat"),
        SeriesSpec(4, "scheduler_runqueue_latency", MetricType.HISTOGRAM, {}, "nanoseconds", "rq"),
    )
    return Catalog(instance, series, {"hostname": "adversary"})


def honest(seq: int, instance: str = INSTANCE) -> Frame:
    """The agent's frame ``seq``: everything cumulative grows with ``seq``."""
    hists = []
    for sid, values in ((3, [10, 1000, 2**20]), (4, [5, 70_000])):
        dense = histogram.from_values(values * seq)
        idx, cnt = histogram.to_sparse(dense)
        hists.append(HistogramValue(sid, idx, cnt))
    return Frame(
        instance=instance,
        seq=seq,
        timestamp_ns=T0 + seq * S,
        monotonic_ns=M0 + seq * S,
        interval_ns=S,
        host="adversary",
        catalog_version=5,
        counter_ids=np.array([0, 1], dtype=np.uint32),
        counter_values=np.array([seq * 900_000_000, seq * 37], dtype=np.uint64),
        gauge_ids=np.array([2], dtype=np.uint32),
        gauge_values=np.array([1 << 30], dtype=np.int64),
    ).with_histograms(hists)


ARRAYS = {"ci": "<u4", "cv": "<u8", "gi": "<u4", "gv": "<i8", "hi": "<u4", "hn": "<u4", "hx": "<u2", "hc": "<u8"}
SCALARS = ("s", "t", "m", "d", "c", "i", "h", "v", "k")


def mutate(payload: bytes, key: str, value: Any, position: int = 0) -> bytes:
    """Change one field (or one element of one packed array) of an encoded message."""
    body = msgpack.unpackb(payload, raw=False)
    if key in ARRAYS:
        array = np.frombuffer(body[key], dtype=ARRAYS[key]).copy()
        if array.size == 0:
            return payload
        info = np.iinfo(array.dtype)
        array[position % array.size] = min(max(int(value), info.min), info.max)
        body[key] = array.tobytes()
    else:
        body[key] = value
    return msgpack.packb(body, use_bin_type=True)  # type: ignore[no-any-return]


def catalog_lie(kind: str, value: int) -> bytes:
    """A catalog of the followed instance (or another) that breaks the append-only rule."""
    honest_catalog = catalog()
    series = list(honest_catalog.series)
    if kind == "shorter":
        series = series[: value % len(series)]
    elif kind == "retype":
        spec = series[value % len(series)]
        other = MetricType.GAUGE if spec.type is not MetricType.GAUGE else MetricType.COUNTER
        series[spec.id] = SeriesSpec(spec.id, spec.name, other, spec.labels, spec.unit, spec.description)
    elif kind == "relabel":
        spec = series[value % len(series)]
        series[spec.id] = SeriesSpec(spec.id, spec.name, spec.type, {"lie": str(value)}, spec.unit, "")
    elif kind == "instance":
        return encode_catalog(catalog(f"{value:032x}"))
    return encode_catalog(Catalog(INSTANCE, tuple(series), honest_catalog.host))


@dataclass
class Served:
    """What the exporter served last: counter values by id and cumulative bucket totals by id."""

    counters: dict[int, int] = field(default_factory=dict)
    buckets: dict[int, np.ndarray] = field(default_factory=dict)


class Subscribers:
    """One tracker and the exporter, recorder and hindsight ingest paths behind it."""

    def __init__(self, directory: Path, clock: Callable[[], int]) -> None:
        self.tracker = Tracker(clock=clock)
        self.now = 0
        self.state = AgentState(3600 * S, stale_intervals=3, clock=lambda: self.now)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(
            AgentCollector(self.state, Settings((0.5, 0.99), (50.0, 99.0), 0), summaries=True, histograms=True)
        )
        self.buffer = Buffer(directory / "buffer", interval_ns=S, duration_ns=3600 * S, max_bytes=64 << 20)
        self.buffer.open()
        output = directory / "recording.parquet"
        self.recorder = Recorder(
            Options("tcp://127.0.0.1:1", S, None, output, 1.0, 3600.0, tty=False)
        )
        self.recorder._journal = journal.JournalWriter(journal.journal_path(output), {"interval_ns": S})
        self.catalog_payload = encode_catalog(catalog())
        self.delivered: list[tuple[int, Delivery]] = []
        self.served = Served()
        self.history = 0
        self.rows = 0
        self.messages = 0

    def close(self) -> None:
        """Release the files."""
        self.buffer.close()
        if self.recorder._journal is not None:
            self.recorder._journal.close()

    def feed(self, payload: bytes) -> list[Delivery]:
        """One message through the tracker and every subscriber; invariants checked after it."""
        self.messages += 1
        self.now += S
        deliveries = self.tracker.feed(payload)
        FIGURES["messages"] += 1
        for delivery in deliveries:
            self.delivered.append((self.messages, delivery))
            self.state.ingest(delivery)
            self.recorder._take(self.recorder.sources[0], delivery)
            raw = payload if delivery is deliveries[-1] else encode_frame(delivery.frame)
            self.buffer.ingest(delivery, raw, self.catalog_payload)
            self._check_exporter(delivery)
        self._check_retained(resynced=any(d.resynced or d.restarted for d in deliveries))
        return deliveries

    def _check_exporter(self, delivery: Delivery) -> None:
        text = generate_latest(self.registry)  # must not raise
        assert b"rezolus_" in text or b"cpu_usage" in text
        FIGURES["exporter: scrape answered"] += 1
        window = self.state.window()
        assert window is not None
        latest = window.latest
        reset = delivery.restarted or delivery.resynced
        counters = dict(zip(latest.counter_ids.tolist(), latest.counter_values.tolist(), strict=True))
        buckets = {h.id: histogram.to_dense(h.indices, h.counts) for h in latest.histograms}
        if not reset:
            for sid, value in counters.items():
                assert value >= self.served.counters.get(sid, 0), f"counter {sid} fell without a reset"
            for sid, dense in buckets.items():
                before = self.served.buckets.get(sid)
                assert before is None or bool(np.all(dense >= before)), f"histogram {sid} fell without a reset"
            FIGURES["exporter: served counters and buckets never fell"] += 1
        self.served = Served(counters, buckets)
        history = len(self.state._history)
        if not delivery.restarted:
            assert history >= self.history, "the exporter's window lost history to one frame"
            FIGURES["exporter: window history kept"] += 1
        self.history = history

    def _check_retained(self, *, resynced: bool) -> None:
        rows = self.buffer.rows()
        if not resynced:  # a real clock step moves the retention window with it
            assert rows >= self.rows, f"hindsight's retained rows fell from {self.rows} to {rows}"
            FIGURES["hindsight: retained rows never fell"] += 1
        self.rows = rows
        newest = self.buffer.newest_ns
        assert newest is None or newest <= T0 + 10_000 * S, "hindsight stored a frame from the future"
        FIGURES["hindsight: nothing from the future stored"] += 1


def write_figures() -> None:
    """Add this run's counts to the JSON file named by REZOLUS_RELIABILITY_FIGURES, if set."""
    target = os.environ.get("REZOLUS_RELIABILITY_FIGURES")
    if not target:
        return
    path = Path(target)
    old: dict[str, int] = json.loads(path.read_text()) if path.exists() else {}
    for key, value in FIGURES.items():
        old[key] = old.get(key, 0) + value
    path.write_text(json.dumps(old, indent=1, sort_keys=True) + "\n")
    FIGURES.clear()


__all__ = ["CONFIRM", "T0", "S", "Subscribers", "catalog", "catalog_lie", "honest", "mutate", "write_figures"]
