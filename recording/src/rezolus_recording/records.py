"""The one CRC-framed record format: the recorder's journal and hindsight's tail and segments.

Invariants:
- A record is a 13-byte header ``<kind u8, raw_len u32, stored_len u32,
  crc32 u32>`` followed by ``stored_len`` payload bytes.  The CRC-32 covers
  the first 9 header bytes and the stored payload, so a torn or corrupted
  record never passes as a valid one.  ``raw_len`` 0 means the payload is
  stored as is; otherwise it is zstd-compressed and ``raw_len`` is its size
  once decompressed (``encode(compress=True)`` compresses payloads of at least
  ``COMPRESS_AT`` bytes when that makes them smaller).
- Kinds are one ASCII byte: ``H`` header (JSON), ``C`` a full catalog and
  ``S`` series added to the previous catalog (bus encoding), ``R`` a row:
  ``<slot i64, timestamp_ns u64>`` then the frame exactly as the bus
  delivered it.  ``slot`` is the grid slot the frame was stored for.
- Reading stops at the first record that is short, longer than
  ``MAX_RECORD``, of a kind the caller does not accept, fails its CRC or does
  not decompress, and reports where the valid prefix ends and why; it never
  raises for bad bytes.  Everything before that point is intact, so a writer
  recovers by truncating the file there (``truncate_at``).
- ``append`` writes a batch of records with one ``write`` call on a file
  opened without user-space buffering, so a killed process tears at most the
  batch being written.
"""

from __future__ import annotations

import functools
import os
import struct
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

import pyarrow as pa

from rezolus_recording.durable import write_all

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Iterator

KIND_HEADER = ord("H")
KIND_CATALOG = ord("C")
KIND_SERIES = ord("S")
KIND_ROW = ord("R")
HEADER = struct.Struct("<BIII")
_COVERED = 9  # kind, raw_len, stored_len
ROW = struct.Struct("<qQ")
MAX_RECORD = 256 * 1024 * 1024
COMPRESS_AT = 512


@functools.cache
def _codec() -> pa.Codec:
    return pa.Codec("zstd", compression_level=1)


@dataclass(frozen=True, slots=True)
class Record:
    """One intact record: its kind, its payload (decompressed) and its bytes as stored."""

    kind: int
    payload: bytes
    raw: bytes

    def row(self) -> tuple[int, int, bytes]:
        """Split a row record into (slot, timestamp_ns, frame payload)."""
        slot, timestamp = ROW.unpack_from(self.payload)
        return slot, timestamp, self.payload[ROW.size :]

    @property
    def slot(self) -> int:
        """The grid slot of a row record."""
        return int(ROW.unpack_from(self.payload)[0])

    @property
    def timestamp_ns(self) -> int:
        """The frame timestamp of a row record."""
        return int(ROW.unpack_from(self.payload)[1])

    @property
    def frame(self) -> bytes:
        """The bus payload of a row record."""
        return self.payload[ROW.size :]


def encode(kind: int, payload: bytes, *, compress: bool = False) -> Record:
    """Frame one payload as a record."""
    stored, raw_len = payload, 0
    if compress and len(payload) >= COMPRESS_AT:
        packed = _codec().compress(payload, asbytes=True)
        if len(packed) < len(payload):
            stored, raw_len = packed, len(payload)
    if len(stored) > MAX_RECORD or raw_len > MAX_RECORD:
        raise ValueError(f"record of {len(payload)} bytes exceeds {MAX_RECORD}")
    head = struct.pack("<BII", kind, raw_len, len(stored))
    crc = zlib.crc32(stored, zlib.crc32(head))
    return Record(kind, payload, head + struct.pack("<I", crc) + stored)


def encode_row(slot: int, timestamp_ns: int, frame: bytes, *, compress: bool = False) -> Record:
    """Frame a row record: the grid slot, the frame's timestamp and the encoded frame."""
    return encode(KIND_ROW, ROW.pack(slot, timestamp_ns) + frame, compress=compress)


def _decode(head: bytes, stored: bytes, kinds: Collection[int] | None) -> Record | str:
    kind, raw_len, _, crc = HEADER.unpack(head)
    if zlib.crc32(stored, zlib.crc32(head[:_COVERED])) != crc:
        return "record checksum mismatch"
    if kinds is not None and kind not in kinds:
        return f"unknown record kind {kind}"
    payload = stored
    if raw_len:
        try:
            payload = _codec().decompress(stored, decompressed_size=raw_len, asbytes=True)
        except (OSError, ValueError, pa.ArrowException) as exc:
            return f"record does not decompress ({exc})"
    if kind == KIND_ROW and len(payload) < ROW.size:
        return "row record shorter than its slot and timestamp"
    return Record(kind, payload, head + stored)


def _lengths(head: bytes) -> tuple[int, str]:
    _, raw_len, stored_len, _ = HEADER.unpack(head)
    if stored_len > MAX_RECORD or raw_len > MAX_RECORD:
        return -1, f"implausible record length {max(stored_len, raw_len)}"
    return stored_len, ""


@dataclass
class Scan:
    """Where the valid prefix of a record stream ends and why (``problem`` None: it all was)."""

    records: list[Record]
    end: int
    problem: str | None = None


def scan(data: bytes | memoryview, start: int = 0, kinds: Collection[int] | None = None) -> Scan:
    """Parse the records in ``data[start:]`` up to the first bad one."""
    view = memoryview(data)
    found: list[Record] = []
    offset, size = start, len(view)
    while offset < size:
        if size - offset < HEADER.size:
            return Scan(found, offset, f"truncated record header at byte {offset}")
        head = bytes(view[offset : offset + HEADER.size])
        length, problem = _lengths(head)
        stop = offset + HEADER.size + length
        if not problem and stop > size:
            problem = "truncated record"
        record = problem or _decode(head, bytes(view[offset + HEADER.size : stop]), kinds)
        if isinstance(record, str):
            return Scan(found, offset, f"{record} at byte {offset}")
        found.append(record)
        offset = stop
    return Scan(found, offset)


@dataclass
class StreamResult:
    """What reading a stream found besides its records."""

    valid_bytes: int = 0
    discarded_bytes: int = 0
    problem: str | None = None


def read_stream(
    handle: BinaryIO, start: int, size: int, result: StreamResult, kinds: Collection[int] | None = None
) -> Iterator[Record]:
    """Yield the records of an open file from ``start`` one at a time (memory: one record)."""
    handle.seek(start)
    offset = result.valid_bytes = start
    while offset < size:
        head = handle.read(HEADER.size)
        record: Record | str
        if len(head) < HEADER.size:
            record = "truncated record header"
        else:
            length, problem = _lengths(head)
            stored = b"" if problem else handle.read(length)
            if not problem and len(stored) < length:
                problem = "truncated record"
            record = problem or _decode(head, stored, kinds)
        if isinstance(record, str):
            result.problem = f"{record} at byte {offset}"
            result.discarded_bytes = size - offset
            return
        offset += len(record.raw)
        result.valid_bytes = offset
        yield record


def append(fd: int, batch: Iterable[Record]) -> int:
    """Append records with one write; return the bytes written."""
    return write_all(fd, b"".join(r.raw for r in batch))


def truncate_at(fd: int, valid_bytes: int) -> None:
    """Cut a record file back to its valid prefix (after ``scan`` or ``read_stream`` found a bad tail)."""
    os.ftruncate(fd, valid_bytes)
