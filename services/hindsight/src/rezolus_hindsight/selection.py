"""What a snapshot reads: open sealed segments and a copy of the tail's bytes, plus the range.

Invariants:
- A selection owns the segment descriptors it was handed (``close`` releases
  them) and its own copy of the tail's records, so a worker thread reads it
  while the buffer carries on (segments are immutable; the tail is not).
- ``records`` yields every record of the selected segments, then the tail's,
  oldest first, and raises ``SegmentError`` for damaged bytes.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rezolus_hindsight import segment
from rezolus_recording import records

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rezolus_recording.records import Record


@dataclass
class Selection:
    """What a snapshot reads: open segments and a copy of the tail, plus the range."""

    start_ns: int
    end_ns: int
    rows: int
    segments: list[tuple[segment.SegmentInfo, int]]
    tail: bytes  # the tail's records as stored, after its magic

    def records(self) -> Iterator[Record]:
        """Every record of the selected sources, oldest first (raises SegmentError)."""
        for info, fd in self.segments:
            yield from segment.read_records(fd, info)
        scanned = records.scan(self.tail, 0, segment.KINDS)
        if scanned.problem is not None:
            raise segment.SegmentError(f"tail: {scanned.problem}")
        yield from scanned.records

    def close(self) -> None:
        """Release the segment descriptors."""
        for _, fd in self.segments:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.segments = []
