"""Length-prefixed, CRC-checked records: the unit of the tail and of segment bodies.

Invariants:
- A record is ``<u32 length><u32 crc><u8 kind><u64 timestamp_ns><i64 slot>``
  followed by ``length`` payload bytes; the CRC-32 covers length, kind,
  timestamp, slot and payload, so a torn or corrupted record never passes as
  a valid one.  ``slot`` is the grid slot the frame was stored for (the
  recorder's ``Grid`` places frames by sequence, so it is not a function of
  the timestamp alone).
- ``scan`` stops at the first record that is incomplete, too long, of an
  unknown kind or fails its CRC, and reports where the valid prefix ends; it
  never raises for bad bytes.  Everything before that point is intact.
- The payload is exactly what the bus delivered (``rezolus_core.frame``
  encoding); catalog records carry timestamp 0 and slot 0.
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass

from rezolus_core.frame import MAX_MESSAGE_BYTES

_HEADER = struct.Struct("<IIBQq")
_COVERED = struct.Struct("<IBQq")
HEADER_BYTES = _HEADER.size
MAX_PAYLOAD_BYTES = MAX_MESSAGE_BYTES


class Kind(enum.IntEnum):
    """What a record holds."""

    CATALOG = 1
    FRAME = 2


@dataclass(frozen=True, slots=True)
class Record:
    """One record: its kind, the frame's timestamp and slot (0 for catalogs) and its full bytes."""

    kind: Kind
    timestamp_ns: int
    slot: int
    raw: bytes

    @property
    def payload(self) -> bytes:
        """The bus payload inside the record."""
        return self.raw[HEADER_BYTES:]


def _crc(length: int, kind: int, timestamp_ns: int, slot: int, payload: bytes | memoryview) -> int:
    return zlib.crc32(payload, zlib.crc32(_COVERED.pack(length, kind, timestamp_ns, slot)))


def encode(kind: Kind, timestamp_ns: int, payload: bytes, slot: int = 0) -> Record:
    """Frame one payload as a record."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    crc = _crc(len(payload), kind, timestamp_ns, slot, payload)
    return Record(kind, timestamp_ns, slot, _HEADER.pack(len(payload), crc, kind, timestamp_ns, slot) + payload)


def scan(data: bytes | memoryview, start: int = 0) -> tuple[list[Record], int]:
    """Parse records from ``start``; return the valid ones and the offset where they end."""
    view = memoryview(data)
    records: list[Record] = []
    offset = start
    end = len(view)
    while end - offset >= HEADER_BYTES:
        length, crc, kind, timestamp_ns, slot = _HEADER.unpack_from(view, offset)
        stop = offset + HEADER_BYTES + length
        if length > MAX_PAYLOAD_BYTES or stop > end or kind not in (Kind.CATALOG, Kind.FRAME):
            break
        if _crc(length, kind, timestamp_ns, slot, view[offset + HEADER_BYTES : stop]) != crc:
            break
        records.append(Record(Kind(kind), timestamp_ns, slot, bytes(view[offset:stop])))
        offset = stop
    return records, offset
