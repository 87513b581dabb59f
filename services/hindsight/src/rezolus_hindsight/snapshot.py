"""Turning a selection of the buffer into a parquet file in the recorder's layout.

Invariants:
- The table is built by ``rezolus_recorder.layout.TableBuilder`` and written
  by its ``write_table`` (atomic, zstd), so a snapshot is a recording.
- Stored payloads are replayed through a fresh ``Tracker``, exactly as the
  bus delivered them; only frames inside the selection's range become rows.
- A row's ``missed`` counts the empty grid slots between it and the previous
  row (an outage or lost frames), not the agent frames that the grid
  deliberately skipped; slots are computed as the recorder's ``Grid`` does.
- Everything here is CPU or file work meant for a worker thread; it never
  touches the live buffer, only the selection it was handed, and it always
  closes the selection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rezolus_core.frame import Catalog, Frame, HistogramValue, MetricType, SeriesSpec
from rezolus_core.tracker import Delivery, Tracker
from rezolus_hindsight.records import Kind
from rezolus_hindsight.segment import SegmentError
from rezolus_recorder.layout import TableBuilder, write_options, write_table

if TYPE_CHECKING:
    from pathlib import Path

    from rezolus_hindsight.buffer import Selection


class SnapshotError(RuntimeError):
    """The snapshot could not be built from the buffer (damaged data)."""


@dataclass(frozen=True)
class SnapshotResult:
    """What a written snapshot holds."""

    path: Path
    rows: int
    start_ns: int
    end_ns: int
    bytes: int


def build_table(selection: Selection, *, source: str, interval_ns: int) -> pa.Table:
    """Build the recording table of the frames in the selection's range."""
    try:
        return _build(selection, source, interval_ns)
    except (SegmentError, OSError) as exc:
        raise SnapshotError(f"cannot read the buffer: {exc}") from exc


def _build(selection: Selection, source: str, interval_ns: int) -> pa.Table:
    builder = TableBuilder(source=source, interval_ns=interval_ns)
    tracker = Tracker(pending_limit=1 << 20)
    last_slot: int | None = None
    last_catalog = b""
    for record in selection.records():
        if record.kind is Kind.CATALOG:
            payload = record.payload
            if payload != last_catalog:  # every segment repeats the catalog; decode it once
                tracker.feed(payload)
                last_catalog = payload
            continue
        if not selection.start_ns <= record.timestamp_ns <= selection.end_ns:
            continue
        for delivery in tracker.feed(record.payload):
            frame = delivery.frame
            slot = (frame.timestamp_ns + frame.interval_ns // 2) // interval_ns
            missed = 0 if last_slot is None else max(0, slot - last_slot - 1)
            builder.add(delivery, missed=missed)
            last_slot = slot
    if builder.rows != selection.rows:
        detail = tracker.last_error or "frames were not readable"
        raise SnapshotError(f"read {builder.rows} of {selection.rows} frames: {detail}")
    return builder.table()


def warm_up() -> None:
    """Build and encode a one-row table, so the first real snapshot pays no import costs."""
    catalog = Catalog(
        "warm-up",
        (
            SeriesSpec(0, "warm_up", MetricType.COUNTER, {}, "operations", ""),
            SeriesSpec(1, "warm_up_latency", MetricType.HISTOGRAM, {}, "nanoseconds", ""),
        ),
    )
    frame = Frame(
        instance="warm-up", seq=1, timestamp_ns=1, monotonic_ns=1, interval_ns=1, host="",
        catalog_version=2,
        counter_ids=np.array([0], dtype=np.uint32), counter_values=np.array([1], dtype=np.uint64),
        gauge_ids=np.array([], dtype=np.uint32), gauge_values=np.array([], dtype=np.int64),
        histograms=(HistogramValue(1, np.array([3], dtype=np.uint16), np.array([1], dtype=np.uint64)),),
    )
    builder = TableBuilder(source="warm-up", interval_ns=1)
    builder.add(Delivery(frame, catalog, missed_before=0, restarted=False))
    pq.write_table(builder.table(), pa.BufferOutputStream(), **write_options())


def write(selection: Selection, path: Path, *, source: str, interval_ns: int) -> SnapshotResult:
    """Build and write the snapshot at ``path`` (atomically); always closes the selection."""
    try:
        table = build_table(selection, source=source, interval_ns=interval_ns)
    finally:
        selection.close()
    size = write_table(table, path)
    return SnapshotResult(path, table.num_rows, selection.start_ns, selection.end_ns, size)
