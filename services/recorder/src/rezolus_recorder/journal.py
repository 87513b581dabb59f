"""The crash-safe journal a recording is written to before it becomes parquet.

Invariants:
- The file starts with ``MAGIC`` and then holds records, each a 13-byte
  header ``<kind u8, raw_len u32, stored_len u32, crc32 u32>`` followed by
  ``stored_len`` payload bytes; the CRC covers the first 9 header bytes and
  the payload.  ``raw_len`` 0 means the payload is stored as is, otherwise it
  is zstd-compressed and ``raw_len`` is its decompressed size.
- Records are only ever appended, each with one ``write`` from a file opened
  without user-space buffering, so a killed process loses nothing it wrote;
  ``fsync`` runs at least every ``sync_every_s`` while records arrive (and
  whenever ``maybe_sync`` finds one due), so a power cut loses at most that.
- A reader stops at the first record that is short, oversized or fails its
  CRC (a torn tail) and reports how many bytes it discarded; everything
  before it is intact.
- A journal appears at its path only complete with its magic and header
  (written to a temp file, fsynced, then hard-linked into place, which never
  replaces an existing file).
- The writer holds an exclusive ``flock`` for its whole life: a journal whose
  lock can be taken belongs to no running recorder (an orphan to recover).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import struct
import time
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

import pyarrow as pa

from rezolus_recorder.files import fsync_dir, temp_path

if TYPE_CHECKING:
    import pathlib
    from collections.abc import Iterator

MAGIC = b"RZJOURNAL1\n"
SUFFIX = ".journal"
KIND_HEADER = ord("H")
KIND_CATALOG = ord("C")  # a full catalog (bus encoding); see rezolus_recorder.catalogs
KIND_SERIES = ord("S")  # series added to the instance's previous catalog
KIND_ROW = ord("R")
_HEADER = struct.Struct("<BIII")
_ROW = struct.Struct("<qQ")  # grid slot, frame timestamp (ns)
MAX_RECORD = 256 * 1024 * 1024
_COMPRESS_AT = 512
_CODEC = pa.Codec("zstd", compression_level=1)


class JournalError(RuntimeError):
    """A journal could not be written or read; the message says which and why."""


def journal_path(output: pathlib.Path) -> pathlib.Path:
    """Return the journal that belongs beside ``output``."""
    return output.with_name(output.name + SUFFIX)


@dataclass(frozen=True)
class Record:
    """One intact journal record."""

    kind: int
    payload: bytes

    def row(self) -> tuple[int, int, bytes]:
        """Split a row record into (slot, timestamp_ns, frame payload)."""
        slot, timestamp = _ROW.unpack_from(self.payload)
        return slot, timestamp, self.payload[_ROW.size :]

    def header(self) -> dict[str, Any]:
        """Decode a header record's JSON."""
        value = json.loads(self.payload)
        if not isinstance(value, dict):
            raise JournalError("journal header is not a JSON object")
        return value


class JournalWriter:
    """Appends records to a new journal file, fsyncing about every ``sync_every_s``."""

    def __init__(
        self, path: pathlib.Path, header: dict[str, Any], *, sync_every_s: float = 1.0
    ) -> None:
        self.path = path
        self.bytes_written = 0
        self._sync_every = sync_every_s
        self._dirty = False
        self._synced_at = time.monotonic()
        if path.exists():
            raise JournalError(f"cannot create journal {path}: it exists")
        tmp = temp_path(path)
        try:
            self._fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise JournalError(f"cannot create journal {path}: {exc.strerror}") from exc
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._write(MAGIC)
            self.append(KIND_HEADER, json.dumps(header, sort_keys=True).encode())
            self.sync()
            try:
                os.link(tmp, path)  # appears complete (magic + header) and never clobbers
            except OSError as exc:
                raise JournalError(f"cannot create journal {path}: {exc.strerror}") from exc
            fsync_dir(path)
        except BaseException:
            os.close(self._fd)
            raise
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
                self.bytes_written += written
        except OSError as exc:
            raise JournalError(f"cannot write journal {self.path}: {exc.strerror}") from exc

    def append(self, kind: int, payload: bytes) -> None:
        """Append one record (compressing large payloads) and fsync if one is due."""
        raw_len = 0
        if len(payload) >= _COMPRESS_AT:
            packed = _CODEC.compress(payload, asbytes=True)
            if len(packed) < len(payload):
                raw_len, payload = len(payload), packed
        head = struct.pack("<BII", kind, raw_len, len(payload))
        crc = zlib.crc32(payload, zlib.crc32(head))
        self._write(head + struct.pack("<I", crc) + payload)
        self._dirty = True
        self.maybe_sync()

    def append_row(self, slot: int, timestamp_ns: int, frame_payload: bytes) -> None:
        """Append a row record: the grid slot, the frame's timestamp and the encoded frame."""
        self.append(KIND_ROW, _ROW.pack(slot, timestamp_ns) + frame_payload)

    def maybe_sync(self) -> None:
        """Fsync if there is unsynced data and the last fsync is ``sync_every_s`` old."""
        if self._dirty and time.monotonic() - self._synced_at >= self._sync_every:
            self.sync()

    def sync(self) -> None:
        """Fsync now."""
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise JournalError(f"cannot sync journal {self.path}: {exc.strerror}") from exc
        self._dirty = False
        self._synced_at = time.monotonic()

    def close(self) -> None:
        """Fsync and close (the lock goes with the descriptor)."""
        if self._fd < 0:
            return
        try:
            with contextlib.suppress(JournalError):
                self.sync()
        finally:
            os.close(self._fd)
            self._fd = -1


@dataclass
class ReadResult:
    """What reading a journal found besides its records."""

    valid_bytes: int = 0
    discarded_bytes: int = 0
    problem: str | None = None


def read_records(path: pathlib.Path, result: ReadResult | None = None) -> Iterator[Record]:
    """Yield every intact record of a journal, stopping at a torn or corrupt tail."""
    result = result if result is not None else ReadResult()
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise JournalError(f"cannot read journal {path}: {exc.strerror}") from exc
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if handle.read(len(MAGIC)) != MAGIC:
            raise JournalError(f"{path} is not a rezolus-recorder journal")
        offset = result.valid_bytes = len(MAGIC)
        while offset < size:
            record, problem = _read_one(handle)
            if record is None:
                result.problem = f"{problem} at byte {offset}"
                result.discarded_bytes = size - offset
                return
            offset = handle.tell()
            result.valid_bytes = offset
            yield record


def _read_one(handle: BinaryIO) -> tuple[Record | None, str]:
    head = handle.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return None, "truncated record header"
    kind, raw_len, stored_len, crc = _HEADER.unpack(head)
    if stored_len > MAX_RECORD or raw_len > MAX_RECORD:
        return None, f"implausible record length {stored_len}"
    payload = handle.read(stored_len)
    if len(payload) < stored_len:
        return None, "truncated record"
    if zlib.crc32(payload, zlib.crc32(head[:9])) != crc:
        return None, "record checksum mismatch"
    if raw_len:
        try:
            payload = _CODEC.decompress(payload, decompressed_size=raw_len, asbytes=True)
        except (OSError, ValueError) as exc:
            return None, f"record does not decompress ({exc})"
    return Record(kind, payload), ""


def is_orphan(path: pathlib.Path) -> bool:
    """Tell whether ``path`` is a journal that no running recorder holds."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if os.read(fd, len(MAGIC)) != MAGIC:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    finally:
        os.close(fd)
