"""Hindsight's series and value model for the shared synthetic agent (``support.synth``), and buffer helpers."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import numpy as np

from rezolus_core.frame import MetricType, SeriesSpec, encode_frame
from rezolus_core.tracker import Tracker
from rezolus_hindsight.buffer import Buffer
from rezolus_recording.records import KIND_ROW
from support import synth

if TYPE_CHECKING:
    from pathlib import Path

    from rezolus_core.frame import Frame

ROWS: list[synth.Row] = [
    ("test_operations", MetricType.COUNTER, {}, "operations", "a counter"),
    ("test_bytes", MetricType.COUNTER, {"op": "read"}, "bytes", "a labelled counter"),
    ("test_level", MetricType.GAUGE, {}, "items", "a gauge"),
    ("test_latency", MetricType.HISTOGRAM, {}, "nanoseconds", "a histogram"),
]


def counter_value(seq: int, sid: int = 0) -> int:
    """The deterministic value of counter ``sid`` (0: test_operations, 1: test_bytes/read) at ``seq``."""
    return synth.counter_value(seq, sid)


class PaddedValues(synth.Values):
    """The default model, except that ``test_pad`` counters are incompressible noise (to fill disk fast)."""

    def __init__(self, padding: int) -> None:
        self.padding = padding

    def counters(self, specs: list[SeriesSpec], seq: int) -> list[int] | np.ndarray:
        """The default model for the first counters, one noise draw per frame for the ``padding`` last ones."""
        base = len(specs) - self.padding
        values = np.empty(len(specs), dtype=np.uint64)
        values[:base] = [self.counter(spec, seq) for spec in specs[:base]]
        values[base:] = np.random.default_rng(seq).integers(0, 2**63, self.padding, dtype=np.uint64)
        return values


def SyntheticAgent(  # noqa: N802 - reads as the agent it builds
    interval_ns: int = 1_000_000_000, padding: int = 0, instance: str | None = None
) -> synth.Agent:
    """One agent instance of the hindsight series plus ``padding`` noise counters."""
    cat = synth.catalog(instance or uuid.uuid4().hex, rows=ROWS, padding=padding, host={"hostname": "synthetic"})
    return synth.Agent(cat, interval_ns, PaddedValues(padding))


S = 1_000_000_000
MS = 1_000_000
T0 = 1_795_000_000 * S  # a Unix time in late 2026


def make(directory: Path, **kwargs: Any) -> Buffer:
    """Open a buffer in ``directory`` (1 s interval, 60 s duration unless overridden)."""
    options = {"interval_ns": S, "duration_ns": 60 * S, "max_bytes": 64 << 20, **kwargs}
    buffer = Buffer(directory, **options)
    buffer.open()
    return buffer


class Feeder:
    """Publishes synthetic frames straight into a buffer, the way the service does."""

    def __init__(self, buffer: Buffer, agent: SyntheticAgent | None = None) -> None:
        self.buffer = buffer
        self.agent = agent or SyntheticAgent()
        self.tracker = Tracker(clock=None)  # the buffer's own rules are under test, not the tracker's
        self.catalog = self.agent.catalog_payload()
        self.tracker.feed(self.catalog)
        self.stored: list[Frame] = []

    def feed(self, timestamp_ns: int) -> bool:
        """Publish the next frame stamped ``timestamp_ns``; True when the buffer kept it."""
        payload = encode_frame(self.agent.next_frame(timestamp_ns))
        (delivery,) = self.tracker.feed(payload)
        kept = self.buffer.ingest(delivery, payload, self.catalog)
        if kept:
            self.stored.append(delivery.frame)
        return kept


def selected_stamps(buffer: Buffer, start: int = 0, end: int = 2**63 - 1) -> list[int]:
    """Timestamps of the frames a snapshot of ``[start, end]`` would read."""
    selection = buffer.select(start, end)
    try:
        return [
            r.timestamp_ns
            for r in selection.records()
            if r.kind == KIND_ROW and selection.start_ns <= r.timestamp_ns <= selection.end_ns
        ]
    finally:
        selection.close()
