"""The crash-safe journal a recording is written to before it becomes parquet.

Invariants:
- The file starts with ``MAGIC`` and then holds records in the shared
  format of ``rezolus_recording.records`` (kinds ``H`` header first, then
  ``C``/``S`` catalogs and ``R`` rows); large payloads are zstd-compressed.
  A recording of several sources (the header's ``sources`` list) adds ``N``
  records: the index of the source the following records belong to, written
  whenever it changes; records before any ``N`` belong to source 0.
  The byte format is the one journals had before that module existed, so
  journals left by an older recorder recover unchanged.
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
import time
from typing import TYPE_CHECKING, Any

from rezolus_recording import records
from rezolus_recording.durable import sync_dir, temp_path, write_all
from rezolus_recording.records import KIND_CATALOG, KIND_HEADER, KIND_ROW, KIND_SERIES, Record
from rezolus_recording.records import StreamResult as ReadResult

if TYPE_CHECKING:
    import pathlib
    from collections.abc import Iterator

__all__ = [
    "KIND_CATALOG", "KIND_HEADER", "KIND_ROW", "KIND_SERIES", "KIND_SOURCE", "MAGIC", "SUFFIX", "JournalError",
    "JournalWriter", "ReadResult", "Record", "header", "is_orphan", "journal_path", "read_records",
]

MAGIC = b"RZJOURNAL1\n"
SUFFIX = ".journal"
KIND_SOURCE = ord("N")
_KINDS = frozenset({KIND_HEADER, KIND_CATALOG, KIND_SERIES, KIND_ROW, KIND_SOURCE})


class JournalError(RuntimeError):
    """A journal could not be written or read; the message says which and why."""


def journal_path(output: pathlib.Path) -> pathlib.Path:
    """Return the journal that belongs beside ``output``."""
    return output.with_name(output.name + SUFFIX)


def header(record: Record) -> dict[str, Any]:
    """Decode a header record's JSON."""
    value = json.loads(record.payload)
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
        self._source = 0
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
            sync_dir(path.parent)
        except BaseException:
            os.close(self._fd)
            raise
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def _write(self, data: bytes) -> None:
        try:
            self.bytes_written += write_all(self._fd, data)
        except OSError as exc:
            raise JournalError(f"cannot write journal {self.path}: {exc.strerror}") from exc

    def append(self, kind: int, payload: bytes) -> None:
        """Append one record (compressing large payloads) and fsync if one is due."""
        self._write(records.encode(kind, payload, compress=True).raw)
        self._dirty = True
        self.maybe_sync()

    def switch(self, source: int) -> None:
        """Make the following records belong to source number ``source`` (an ``N`` record if it changes)."""
        if source != self._source:
            self.append(KIND_SOURCE, str(source).encode())
            self._source = source

    def append_row(self, slot: int, timestamp_ns: int, frame_payload: bytes) -> None:
        """Append a row record: the grid slot, the frame's timestamp and the encoded frame."""
        self._write(records.encode_row(slot, timestamp_ns, frame_payload, compress=True).raw)
        self._dirty = True
        self.maybe_sync()

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
        yield from records.read_stream(handle, len(MAGIC), size, result, _KINDS)


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
