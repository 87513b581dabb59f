"""Synthetic agent (catalogs and frames built with rezolus_core.frame) and buffer helpers for hindsight tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from rezolus_core.frame import (
    Catalog,
    Frame,
    HistogramValue,
    MetricType,
    SeriesSpec,
    encode_catalog,
    encode_frame,
)
from rezolus_core.tracker import Tracker
from rezolus_hindsight.buffer import Buffer
from rezolus_hindsight.records import Kind

if TYPE_CHECKING:
    from pathlib import Path

SERIES = (
    SeriesSpec(0, "test_operations", MetricType.COUNTER, {}, "operations", "a counter"),
    SeriesSpec(1, "test_bytes", MetricType.COUNTER, {"op": "read"}, "bytes", "a labelled counter"),
    SeriesSpec(2, "test_level", MetricType.GAUGE, {}, "items", "a gauge"),
    SeriesSpec(3, "test_latency", MetricType.HISTOGRAM, {}, "nanoseconds", "a histogram"),
)


def counter_value(seq: int) -> int:
    """The deterministic value of test_operations at ``seq``."""
    return seq * 7 + 3


@dataclass
class SyntheticAgent:
    """Builds the payloads one agent instance would publish."""

    instance: str = field(default_factory=lambda: uuid.uuid4().hex)
    interval_ns: int = 1_000_000_000
    padding: int = 0
    seq: int = 0

    def series(self) -> tuple[SeriesSpec, ...]:
        """Return the fixed series plus ``padding`` per-id counters."""
        pads = tuple(
            SeriesSpec(len(SERIES) + i, "test_pad", MetricType.COUNTER, {"id": str(i)}, "operations", "padding")
            for i in range(self.padding)
        )
        return SERIES + pads

    def catalog(self) -> Catalog:
        """Return the catalog of this instance."""
        return Catalog(self.instance, self.series(), {"hostname": "synthetic"})

    def catalog_payload(self) -> bytes:
        """Return the encoded catalog."""
        return encode_catalog(self.catalog())

    def frame(self, timestamp_ns: int) -> Frame:
        """Return the next frame, stamped ``timestamp_ns``."""
        self.seq += 1
        seq = self.seq
        noise = np.random.default_rng(seq).integers(0, 2**63, self.padding, dtype=np.uint64)
        return Frame(
            instance=self.instance,
            seq=seq,
            timestamp_ns=timestamp_ns,
            monotonic_ns=seq * self.interval_ns,
            interval_ns=self.interval_ns,
            host="synthetic",
            catalog_version=len(SERIES) + self.padding,
            counter_ids=np.concatenate(
                [np.array([0, 1], dtype=np.uint32), np.arange(len(SERIES), len(SERIES) + self.padding, dtype=np.uint32)]
            ),
            counter_values=np.concatenate(
                [np.array([counter_value(seq), seq * 4096], dtype=np.uint64), noise]
            ),
            gauge_ids=np.array([2], dtype=np.uint32),
            gauge_values=np.array([seq % 13 - 6], dtype=np.int64),
            histograms=(
                HistogramValue(
                    3,
                    np.array([1, 40, 100], dtype=np.uint16),
                    np.array([seq, 2 * seq, 3 * seq], dtype=np.uint64),
                ),
            ),
        )

    def frame_payload(self, timestamp_ns: int) -> bytes:
        """Return the next frame, encoded."""
        return encode_frame(self.frame(timestamp_ns))


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
        payload = encode_frame(self.agent.frame(timestamp_ns))
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
            if r.kind is Kind.FRAME and selection.start_ns <= r.timestamp_ns <= selection.end_ns
        ]
    finally:
        selection.close()
