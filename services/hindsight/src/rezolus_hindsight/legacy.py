"""Upgrading a buffer written before the shared record format, once, when the buffer opens.

Invariants:
- The old (v2) record is ``<u32 length><u32 crc><u8 kind><u64 timestamp_ns>
  <i64 slot>`` + payload, kind 1 a catalog and 2 a frame, its CRC-32 over
  length, kind, timestamp, slot and payload.  It maps one to one onto the
  shared format: a catalog record with the same payload, a row record with
  the same slot, timestamp and frame.  Nothing is dropped or reordered.
- A v2 segment (``OLD_SEGMENT_MAGIC``) has the current segment header; its
  header and body checks still apply, and it is rewritten whole in the
  current format (``durable.write_atomic``, same name) before the buffer
  indexes it, so a crash mid-upgrade leaves the old file or the new one.
- A v2 tail (``OLD_TAIL_MAGIC``) keeps its intact prefix, like a current
  tail with a torn end.
- After ``open`` no v2 file is left, so the rest of hindsight reads one format.
"""

from __future__ import annotations

import struct
import zlib
from typing import TYPE_CHECKING

from rezolus_hindsight import segment
from rezolus_recording import durable, records
from rezolus_recording.records import KIND_CATALOG

if TYPE_CHECKING:
    from pathlib import Path

OLD_SEGMENT_MAGIC = b"RZHSEG\x00\x02"
OLD_TAIL_MAGIC = b"RZHTAIL\x02"
_HEADER = struct.Struct("<IIBQq")
_COVERED = struct.Struct("<IBQq")
_CATALOG, _FRAME = 1, 2


def convert(data: bytes, start: int = 0) -> tuple[list[records.Record], int]:
    """Re-frame the v2 records of ``data[start:]`` up to the first bad one; return them and where they end."""
    found: list[records.Record] = []
    offset, end = start, len(data)
    while end - offset >= _HEADER.size:
        length, crc, kind, timestamp_ns, slot = _HEADER.unpack_from(data, offset)
        stop = offset + _HEADER.size + length
        if length > records.MAX_RECORD or stop > end or kind not in (_CATALOG, _FRAME):
            break
        payload = data[offset + _HEADER.size : stop]
        if zlib.crc32(payload, zlib.crc32(_COVERED.pack(length, kind, timestamp_ns, slot))) != crc:
            break
        if kind == _CATALOG:
            found.append(records.encode(KIND_CATALOG, payload))
        else:
            found.append(records.encode_row(slot, timestamp_ns, payload))
        offset = stop
    return found, offset


def upgrade_segment(path: Path) -> bool:
    """Rewrite a v2 segment at ``path`` in the current format; False if it is not a v2 segment."""
    with path.open("rb") as handle:
        if handle.read(len(OLD_SEGMENT_MAGIC)) != OLD_SEGMENT_MAGIC:
            return False
    data = path.read_bytes()
    match = segment.NAME.match(path.name)
    if match is None:
        raise segment.SegmentError(f"{path.name}: not a segment file name")
    header = segment.parse_header(data, path, int(match.group(1)), len(data), OLD_SEGMENT_MAGIC)
    found, end = convert(segment.read_body(data, header))
    if end != header.raw_len:
        raise segment.SegmentError(f"{path.name}: damaged v2 record at byte {end} of {header.raw_len}")
    durable.write_atomic(path, segment.build(b"".join(r.raw for r in found), header.info.timestamps.tolist()))
    return True


def upgrade_tail(data: bytes) -> list[records.Record] | None:
    """The intact records of a v2 tail, re-framed; None if ``data`` is not a v2 tail."""
    if not data.startswith(OLD_TAIL_MAGIC):
        return None
    return convert(data, len(OLD_TAIL_MAGIC))[0]
