"""Turning a selection of the buffer into a parquet file in the recorder's layout.

Invariants:
- Rows are built by ``rezolus_recording.builder.TableBuilder`` and written by
  ``rezolus_recording.writer`` (the recorder's writer), so a snapshot is a
  recording (same columns, metadata and encodings).
- A snapshot streams, as the recorder converts its journal: a first pass
  over the selections' records decodes only catalogs, to learn the ones the
  range's frames were stored with, which are declared so the schema is fixed
  before the first row is written; then one pass decodes the frames and
  writes row groups of at most ``CHUNK_ROWS`` rows and about
  ``writer.ROW_GROUP_BYTES`` of histogram data.  The file metadata goes into
  the footer at the end (``RecordingWriter.commit``), so memory stays bounded
  whatever the range, and every reader (pyarrow's embedded schema included)
  sees the same complete metadata.
- Stored payloads are replayed per source by ``replay.Replay``: the rows a
  fresh ``Tracker`` and ``TableBuilder.add`` would make of them, decoded
  without one object per histogram and with every contract check, each id
  and bucket array checked once while it repeats; a record that cannot
  become its row fails the snapshot (``SnapshotError``) rather than being
  skipped.  Only frames inside the selection's range become rows.  Sources
  follow one another in the file (in the order they were configured), each
  in time order and tagged with its ``source`` so the builder keeps
  restarts, durations and gaps per agent.
- A row's ``missed`` counts the empty grid slots between it and the previous
  row (an outage or lost frames), not the agent frames that the grid
  deliberately skipped; it comes from the slots the buffer stored, exactly as
  the recorder computes it from its journal.
- Memory: the writer encodes a row group in a thread of its own while the
  next one is built (``RecordingWriter(overlap=True)``), so two row groups
  are in memory at most; afterwards the freed memory is given back to the
  system (``release_memory``).  ``pyarrow.parquet`` is loaded by the first
  snapshot, not at start (it costs about 5 MB resident and 20-40 ms once).
- A failed snapshot leaves no file at its path.  Everything here is CPU or
  file work meant for a worker thread; it never touches the live buffer, only
  the selection it was handed, and it always closes the selection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from rezolus_core.frame import Catalog, DecodeError, Frame, HistogramValue, MetricType, SeriesSpec, decode
from rezolus_core.tracker import Delivery
from rezolus_hindsight.replay import Replay, ReplayError
from rezolus_hindsight.segment import SegmentError
from rezolus_recording.arrow import release_memory
from rezolus_recording.builder import TableBuilder
from rezolus_recording.records import KIND_CATALOG
from rezolus_recording.writer import ROW_GROUP_BYTES, STREAM_ROWS, RecordingWriter, write_options

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from rezolus_hindsight.selection import Selection

CHUNK_ROWS = STREAM_ROWS


class SnapshotError(RuntimeError):
    """The snapshot could not be built from the buffer (damaged data)."""


@dataclass
class Selections:
    """The selections of every source's buffer for one snapshot."""

    parts: list[tuple[str, Selection]] = field(default_factory=list)

    def add(self, source: str, selection: Selection) -> None:
        """Add one source's selection (kept only when it holds rows; else closed)."""
        if selection.rows:
            self.parts.append((source, selection))
        else:
            selection.close()

    @property
    def rows(self) -> int:
        """Rows over every source."""
        return sum(s.rows for _, s in self.parts)

    @property
    def start_ns(self) -> int:
        """The oldest selected timestamp."""
        return min(s.start_ns for _, s in self.parts)

    @property
    def end_ns(self) -> int:
        """The newest selected timestamp."""
        return max(s.end_ns for _, s in self.parts)

    def close(self) -> None:
        """Release every source's segment descriptors."""
        for _, selection in self.parts:
            selection.close()


@dataclass(frozen=True)
class SnapshotResult:
    """What a written snapshot holds."""

    path: Path
    rows: int
    start_ns: int
    end_ns: int
    bytes: int


def _catalogs(selection: Selection) -> list[Catalog]:
    """The catalogs the range's frames were stored with (the newest catalog record before each)."""
    used: dict[bytes, Catalog] = {}
    current = b""
    for record in selection.records():
        if record.kind == KIND_CATALOG:
            current = record.payload
        elif selection.start_ns <= record.timestamp_ns <= selection.end_ns and current not in used:
            catalog = decode(current)
            if isinstance(catalog, Catalog):
                used[current] = catalog
    return list(used.values())


def _replay(selections: Selections, builder: TableBuilder, flush: Callable[[], None]) -> None:
    """Add every source's rows to ``builder``, calling ``flush`` for every row group."""
    pending = 0

    def counted() -> None:
        nonlocal pending
        pending += 1
        if pending >= CHUNK_ROWS or builder.pending_bytes >= ROW_GROUP_BYTES:
            flush()
            pending = 0

    for source, selection in selections.parts:
        _replay_one(source, selection, builder, counted)
    if pending:
        flush()


def _replay_one(
    source: str, selection: Selection, builder: TableBuilder, counted: Callable[[], None]
) -> None:
    replay = Replay(builder, source)
    last_slot: int | None = None
    try:
        for record in selection.records():
            if record.kind == KIND_CATALOG:
                replay.catalog(record.payload)
                continue
            slot, timestamp, frame = record.row()
            if not selection.start_ns <= timestamp <= selection.end_ns:
                continue
            replay.frame(frame, missed=0 if last_slot is None else max(0, slot - last_slot - 1))
            last_slot = slot
            counted()
    except ReplayError as exc:
        raise SnapshotError(f"cannot replay the buffer: {exc}") from exc
    if replay.rows != selection.rows:
        raise SnapshotError(f"read {replay.rows} of {selection.rows} frames of {source}")


def _many(selection: Selection | Selections, source: str) -> Selections:
    return selection if isinstance(selection, Selections) else Selections([(source, selection)])


def _builder(selections: Selections, interval_ns: int) -> TableBuilder:
    """A builder with the columns of every catalog the selections' frames use."""
    first = selections.parts[0][0] if selections.parts else ""
    builder = TableBuilder(source=first, interval_ns=interval_ns)
    try:
        for source, selection in selections.parts:
            for catalog in _catalogs(selection):
                builder.declare(catalog, source=source)
    except DecodeError as exc:
        raise SnapshotError(f"cannot read a catalog in the buffer: {exc}") from exc
    return builder


def build_table(selection: Selection | Selections, *, interval_ns: int, source: str = "") -> pa.Table:
    """Build the whole recording table of the range in memory (for tests and tools).

    ``source`` names the agent of a single ``Selection``.
    """
    selection = _many(selection, source)
    try:
        builder = _builder(selection, interval_ns)
        _replay(selection, builder, lambda: None)
    except (SegmentError, OSError) as exc:
        raise SnapshotError(f"cannot read the buffer: {exc}") from exc
    return builder.table()


def _stream(selection: Selections, path: Path, interval_ns: int) -> int:
    builder = _builder(selection, interval_ns)
    columns = builder.columns
    writer = RecordingWriter(path, overlap=True)

    def flush() -> None:
        table = builder.take()
        if builder.columns != columns:
            raise SnapshotError("a frame used a catalog that was not declared")
        writer.write(table)

    try:
        _replay(selection, builder, flush)
        if builder.rows == 0:
            flush()
        return writer.commit(builder.file_metadata())
    except BaseException:
        writer.abort()
        raise


def write(
    selection: Selection | Selections, path: Path, *, interval_ns: int, source: str = ""
) -> SnapshotResult:
    """Build and write the snapshot at ``path`` (atomically); always closes the selections.

    ``source`` names the agent of a single ``Selection``.  The memory the
    snapshot freed is given back to the system afterwards (``release_memory``).
    """
    selection = _many(selection, source)
    try:
        size = _stream(selection, path, interval_ns)
    except (SegmentError, pa.ArrowInvalid) as exc:
        raise SnapshotError(f"cannot read the buffer: {exc}") from exc
    finally:
        selection.close()
        release_memory()
    return SnapshotResult(path, selection.rows, selection.start_ns, selection.end_ns, size)


def warm_up() -> None:
    """Build and encode a one-row table in memory: what a snapshot loads and sets up, measured by benches and tests.

    The service does not run it at start (see the module head).
    """
    import pyarrow.parquet as pq  # noqa: PLC0415 - only a snapshot needs it (writer's module head)

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
    ).with_histograms((HistogramValue(1, np.array([3], dtype=np.uint16), np.array([1], dtype=np.uint64)),))
    builder = TableBuilder(source="warm-up", interval_ns=1)
    builder.add(Delivery(frame, catalog, missed_before=0, restarted=False))
    table = builder.table()
    pq.write_table(table, pa.BufferOutputStream(), **write_options(table.schema))
    del table, builder
    release_memory()
