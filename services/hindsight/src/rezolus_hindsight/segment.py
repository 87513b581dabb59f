"""Sealed segments: immutable, self-contained files of records.

Invariants:
- A segment is written once, to a temporary name, fsynced and renamed into
  place (then the directory is fsynced), so a segment file either exists
  whole or not at all; it is never modified afterwards, only deleted.
- A segment's body is a record stream (``rezolus_recording.records``, the
  recorder journal's format; catalog and row records) that starts with the
  catalog its first frame needs and holds every later catalog change, so it
  decodes on its own.  The body is zstd-compressed when that is smaller.
- The header carries the frame count, every frame's timestamp (strictly
  increasing) and the body's length and CRC, all under a header CRC; so
  indexing the buffer reads only headers, and a damaged body is detected
  before it is decoded.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from rezolus_recording import records
from rezolus_recording.records import KIND_CATALOG, KIND_ROW

if TYPE_CHECKING:
    from pathlib import Path

    from numpy.typing import NDArray

MAGIC = b"RZHSEG\x00\x03"  # \x02: the record format before rezolus_recording.records (``legacy``)
_FIELDS = struct.Struct("<8sIQQIB")
_CRC = struct.Struct("<I")
_TS = np.dtype("<u8")
CODEC_NONE, CODEC_ZSTD = 0, 1
NAME = re.compile(r"^seg-(\d{12})\.rzh$")
KINDS = frozenset({KIND_CATALOG, KIND_ROW})


class SegmentError(ValueError):
    """A segment file is damaged; the message says how."""


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """What the header of one sealed segment says."""

    path: Path
    number: int
    timestamps: NDArray[np.uint64]
    size: int

    @property
    def first_ts(self) -> int:
        """Timestamp of the first frame."""
        return int(self.timestamps[0])

    @property
    def last_ts(self) -> int:
        """Timestamp of the last frame."""
        return int(self.timestamps[-1])

    @property
    def frames(self) -> int:
        """Number of frames."""
        return int(self.timestamps.size)


def file_name(number: int) -> str:
    """Return the file name of segment ``number``."""
    return f"seg-{number:012d}.rzh"


def _zstd() -> pa.Codec:
    return pa.Codec("zstd", compression_level=3)


def header_bytes(frames: int) -> int:
    """Return the size of the header of a segment of ``frames`` frames."""
    return _FIELDS.size + frames * _TS.itemsize + _CRC.size


def build(body: bytes, timestamps: list[int]) -> bytes:
    """Return the bytes of a segment holding the record stream ``body`` of these frames."""
    if not timestamps:
        raise ValueError("a segment holds at least one frame")
    packed: bytes = _zstd().compress(body, asbytes=True)
    codec = CODEC_ZSTD
    if len(packed) >= len(body):
        packed, codec = body, CODEC_NONE
    fields = _FIELDS.pack(MAGIC, len(timestamps), len(body), len(packed), zlib.crc32(packed), codec)
    stamps = np.asarray(timestamps, dtype=_TS).tobytes()
    return fields + stamps + _CRC.pack(zlib.crc32(stamps, zlib.crc32(fields))) + packed


@dataclass(frozen=True, slots=True)
class Header:
    """A checked segment header: what it says about the frames and the body."""

    info: SegmentInfo
    raw_len: int
    body_len: int
    body_crc: int
    codec: int


def parse_header(head: bytes, path: Path, number: int, size: int, magic: bytes = MAGIC) -> Header:
    """Check a segment's header (``magic``: its format version) and return what it says."""
    if len(head) < _FIELDS.size:
        raise SegmentError(f"{path.name}: shorter than a segment header")
    found_magic, frames, raw_len, body_len, body_crc, codec = _FIELDS.unpack_from(head)
    if found_magic != magic:
        raise SegmentError(f"{path.name}: not a hindsight segment")
    stop = header_bytes(frames)
    if frames == 0 or len(head) < stop:
        raise SegmentError(f"{path.name}: truncated header")
    stamps = head[_FIELDS.size : stop - _CRC.size]
    (crc,) = _CRC.unpack_from(head, stop - _CRC.size)
    if zlib.crc32(stamps, zlib.crc32(head[: _FIELDS.size])) != crc:
        raise SegmentError(f"{path.name}: header checksum mismatch")
    if stop + body_len != size:
        raise SegmentError(f"{path.name}: {size} bytes, header says {stop + body_len}")
    if codec not in (CODEC_NONE, CODEC_ZSTD):
        raise SegmentError(f"{path.name}: unknown codec {codec}")
    timestamps = np.frombuffer(stamps, dtype=_TS)
    if frames > 1 and not bool(np.all(timestamps[1:] > timestamps[:-1])):
        raise SegmentError(f"{path.name}: timestamps are not increasing")
    return Header(SegmentInfo(path, number, timestamps, size), raw_len, body_len, body_crc, codec)


def read_info(path: Path) -> SegmentInfo:
    """Read and check the header of the segment at ``path``."""
    match = NAME.match(path.name)
    if match is None:
        raise SegmentError(f"{path.name}: not a segment file name")
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        head = handle.read(_FIELDS.size)
        if len(head) == _FIELDS.size:
            frames = _FIELDS.unpack_from(head)[1]
            head += handle.read(header_bytes(frames) - _FIELDS.size)
    return parse_header(head, path, int(match.group(1)), size).info


def read_body(data: bytes, header: Header) -> bytes:
    """Check and decompress the body of the segment ``data`` whose header is ``header``."""
    info = header.info
    offset = header_bytes(info.frames)
    body = data[offset : offset + header.body_len]
    if zlib.crc32(body) != header.body_crc:
        raise SegmentError(f"{info.path.name}: body checksum mismatch")
    if header.codec == CODEC_ZSTD:
        try:
            body = _zstd().decompress(body, decompressed_size=header.raw_len, asbytes=True)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise SegmentError(f"{info.path.name}: cannot decompress: {exc}") from exc
    return body


def read_records(fd: int, info: SegmentInfo) -> list[records.Record]:
    """Read, check and decode the records of a segment from an open descriptor."""
    data = os.pread(fd, info.size, 0)
    header = parse_header(data, info.path, info.number, len(data))
    found = records.scan(read_body(data, header), kinds=KINDS)
    if found.problem is not None or found.end != header.raw_len:
        raise SegmentError(f"{info.path.name}: damaged record at byte {found.end} of {header.raw_len}")
    frames = [r.timestamp_ns for r in found.records if r.kind == KIND_ROW]
    if frames != info.timestamps.tolist():
        raise SegmentError(f"{info.path.name}: body frames do not match the header")
    return found.records
