"""Turning a journal into a parquet recording: the normal finish and crash recovery.

Invariants:
- A clean stop and a recovery run the same code: replay the journal's
  intact records (catalogs rebuilt by ``CatalogReplay``, every frame checked
  against its catalog, a change of agent instance marking a restart; per
  source for a recording of several, each source's rows tagged with it) into a
  ``TableBuilder``, so a recovered file is exactly what a clean stop would
  have written for the same records (minus a torn tail).
- The conversion streams: a first pass computes the columns and the file
  metadata (rows, gaps, restarts, time range), a second pass writes row
  groups of ``chunk_rows`` rows with that fixed schema, so memory does not
  grow with the length of the recording.
- The parquet file appears atomically (temp file, fsync, rename); the
  journal is removed only after the file is in place, so at every moment at
  least one of the two holds the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rezolus_core.frame import Catalog, DecodeError, Frame, check_ids, decode
from rezolus_core.tracker import Delivery
from rezolus_recorder import journal
from rezolus_recorder.catalogs import CatalogReplay
from rezolus_recording import layout
from rezolus_recording.builder import TableBuilder
from rezolus_recording.durable import sync_dir
from rezolus_recording.writer import RecordingWriter

if TYPE_CHECKING:
    import pathlib
    from collections.abc import Callable


@dataclass
class ConvertResult:
    """What a conversion wrote and what it had to leave out."""

    output: pathlib.Path
    rows: int = 0
    gaps: int = 0
    missed_rows: int = 0
    restarts: int = 0
    first_timestamp_ns: int | None = None
    last_timestamp_ns: int | None = None
    bytes: int = 0
    undelivered: int = 0
    bad_catalogs: int = 0
    read: journal.ReadResult = field(default_factory=journal.ReadResult)
    header: dict[str, Any] = field(default_factory=dict)


def read_header(path: pathlib.Path) -> dict[str, Any]:
    """Return the header of a journal (source, interval, output, started)."""
    for record in journal.read_records(path):
        if record.kind != journal.KIND_HEADER:
            break
        try:
            return journal.header(record)
        except ValueError as exc:
            raise journal.JournalError(f"{path}: unreadable header: {exc}") from exc
    raise journal.JournalError(f"{path} has no header record")


def _frame(payload: bytes, replay: CatalogReplay) -> tuple[Frame, Catalog] | None:
    """Decode a row's frame and pair it with its catalog; None if either is unusable."""
    try:
        frame = decode(payload)
    except DecodeError:
        return None
    catalog = replay.catalogs.get(frame.instance)
    if not isinstance(frame, Frame) or catalog is None:
        return None
    try:
        check_ids(frame, catalog)
    except DecodeError:
        return None
    return frame, catalog


@dataclass
class _Source:
    """Replay state of one source of the journal."""

    endpoint: str
    replay: CatalogReplay = field(default_factory=CatalogReplay)
    last_slot: int | None = None
    last_instance: str | None = None


def sources(header: dict[str, Any]) -> list[str]:
    """The endpoints a journal recorded (``sources``, else the single ``source``)."""
    listed = header.get("sources")
    if isinstance(listed, list) and listed and all(isinstance(s, str) for s in listed):
        return list(listed)
    return [str(header.get("source", ""))]


def _replay(
    path: pathlib.Path,
    builder: TableBuilder,
    on_rows: Callable[[], None],
    chunk_rows: int,
    result: ConvertResult,
    *,
    endpoints: list[str],
) -> list[tuple[str, Catalog]]:
    states = [_Source(e) for e in endpoints]
    state = states[0]
    pending = 0
    result.read = journal.ReadResult()
    for record in journal.read_records(path, result.read):
        if record.kind == journal.KIND_SOURCE:
            try:
                state = states[int(record.payload)]
            except (ValueError, IndexError):
                result.bad_catalogs += 1
        elif record.kind in (journal.KIND_CATALOG, journal.KIND_SERIES):
            try:
                state.replay.apply(record.kind, record.payload)
            except DecodeError:
                result.bad_catalogs += 1
        elif record.kind == journal.KIND_ROW:
            slot, _, payload = record.row()
            found = _frame(payload, state.replay)
            if found is None:
                result.undelivered += 1
                continue
            frame, catalog = found
            restarted = state.last_instance is not None and frame.instance != state.last_instance
            missed = 0 if state.last_slot is None else max(0, slot - state.last_slot - 1)
            builder.add(Delivery(frame, catalog, 0, restarted), missed=missed, source=state.endpoint)
            state.last_slot, state.last_instance = slot, frame.instance
            pending += 1
            if pending >= chunk_rows:
                on_rows()
                pending = 0
    if pending:
        on_rows()
    return [(s.endpoint, c) for s in states for c in s.replay.catalogs.values()]


def convert(
    path: pathlib.Path,
    output: pathlib.Path,
    *,
    chunk_rows: int = 1024,
    remove: bool = True,
    extra_metadata: dict[str, str] | None = None,
) -> ConvertResult:
    """Write the journal at ``path`` as parquet at ``output``; remove the journal if asked.

    ``extra_metadata`` is added to the file metadata (the live recorder's bus counts).
    """
    header = read_header(path)
    endpoints = sources(header)
    source = endpoints[0]
    interval_ns = int(header.get("interval_ns", 0)) or 1_000_000_000
    host = {str(k): str(v) for k, v in dict(header.get("host", {})).items()}
    result = ConvertResult(output=output, header=header)

    counting = TableBuilder(source=source, interval_ns=interval_ns, host=host)
    catalogs = _replay(path, counting, counting.discard, chunk_rows, result, endpoints=endpoints)
    metadata = counting.file_metadata()
    metadata[layout.RECORDER_STARTED] = str(header.get("started_ns", ""))
    if result.read.problem:
        metadata[layout.RECOVERED_TORN_BYTES] = str(result.read.discarded_bytes)
    metadata.update(extra_metadata or {})

    builder = TableBuilder(source=source, interval_ns=interval_ns, host=host)
    for endpoint, catalog in catalogs:
        builder.declare(catalog, source=endpoint)
    writer = RecordingWriter(output)

    def write_chunk() -> None:
        writer.write(builder.take(), metadata)

    try:
        _replay(path, builder, write_chunk, chunk_rows, ConvertResult(output=output), endpoints=endpoints)
        if builder.rows == 0:
            write_chunk()
        result.bytes = writer.commit()
    except BaseException:
        writer.abort()
        raise
    if remove:
        path.unlink()
        sync_dir(path.parent)
    result.rows = counting.rows
    result.gaps = int(metadata[layout.GAPS])
    result.missed_rows = int(metadata[layout.MISSED_ROWS])
    result.restarts = int(metadata[layout.RESTARTS])
    result.first_timestamp_ns = int(metadata[layout.FIRST_TIMESTAMP]) if counting.rows else None
    result.last_timestamp_ns = int(metadata[layout.LAST_TIMESTAMP]) if counting.rows else None
    return result


def recovery_target(journal_file: pathlib.Path) -> pathlib.Path:
    """Pick where to recover a journal: its recording's path, or a fresh sibling if taken."""
    base = journal_file.with_name(journal_file.name.removesuffix(journal.SUFFIX))
    if not base.exists():
        return base
    stem, suffix = base.name.removesuffix(".parquet"), ".parquet"
    n = 1
    while True:
        candidate = base.with_name(f"{stem}.recovered-{n}{suffix}")
        if not candidate.exists():
            return candidate
        n += 1


def find_orphans(directory: pathlib.Path) -> list[pathlib.Path]:
    """Journals in ``directory`` that no running recorder holds, oldest first."""
    try:
        candidates = sorted(directory.glob("*" + journal.SUFFIX), key=lambda p: p.stat().st_mtime)
    except OSError:
        return []
    return [p for p in candidates if journal.is_orphan(p)]
