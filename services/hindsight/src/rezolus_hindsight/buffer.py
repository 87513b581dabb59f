"""The on-disk rolling buffer: sealed segments plus one append-only tail.

Invariants:
- Stored frames lie on the wall-clock grid of ``interval``, chosen by the
  shared ``rezolus_recording.grid.Grid`` (one frame per slot, the one nearest the grid point),
  so a snapshot holds the rows a recorder running alongside would record.
  A frame is also refused unless its timestamp is later than the newest
  stored one, so stored timestamps strictly increase over the buffer's life,
  across restarts.
- The tail (``tail.rzh``) is a magic header followed by records; every frame
  record is preceded somewhere earlier in the tail by the catalog it needs.
  Each record is written with one ``write`` and is CRC-checked, so a crash
  tears at most the record being written; ``open`` truncates that torn end.
- Sealing writes the tail's records as a new segment (atomically) and only
  then empties the tail; if a crash falls in between, ``open`` drops tail
  frames that the newest segment already holds.
- Retention is anchored to the newest stored timestamp, not the clock: a
  segment is deleted once its last frame is older than ``newest - duration``,
  so an agent outage freezes the buffer.
- Disk use (file sizes rounded up to 4 KiB blocks, temporary files included)
  never exceeds ``max_bytes``: room is made by deleting the oldest segments
  before anything is written, and a frame that cannot fit is refused.
- Files of the format before ``rezolus_recording.records`` (v2) are upgraded
  in place by ``legacy`` when the buffer opens, so a buffer survives the
  upgrade; everything else reads only the current format.
- Only the event-loop thread mutates the buffer; ``select`` hands readers
  open descriptors of immutable segments and a copy of the tail's bytes
  (read back from the tail file), so snapshots read in other threads without
  locks.  The tail's records are not kept in memory: the file holds them, and
  sealing and snapshots read it.
"""

from __future__ import annotations

import contextlib
import errno
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from rezolus_core.frame import Catalog, DecodeError, decode
from rezolus_hindsight import legacy, segment
from rezolus_hindsight.selection import Selection
from rezolus_recording import durable, records
from rezolus_recording.grid import Grid
from rezolus_recording.records import KIND_CATALOG, KIND_ROW, Record

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from rezolus_core.tracker import Delivery

TAIL_NAME = "tail.rzh"
TAIL_MAGIC = b"RZHTAIL\x03"  # \x02: the record format before rezolus_recording.records
BLOCK = 4096
MIN_MAX_BYTES = 1 << 20
_TAIL_LIMIT_CAP = 16 << 20


def disk(size: int) -> int:
    """Bytes a file of ``size`` bytes is charged: whole 4 KiB blocks."""
    return -(-size // BLOCK) * BLOCK


@dataclass
class BufferStats:
    """What the buffer did, for /status."""

    stored: int = 0
    skipped: int = 0
    refused: int = 0
    write_errors: int = 0
    sealed: int = 0
    segments_dropped: int = 0
    recovered_torn_bytes: int = 0
    recovered_duplicates: int = 0
    corrupt_segments: int = 0
    last_error: str | None = None
    errors: list[str] = field(default_factory=list)


class Buffer:
    """The rolling buffer in one directory."""

    def __init__(
        self,
        directory: Path,
        *,
        interval_ns: int,
        duration_ns: int,
        max_bytes: int,
        segment_span_ns: int | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        if max_bytes < MIN_MAX_BYTES:
            raise ValueError(f"max_bytes must be at least {MIN_MAX_BYTES}")
        self.directory = directory
        self.interval_ns = interval_ns
        self.duration_ns = duration_ns
        self.max_bytes = max_bytes
        self.segment_span_ns = segment_span_ns or max(8 * interval_ns, duration_ns // 30)
        self.tail_limit = min(_TAIL_LIMIT_CAP, max_bytes // 4)
        self.stats = BufferStats()
        self._on_error = on_error
        self._segments: list[segment.SegmentInfo] = []
        self._next_number = 0
        self._tail_slot: int | None = None  # slot of the newest frame in the tail
        self._tail_frames: list[int] = []
        self._tail_size = len(TAIL_MAGIC)
        self._tail_catalog: tuple[str, int] | None = None
        self._catalog_record: tuple[tuple[str, int], Record] | None = None
        self._fd = -1
        self._grid = Grid(interval_ns)
        self.newest_ns: int | None = None

    # ---- recovery -------------------------------------------------------

    def open(self) -> None:
        """Create or reopen the buffer: index segments, repair the tail, apply limits."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for stale in self.directory.glob("*" + durable.TEMP_SUFFIX):
            stale.unlink()
        for path in sorted(self.directory.glob("seg-*.rzh")):
            try:
                legacy.upgrade_segment(path)
                self._segments.append(segment.read_info(path))
            except (segment.SegmentError, OSError) as exc:
                self.stats.corrupt_segments += 1
                self._error(f"removed unreadable segment: {exc}")
                path.unlink(missing_ok=True)
        self._segments.sort(key=lambda info: info.number)
        self._next_number = self._segments[-1].number + 1 if self._segments else 0
        self._open_tail()
        stamps = [info.last_ts for info in self._segments[-1:]] + self._tail_frames[-1:]
        self.newest_ns = max(stamps) if stamps else None
        self._restore_grid()
        self._retire()
        self._cap(0)

    def _open_tail(self) -> None:
        path = self.directory / TAIL_NAME
        data = path.read_bytes() if path.exists() else b""
        found: list[Record] = []
        if data[: len(TAIL_MAGIC)] == TAIL_MAGIC:
            scanned = records.scan(data, len(TAIL_MAGIC), segment.KINDS)
            found = scanned.records
            self.stats.recovered_torn_bytes = len(data) - scanned.end
        elif (upgraded := legacy.upgrade_tail(data)) is not None:
            found = upgraded
        elif data:
            self._error(f"{path.name}: not a hindsight tail; starting a new one")
        newest_sealed = self._segments[-1].last_ts if self._segments else -1
        kept = [r for r in found if r.kind == KIND_CATALOG or r.timestamp_ns > newest_sealed]
        self.stats.recovered_duplicates = len(found) - len(kept)
        if kept != found or not data.startswith(TAIL_MAGIC):
            durable.write_atomic(path, TAIL_MAGIC + b"".join(r.raw for r in kept))
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        if self.stats.recovered_torn_bytes and kept == found:
            records.truncate_at(self._fd, len(TAIL_MAGIC) + sum(len(r.raw) for r in kept))
        self._tail_slot = None
        self._tail_size = len(TAIL_MAGIC)
        self._tail_frames = []
        for record in kept:
            self._remember(record)

    def _restore_grid(self) -> None:
        """Continue the grid after the newest stored frame (its slot is taken)."""
        if self._tail_slot is not None:
            self._grid.first_slot = self._grid.last_taken = self._tail_slot
            return
        newest: Record | None = None
        if self._segments:
            info = self._segments[-1]
            fd = os.open(info.path, os.O_RDONLY)
            try:
                frames = [r for r in segment.read_records(fd, info) if r.kind == KIND_ROW]
            except segment.SegmentError as exc:
                self._error(f"cannot read the newest segment: {exc}")
                frames = []
            finally:
                os.close(fd)
            newest = frames[-1] if frames else None
        if newest is not None:
            self._grid.first_slot = self._grid.last_taken = newest.slot

    def _remember(self, record: Record) -> None:
        self._tail_size += len(record.raw)
        if record.kind == KIND_ROW:
            self._tail_frames.append(record.timestamp_ns)
            self._tail_slot = record.slot
            return
        try:
            catalog = decode(record.payload)
        except DecodeError:
            return
        if isinstance(catalog, Catalog):
            self._tail_catalog = (catalog.instance, catalog.version)

    def close(self) -> None:
        """Close the tail (its records stay on disk for the next open)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    # ---- ingestion ------------------------------------------------------

    def ingest(self, delivery: Delivery, payload: bytes, catalog_payload: bytes) -> bool:
        """Store one delivered frame if the grid takes it for a new slot; True when stored."""
        ts = delivery.frame.timestamp_ns
        if self.newest_ns is not None and ts <= self.newest_ns:
            self.stats.skipped += 1
            return False
        frame_in = delivery.frame
        pick = self._grid.offer(ts, frame_in.interval_ns, seq=frame_in.seq, instance=frame_in.instance)
        if pick is None:
            self.stats.skipped += 1
            return False
        frame = records.encode_row(pick.slot, ts, payload)
        key = (delivery.catalog.instance, delivery.catalog.version)
        if self._tail_frames and self._tail_size + len(frame.raw) > self.tail_limit:
            self._seal()
        batch = [frame]
        if self._tail_catalog != key:
            batch.insert(0, self._catalog(key, catalog_payload))
        size = sum(len(r.raw) for r in batch)
        if len(TAIL_MAGIC) + size > self.tail_limit or not self._cap(size):
            self.stats.refused += 1
            self._error(f"frame of {size} bytes does not fit in max_bytes {self.max_bytes}")
            return False
        if not self._append(batch):
            return False
        self.stats.stored += 1
        self.newest_ns = ts
        self._retire()
        if self._tail_frames[-1] - self._tail_frames[0] >= self.segment_span_ns:
            self._seal()
        return True

    def _catalog(self, key: tuple[str, int], payload: bytes) -> Record:
        if self._catalog_record is None or self._catalog_record[0] != key:
            self._catalog_record = (key, records.encode(KIND_CATALOG, payload))
        return self._catalog_record[1]

    def _append(self, batch: list[Record]) -> bool:
        try:
            records.append(self._fd, batch)
        except OSError as exc:
            self.stats.write_errors += 1
            self._error(f"cannot append to {TAIL_NAME}: {exc.strerror}; frame lost")
            with contextlib.suppress(OSError):
                records.truncate_at(self._fd, self._tail_size)
            return False
        for record in batch:
            self._remember(record)
        return True

    def _read_tail(self) -> bytes:
        """The tail's records as stored (read back from the file)."""
        want = self._tail_size - len(TAIL_MAGIC)
        fd = os.open(self.directory / TAIL_NAME, os.O_RDONLY)
        try:
            data = os.pread(fd, want, len(TAIL_MAGIC))
        finally:
            os.close(fd)
        if len(data) != want:
            raise OSError(errno.EIO, f"{TAIL_NAME} holds {len(data)} bytes of records, expected {want}")
        return data

    def _seal(self) -> None:
        if not self._tail_frames:
            return
        path = self.directory / segment.file_name(self._next_number)
        try:
            data = segment.build(self._read_tail(), self._tail_frames)
        except OSError as exc:
            self._error(f"cannot read {TAIL_NAME} to seal {path.name}: {exc.strerror}; keeping the tail")
            return
        if not self._cap(0, extra=len(data)):
            self._error(f"no room to seal {path.name} within max_bytes")
            return
        try:
            durable.write_atomic(path, data)
        except OSError as exc:
            self.stats.write_errors += 1
            self._error(f"cannot seal {path.name}: {exc.strerror}; keeping the tail")
            return
        stamps = np.asarray(self._tail_frames, dtype=np.uint64)
        self._segments.append(segment.SegmentInfo(path, self._next_number, stamps, len(data)))
        self._next_number += 1
        self.stats.sealed += 1
        try:
            os.ftruncate(self._fd, len(TAIL_MAGIC))
        except OSError as exc:  # the copies in the tail are dropped on the next open
            self._error(f"cannot empty {TAIL_NAME} after sealing {path.name}: {exc.strerror}")
        self._tail_frames = []
        self._tail_slot = None
        self._tail_size = len(TAIL_MAGIC)
        self._tail_catalog = None

    # ---- limits ---------------------------------------------------------

    @property
    def segments(self) -> list[segment.SegmentInfo]:
        """The sealed segments, oldest first (a copy)."""
        return list(self._segments)

    def disk_bytes(self) -> int:
        """Bytes charged for the buffer's files now."""
        return sum(disk(info.size) for info in self._segments) + disk(self._tail_size)

    def _drop_oldest(self) -> None:
        info = self._segments.pop(0)
        try:
            info.path.unlink(missing_ok=True)
        except OSError as exc:
            self._error(f"cannot delete {info.path.name}: {exc.strerror}")
        self.stats.segments_dropped += 1

    def _cap(self, grow: int, extra: int = 0) -> bool:
        """Delete oldest segments until the tail can grow by ``grow`` and ``extra`` fits."""
        def need() -> int:
            tail = disk(self._tail_size + grow) - disk(self._tail_size)
            return self.disk_bytes() + tail + disk(extra)

        while need() > self.max_bytes and self._segments:
            self._drop_oldest()
        return need() <= self.max_bytes

    def _retire(self) -> None:
        if self.newest_ns is None:
            return
        horizon = self.newest_ns - self.duration_ns
        while self._segments and self._segments[0].last_ts < horizon:
            self._drop_oldest()

    def _error(self, message: str) -> None:
        self.stats.last_error = message
        self.stats.errors = [*self.stats.errors[-9:], message]
        if self._on_error is not None:
            self._on_error(message)

    # ---- reading --------------------------------------------------------

    def _horizon(self) -> int:
        return 0 if self.newest_ns is None else max(0, self.newest_ns - self.duration_ns)

    def _stamps(self) -> Iterator[np.ndarray]:
        horizon = self._horizon()
        for info in self._segments:
            yield info.timestamps[info.timestamps >= horizon]
        tail = np.asarray(self._tail_frames, dtype=np.uint64)
        yield tail[tail >= horizon]

    def rows(self) -> int:
        """Frames retained (within ``duration`` of the newest)."""
        return sum(int(s.size) for s in self._stamps())

    def retained(self) -> tuple[int, int] | None:
        """Timestamps of the oldest and newest retained frames, if any."""
        for stamps in self._stamps():
            if stamps.size and self.newest_ns is not None:
                return int(stamps[0]), self.newest_ns
        return None

    def select(self, start_ns: int, end_ns: int) -> Selection:
        """Open everything holding frames in ``[start_ns, end_ns]`` (clipped to retention)."""
        start_ns = max(start_ns, self._horizon())
        chosen: list[tuple[segment.SegmentInfo, int]] = []
        rows = 0
        first = last = None
        try:
            for info in self._segments:
                stamps = info.timestamps
                inside = stamps[(stamps >= start_ns) & (stamps <= end_ns)]
                if inside.size:
                    chosen.append((info, os.open(info.path, os.O_RDONLY)))
                    rows += int(inside.size)
                    first = int(inside[0]) if first is None else first
                    last = int(inside[-1])
        except OSError:
            Selection(start_ns, end_ns, 0, chosen, b"").close()
            raise
        tail = [t for t in self._tail_frames if start_ns <= t <= end_ns]
        if tail:
            rows += len(tail)
            first = tail[0] if first is None else first
            last = tail[-1]
        if first is None or last is None:
            Selection(start_ns, end_ns, 0, chosen, b"").close()
            return Selection(start_ns, end_ns, 0, [], b"")
        try:
            stored = self._read_tail() if tail else b""
        except OSError:
            Selection(start_ns, end_ns, 0, chosen, b"").close()
            raise
        return Selection(first, last, rows, chosen, stored)
