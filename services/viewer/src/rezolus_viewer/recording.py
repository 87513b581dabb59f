"""Read a parquet recording lazily: only the columns and row groups a chart needs, cached.

Invariants:
- What a file holds (its series columns, metadata, names) is decided by
  ``rezolus_recording.reader`` and ``layout``; this module only reads data.
- Opening reads the footer and the bookkeeping columns (``timestamp`` and,
  when present, ``duration``, ``restart``, ``missed``) only; series columns
  are read on first use and kept in a byte-bounded LRU cache.
- ``breaks[r]`` is true when the step from row ``r - 1`` to row ``r`` must not
  be used for a rate: the first row, a restart row, a row after a gap
  (``missed > 0``), a null ``duration`` after the first row, or a time step
  of more than 1.5 sampling intervals (files without the bookkeeping columns).
- Scalar columns come back as exact integers plus a presence mask (null is
  never zero).  Histogram columns are never held whole: an index keeps every
  ``stride``-th row's cumulative buckets (``stride`` makes at most
  ``INDEX_ROWS`` of them) plus a per-row presence mask and bucket total;
  other rows are read from their row groups on demand.  An index is built
  by reading its row groups in parallel (``READ_THREADS``), each thread with
  its own file handle (sharing the footer parsed at open).
- A column named twice in one request is read and converted once.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rezolus_core import histogram
from rezolus_recording import layout, reader
from rezolus_recording.reader import Column, RecordingError

if TYPE_CHECKING:
    import pathlib

    from numpy.typing import NDArray

INDEX_ROWS = 4096
READ_THREADS = 3
__all__ = ["INDEX_ROWS", "READ_THREADS", "Column", "HistIndex", "Recording", "RecordingError"]


@dataclass
class HistIndex:
    """Cumulative buckets of every ``stride``-th row, with per-row presence and totals."""

    stride: int
    rows: NDArray[np.intp]
    buckets: NDArray[np.uint64]
    present: NDArray[np.bool_]
    totals: NDArray[np.uint64]


@dataclass
class _Cache:
    """A byte-bounded LRU cache, safe to use from several threads."""

    budget: int
    used: int = 0
    items: OrderedDict[tuple[str, int], tuple[object, int]] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: tuple[str, int]) -> object | None:
        with self.lock:
            hit = self.items.get(key)
            if hit is None:
                return None
            self.items.move_to_end(key)
            return hit[0]

    def put(self, key: tuple[str, int], value: object, size: int) -> None:
        with self.lock:
            old = self.items.pop(key, None)
            if old is not None:
                self.used -= old[1]
            self.items[key] = (value, size)
            self.used += size
            while self.used > self.budget and len(self.items) > 1:
                _, (_, dropped) = self.items.popitem(last=False)
                self.used -= dropped


def _bits(buf: pa.Buffer | None, offset: int, n: int) -> NDArray[np.bool_]:
    """A bit-packed arrow bitmap as booleans (all true when there is no bitmap)."""
    if buf is None:
        return np.ones(n, dtype=bool)
    bits = np.unpackbits(np.frombuffer(buf, dtype=np.uint8), bitorder="little")
    return bits[offset : offset + n].astype(bool)


def _primitive(array: pa.Array | pa.ChunkedArray) -> tuple[NDArray[Any], NDArray[np.bool_]]:
    """Values (zero where null) and presence of a fixed-width or boolean arrow array.

    Read straight from the arrow buffers: pyarrow's own conversions of
    nullable arrays go through pandas, which costs seconds to import.
    """
    arr = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    n, offset = len(arr), arr.offset
    validity, data = arr.buffers()[:2]
    present = _bits(validity, offset, n)
    if data is None:
        return np.zeros(n, dtype=np.uint64), present
    if pa.types.is_boolean(arr.type):
        values: NDArray[Any] = _bits(data, offset, n)
    else:
        values = np.frombuffer(data, dtype=arr.type.to_pandas_dtype())[offset : offset + n]
    if validity is None or arr.null_count == 0:
        return values, present
    return np.where(present, values, 0).astype(values.dtype), present


def list_rows(column: pa.ListArray, present: NDArray[np.bool_], width: int) -> NDArray[np.uint64] | None:
    """The present rows of a list column as a (rows, width) matrix, or None when one is not ``width`` long.

    Taken by the offsets (a slice when absent rows are empty, as parquet reads them): ``flatten`` would
    load ``pyarrow.compute``.
    """
    offsets, _ = _primitive(column.offsets)
    lengths = np.diff(offsets)
    if np.any(lengths[present] != width):
        return None
    child, _ = _primitive(column.values)
    if np.any(lengths[~present]):
        flat = child[(offsets[:-1][present].astype(np.intp)[:, None] + np.arange(width)).ravel()]
    else:
        flat = child[int(offsets[0]) : int(offsets[-1])]
    rows: NDArray[np.uint64] = flat.astype(np.uint64, copy=False).reshape(-1, width)
    return rows


def _uint(array: pa.ChunkedArray) -> tuple[NDArray[np.uint64], NDArray[np.bool_]]:
    return _primitive(array)


class Recording:
    """A parquet recording opened for viewing."""

    def __init__(self, path: pathlib.Path, cache_bytes: int = 512 * 1024 * 1024) -> None:
        self.path = path
        self._file = reader.open_recording(path)
        schema = self._file.schema_arrow
        self.metadata = reader.metadata(schema)
        self.columns = reader.series_columns(schema)
        meta = self._file.metadata
        self.row_group_starts = np.cumsum([0] + [meta.row_group(i).num_rows for i in range(meta.num_row_groups)])
        self.rows = int(self.row_group_starts[-1])
        if self.rows == 0:
            raise RecordingError(f"{path}: the recording has no rows")
        book = [n for n in (layout.TIMESTAMP, layout.DURATION, layout.RESTART, layout.MISSED) if n in schema.names]
        table = self._file.read(columns=book)
        ts, ts_ok = _uint(table.column(layout.TIMESTAMP))
        if not ts_ok.all():
            raise RecordingError(f"{path}: null timestamps")
        self.timestamps = ts.astype(np.int64)
        if np.any(np.diff(self.timestamps) < 0):
            raise RecordingError(f"{path}: timestamps go backwards")
        self.interval_ns = self._interval()
        self.breaks = self._breaks(table)
        self._cache = _Cache(cache_bytes)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._index: dict[str, HistIndex] = {}
        self._local = threading.local()
        self._readers = concurrent.futures.ThreadPoolExecutor(READ_THREADS, thread_name_prefix="viewer-read")

    def _reader(self) -> pq.ParquetFile:
        """This thread's own handle on the file (handles are not shared between threads)."""
        handle: pq.ParquetFile | None = getattr(self._local, "file", None)
        if handle is None:
            handle = self._local.file = reader.open_file(self.path, self._file.metadata)
        return handle

    def close(self) -> None:
        """Stop the reader threads (the recording must not be used afterwards)."""
        self._readers.shutdown(wait=True, cancel_futures=True)

    def _interval(self) -> int:
        value = reader.interval_ns(self.metadata)
        if value <= 0 and self.rows > 1:
            value = int(np.median(np.diff(self.timestamps)))
        return max(value, 1)

    def _breaks(self, table: pa.Table) -> NDArray[np.bool_]:
        breaks = np.zeros(self.rows, dtype=bool)
        breaks[0] = True
        names = table.column_names
        if layout.RESTART in names:
            restart, _ = _primitive(table.column(layout.RESTART))
            breaks |= restart.astype(bool)
        if layout.MISSED in names:
            missed, _ = _uint(table.column(layout.MISSED))
            breaks |= missed > 0
        if layout.DURATION in names:
            _, ok = _uint(table.column(layout.DURATION))
            breaks[1:] |= ~ok[1:]
        breaks[1:] |= np.diff(self.timestamps) * 2 > 3 * self.interval_ns
        return breaks

    @property
    def stride(self) -> int:
        """Every ``stride``-th row is kept in the histogram indexes."""
        return max(1, -(-self.rows // INDEX_ROWS))

    @property
    def start_ns(self) -> int:
        """Timestamp of the first row."""
        return int(self.timestamps[0])

    @property
    def end_ns(self) -> int:
        """Timestamp of the last row."""
        return int(self.timestamps[-1])

    def catalog(self) -> list[dict[str, object]]:
        """Every series column with its metric, type, unit and labels."""
        return [
            {"column": c.name, "metric": c.metric, "type": c.type, "unit": c.unit, "labels": c.labels}
            for c in sorted(self.columns.values(), key=lambda c: c.name)
        ]

    def host(self) -> dict[str, str]:
        """Host facts from the file metadata (JSON ``host`` key), if any."""
        return reader.host(self.metadata)

    def _lock(self, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(name, threading.Lock())

    def scalars(self, names: list[str]) -> dict[str, tuple[NDArray[np.uint64] | NDArray[np.int64], NDArray[np.bool_]]]:
        """Whole scalar columns as (values, present), read together and cached.

        Each column has its own lock (taken in name order), so requests for
        different columns read in parallel and none is read twice.
        """
        wanted = sorted(set(names))
        with contextlib.ExitStack() as held:
            for name in wanted:
                held.enter_context(self._lock("scalar:" + name))
            return self._scalars(names)

    def _scalars(self, names: list[str]) -> dict[str, tuple[NDArray[np.uint64] | NDArray[np.int64], NDArray[np.bool_]]]:
        out: dict[str, tuple[NDArray[np.uint64] | NDArray[np.int64], NDArray[np.bool_]]] = {}
        missing = []
        for name in dict.fromkeys(names):
            hit = self._cache.get((name, -1))
            if hit is None:
                missing.append(name)
            else:
                out[name] = hit  # type: ignore[assignment]
        if missing:
            table = self._reader().read(columns=missing)
            for name in missing:
                values, present = _uint(table.column(name))
                out[name] = (values, present)
                self._cache.put((name, -1), out[name], values.nbytes + present.nbytes)
        return out

    def _row_group(self, name: str, group: int) -> tuple[NDArray[np.uint64], NDArray[np.intp]]:
        """Buckets of one row group as (dense matrix of present rows, row -> matrix row or -1), cached."""
        hit = self._cache.get((name, group))
        if hit is not None:
            return hit  # type: ignore[return-value]
        values, where = self._read_group(name, group)
        self._cache.put((name, group), (values, where), values.nbytes + where.nbytes)
        return values, where

    def _read_group(self, name: str, group: int) -> tuple[NDArray[np.uint64], NDArray[np.intp]]:
        column = self._reader().read_row_group(group, columns=[name]).column(0).combine_chunks()
        lay = self.columns[name].layout
        width = lay.buckets if lay else histogram.layout().buckets
        present = _bits(column.buffers()[0], column.offset, len(column))
        values = list_rows(column, present, width)
        if values is None:
            raise RecordingError(f"{self.path}: column {name} has rows with other than {width} buckets")
        where = np.full(len(present), -1, dtype=np.intp)
        where[present] = np.arange(int(present.sum()))
        return values, where

    def histogram_index(self, name: str) -> HistIndex:
        """The column's index, built on first use by reading it once."""
        with self._lock(name):
            index = self._index.get(name)
            if index is not None:
                return index
            stride = self.stride
            rows = np.arange(0, self.rows, stride, dtype=np.intp)
            lay = self.columns[name].layout
            width = lay.buckets if lay else histogram.layout().buckets
            buckets = np.zeros((len(rows), width), dtype=np.uint64)
            present = np.zeros(self.rows, dtype=bool)
            totals = np.zeros(self.rows, dtype=np.uint64)
            groups = range(len(self.row_group_starts) - 1)
            for group, (values, where) in zip(groups, self._readers.map(lambda g: self._read_group(name, g), groups),
                                              strict=True):
                lo, hi = int(self.row_group_starts[group]), int(self.row_group_starts[group + 1])
                present[lo:hi] = where >= 0
                totals[lo:hi][where >= 0] = values.sum(axis=1, dtype=np.uint64)
                pick = (rows >= lo) & (rows < hi)
                local = where[rows[pick] - lo]
                buckets[np.flatnonzero(pick)[local >= 0]] = values[local[local >= 0]]
            index = HistIndex(stride, rows, buckets, present, totals)
            self._index[name] = index
            return index

    def histogram_rows(self, name: str, rows: NDArray[np.intp]) -> tuple[NDArray[np.uint64], NDArray[np.bool_]]:
        """Cumulative buckets at the given rows (zero where absent) and their presence."""
        index = self.histogram_index(name)
        out = np.zeros((len(rows), index.buckets.shape[1]), dtype=np.uint64)
        present = index.present[rows]
        on_grid = rows % index.stride == 0
        out[on_grid] = index.buckets[rows[on_grid] // index.stride]
        off = np.flatnonzero(~on_grid & present)
        if off.size:
            groups = np.searchsorted(self.row_group_starts, rows[off], side="right") - 1
            for group in np.unique(groups):
                values, where = self._row_group(name, int(group))
                sel = off[groups == group]
                out[sel] = values[where[rows[sel] - self.row_group_starts[group]]]
        return out, present
