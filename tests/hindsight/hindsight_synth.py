"""Synthetic agent: catalogs and frames built with rezolus_core.frame, for hindsight tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

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
from rezolus_core.tracker import Delivery, Tracker

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
    interval_ns: int = 100_000_000
    padding: int = 0
    seq: int = 0

    def catalog(self) -> Catalog:
        """The catalog of this instance."""
        return Catalog(self.instance, SERIES, {"hostname": "synthetic"})

    def catalog_payload(self) -> bytes:
        """The encoded catalog."""
        return encode_catalog(self.catalog())

    def frame(self, timestamp_ns: int) -> Frame:
        """The next frame, stamped ``timestamp_ns``."""
        self.seq += 1
        seq = self.seq
        extra = np.arange(self.padding, dtype=np.uint64) + np.uint64(seq)
        return Frame(
            instance=self.instance,
            seq=seq,
            timestamp_ns=timestamp_ns,
            monotonic_ns=seq * self.interval_ns,
            interval_ns=self.interval_ns,
            host="synthetic",
            catalog_version=len(SERIES),
            counter_ids=np.array([0, 1], dtype=np.uint32),
            counter_values=np.array([counter_value(seq), seq * 4096], dtype=np.uint64),
            gauge_ids=np.array([2], dtype=np.uint32),
            gauge_values=np.array([seq % 13 - 6], dtype=np.int64),
            histograms=(
                HistogramValue(
                    3,
                    np.array([1, 40, 100], dtype=np.uint16),
                    np.array([seq, 2 * seq, 3 * seq], dtype=np.uint64) + extra[:0].sum(),
                ),
            ),
        )

    def frame_payload(self, timestamp_ns: int) -> bytes:
        """The next frame, encoded."""
        return encode_frame(self.frame(timestamp_ns))


def deliver(tracker: Tracker, payloads: list[bytes]) -> list[Delivery]:
    """Feed payloads to a tracker and return what it delivered."""
    out: list[Delivery] = []
    for payload in payloads:
        out.extend(tracker.feed(payload))
    return out
