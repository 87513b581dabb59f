"""Series registry and frame assembly for the agent.

Invariants:
- A series (metric name + labels) gets one id for the life of the agent
  instance; ids are dense and assigned in registration order, so the catalog
  is append-only and its version is the number of series.
- Registering a series that exists returns its id; registering the same name
  with another type or unit is a programming error (ValueError).
- ``FrameBuilder`` accepts values as numpy arrays so per-CPU samplers add
  whole rows at once; ``build`` concatenates them once per frame.
- ``rollback(mark())`` removes everything added since the mark, so a sampler
  that fails half-way leaves nothing in the frame.
- Histograms are collected as flat parts (``HistogramArrays``: ids, bucket
  counts, bucket indices, counts), the frame's own form; no per-histogram
  object is made.  ``build`` concatenates the parts once.
- ``HistogramBlock`` turns a block of dense histograms into the same sparse
  buckets ``histogram.to_sparse`` gives row by row, as the flat arrays of
  the whole block.  Counts only grow, so the cells holding counts rarely
  change between frames: while they are the same (every cell of the last
  frame still non-zero and no more non-zero cells in all; exact whatever
  the counts do), a frame costs one count of the non-zero cells and one
  gather of their counts; otherwise one ``nonzero`` over the cells not held
  before finds the new ones.  Rows replaced by a caller that sums only the
  histograms that changed are spliced in around up to ``FEW_ROWS`` of them,
  or else moved into place by whole-array numpy calls (no Python step per
  row).  The arrays it hands out are never written again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from rezolus_core import histogram
from rezolus_core.frame import Catalog, Frame, MetricType, SeriesSpec

if TYPE_CHECKING:
    from collections.abc import Mapping

    from numpy.typing import ArrayLike, NDArray


class SeriesRegistry:
    """Assigns ids to series and produces the catalog."""

    def __init__(self, instance: str, host: Mapping[str, str]) -> None:
        self.instance = instance
        self.host = dict(host)
        self._series: list[SeriesSpec] = []
        self._ids: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
        self._kinds: dict[str, tuple[MetricType, str]] = {}
        self._catalog: Catalog | None = None

    def _register(
        self, kind: MetricType, name: str, labels: Mapping[str, str] | None, unit: str, description: str
    ) -> int:
        known = self._kinds.setdefault(name, (kind, unit))
        if known != (kind, unit):
            raise ValueError(f"metric {name} registered as {known}, now as {(kind, unit)}")
        label_map = dict(labels or {})
        key = (name, tuple(sorted(label_map.items())))
        sid = self._ids.get(key)
        if sid is None:
            sid = len(self._series)
            self._series.append(SeriesSpec(sid, name, kind, label_map, unit, description))
            self._ids[key] = sid
            self._catalog = None
        return sid

    def counter(self, name: str, labels: Mapping[str, str] | None, unit: str, description: str) -> int:
        """Id of a cumulative uint64 counter series."""
        return self._register(MetricType.COUNTER, name, labels, unit, description)

    def gauge(self, name: str, labels: Mapping[str, str] | None, unit: str, description: str) -> int:
        """Id of an instantaneous int64 gauge series."""
        return self._register(MetricType.GAUGE, name, labels, unit, description)

    def histogram(self, name: str, labels: Mapping[str, str] | None, unit: str, description: str) -> int:
        """Id of a cumulative histogram series (496 buckets, grouping power 3)."""
        return self._register(MetricType.HISTOGRAM, name, labels, unit, description)

    @property
    def version(self) -> int:
        """Number of series registered so far."""
        return len(self._series)

    def catalog(self) -> Catalog:
        """The current catalog (cached until a series is added)."""
        if self._catalog is None:
            self._catalog = Catalog(self.instance, tuple(self._series), self.host)
        return self._catalog


class HistogramArrays(NamedTuple):
    """Histograms in the frame's flat form: ids, each one's bucket count, then all indices and counts."""

    ids: NDArray[np.uint32]
    sizes: NDArray[np.uint32]
    indices: NDArray[np.uint16]
    counts: NDArray[np.uint64]


Sparse = tuple["NDArray[np.uint32]", "NDArray[np.uint16]", "NDArray[np.uint64]"]


def sparse_rows(dense: NDArray[np.uint64], columns: NDArray[np.intp] | None = None) -> Sparse:
    """``histogram.to_sparse`` of every row of a 2-D block, flat: each row's bucket count, indices, counts.

    ``columns`` maps a column to the bucket index it stands for (strictly
    increasing, so indices stay sorted), e.g. coarse buckets carried in the
    fine layout.
    """
    return _sparse_at(np.flatnonzero(dense != 0), dense, columns)


def _sparse_at(cells: NDArray[np.intp], dense: NDArray[np.uint64], columns: NDArray[np.intp] | None) -> Sparse:
    """``sparse_rows`` of ``dense`` given its non-zero cells (flat, increasing)."""
    width = dense.shape[1]
    rows = cells // width
    cols = cells - rows * width
    counts = dense.ravel()[cells].astype(np.uint64, copy=False)
    indices = (cols if columns is None else columns[cols]).astype(np.uint16)
    sizes = np.bincount(rows, minlength=dense.shape[0]).astype(np.uint32)
    return sizes, indices, counts


class HistogramBlock:
    """Sparse buckets of a fixed list of histogram series as flat arrays, brought up to date frame by frame."""

    FEW_ROWS = 16

    def __init__(self, ids: list[int], columns: NDArray[np.intp] | None = None) -> None:
        self.ids = np.array(ids, dtype=np.uint32)
        self.columns = columns
        self._column_of: NDArray[np.intp] | None = None
        if columns is not None:
            self._column_of = np.zeros(int(columns[-1]) + 1 if columns.size else 0, dtype=np.intp)
            self._column_of[columns] = np.arange(columns.size)
        self._width = 0
        self._cells: NDArray[np.intp] | None = None
        self._arrays: HistogramArrays | None = None

    def values(self, dense: NDArray[np.uint64], *, owned: bool = False) -> HistogramArrays:
        """The histograms of ``dense`` (one row per id), read once (a live view is fine).

        ``owned``: ``dense`` is a fresh array that nobody writes again (a sum
        or a gather), read as it is instead of copied first.  While the cells
        that hold counts stay the same (every one still non-zero and no other
        one), only their counts are gathered; otherwise the cells that emptied
        leave and the new ones (one ``nonzero`` over the others) join.
        """
        current = dense if owned else dense.copy()
        old = self._arrays
        if old is None or current.shape[1] != self._width:
            self._width = current.shape[1]
            cells = np.flatnonzero(current != 0)
        else:
            cells = self._cell_positions(old)
            counts = current.ravel()[cells]
            if np.count_nonzero(current) == cells.size and counts.all():
                self._arrays = HistogramArrays(self.ids, old.sizes, old.indices, counts)
                return self._arrays
            added = current != 0
            added.ravel()[cells] = False
            fresh = np.flatnonzero(added)
            if not counts.all():
                cells = cells[counts != 0]
            cells = np.insert(cells, np.searchsorted(cells, fresh), fresh)
        self._cells = cells
        self._arrays = HistogramArrays(self.ids, *_sparse_at(cells, current, self.columns))
        return self._arrays

    def _cell_positions(self, arrays: HistogramArrays) -> NDArray[np.intp]:
        """Where in a dense block (row-major) each of ``arrays``' counts sits; kept until ``replace``."""
        if self._cells is None:
            rows = np.repeat(np.arange(self.ids.size, dtype=np.intp), arrays.sizes)
            columns = arrays.indices.astype(np.intp) if self._column_of is None else self._column_of[arrays.indices]
            self._cells = rows * self._width + columns
        return self._cells

    def replace(self, rows: NDArray[np.intp], dense: NDArray[np.uint64]) -> HistogramArrays:
        """Put the dense histograms ``dense`` in place of rows ``rows`` (increasing); the block's new arrays.

        A few rows are spliced in between slices of the old arrays; more are
        scattered into place with whole-array index arithmetic.
        """
        fresh = sparse_rows(dense, self.columns)
        old, self._cells = self._arrays, None
        if old is None or rows.size == self.ids.size:
            self._arrays = HistogramArrays(self.ids, *fresh)
            return self._arrays
        sizes = old.sizes.copy()
        sizes[rows] = fresh[0]
        joined = _spliced if rows.size <= self.FEW_ROWS else _scattered
        self._arrays = HistogramArrays(self.ids, sizes, *joined(old, rows, fresh, sizes))
        return self._arrays


def _spliced(
    old: HistogramArrays, rows: NDArray[np.intp], fresh: Sparse, _: NDArray[np.uint32]
) -> tuple[NDArray[np.uint16], NDArray[np.uint64]]:
    """The old arrays with ``fresh`` (sizes, indices, counts of ``rows``) in place of those rows, slice by slice."""
    fresh_sizes, fresh_indices, fresh_counts = fresh
    ends = np.cumsum(old.sizes, dtype=np.int64).tolist()
    indices: list[NDArray[np.uint16]] = []
    counts: list[NDArray[np.uint64]] = []
    kept = taken = 0
    for row, size in zip(rows.tolist(), fresh_sizes.tolist(), strict=True):
        start = ends[row - 1] if row else 0
        indices += (old.indices[kept:start], fresh_indices[taken : taken + size])
        counts += (old.counts[kept:start], fresh_counts[taken : taken + size])
        kept, taken = ends[row], taken + size
    indices.append(old.indices[kept:])
    counts.append(old.counts[kept:])
    return np.concatenate(indices), np.concatenate(counts)


def _scattered(
    old: HistogramArrays, rows: NDArray[np.intp], fresh: Sparse, sizes: NDArray[np.uint32]
) -> tuple[NDArray[np.uint16], NDArray[np.uint64]]:
    """``_spliced`` in whole-array steps (``sizes``: every row's new size): old buckets moved, new ones placed."""
    fresh_sizes, fresh_indices, fresh_counts = fresh
    starts = np.cumsum(sizes, dtype=np.int64) - sizes
    owner = np.repeat(np.arange(sizes.size), old.sizes)
    kept = np.ones(sizes.size, dtype=bool)
    kept[rows] = False
    keep = np.flatnonzero(kept[owner])
    moved = keep + (starts - (np.cumsum(old.sizes, dtype=np.int64) - old.sizes))[owner[keep]]
    placed = np.arange(fresh_indices.size) + np.repeat(
        starts[rows] - (np.cumsum(fresh_sizes, dtype=np.int64) - fresh_sizes), fresh_sizes
    )
    total = int(sizes.sum(dtype=np.int64))
    indices, counts = np.empty(total, dtype=np.uint16), np.empty(total, dtype=np.uint64)
    indices[moved], counts[moved] = old.indices[keep], old.counts[keep]
    indices[placed], counts[placed] = fresh_indices, fresh_counts
    return indices, counts


class FrameBuilder:
    """Collects one frame's values from every sampler.

    Single values (``counter``, ``gauge``) wait in plain lists and join the
    arrays as one block when an array is added, at ``mark`` and at ``build``,
    so the frame's order is the order values were added, as if every value
    had been added as an array, without one numpy conversion per value.
    Values are copied when added; ids (which emitters own and replace, never
    change, within a frame) are converted and flattened once, at ``build``.
    """

    def __init__(self) -> None:
        self._counter_ids: list[ArrayLike] = []
        self._counter_values: list[NDArray[np.uint64]] = []
        self._gauge_ids: list[ArrayLike] = []
        self._gauge_values: list[NDArray[np.int64]] = []
        self._hists: list[HistogramArrays] = []
        self._one_counters: tuple[list[int], list[int]] = ([], [])
        self._one_gauges: tuple[list[int], list[int]] = ([], [])

    def _flush(self) -> None:
        ids, values = self._one_counters
        if ids:
            self._counter_ids.append(ids)
            self._counter_values.append(np.array(values, dtype=np.uint64))
            self._one_counters = ([], [])
        ids, values = self._one_gauges
        if ids:
            self._gauge_ids.append(ids)
            self._gauge_values.append(np.array(values, dtype=np.int64))
            self._one_gauges = ([], [])

    def mark(self) -> tuple[int, int, int]:
        """A position to roll back to."""
        self._flush()
        return len(self._counter_ids), len(self._gauge_ids), len(self._hists)

    def rollback(self, mark: tuple[int, int, int]) -> None:
        """Drop every value added since ``mark``."""
        self._flush()
        counters, gauges, histograms = mark
        del self._counter_ids[counters:], self._counter_values[counters:]
        del self._gauge_ids[gauges:], self._gauge_values[gauges:]
        del self._hists[histograms:]

    def counters(self, ids: ArrayLike, values: ArrayLike) -> None:
        """Add counter values (cumulative, uint64); copied now, so live BPF views are safe to pass."""
        self._flush()
        self._counter_ids.append(ids)
        self._counter_values.append(np.array(values, dtype=np.uint64))

    def counter(self, sid: int, value: int) -> None:
        """Add one counter value."""
        self._one_counters[0].append(sid)
        self._one_counters[1].append(value)

    def gauges(self, ids: ArrayLike, values: ArrayLike) -> None:
        """Add gauge values (int64)."""
        self._flush()
        self._gauge_ids.append(ids)
        self._gauge_values.append(np.array(values, dtype=np.int64))

    def gauge(self, sid: int, value: int) -> None:
        """Add one gauge value."""
        self._one_gauges[0].append(sid)
        self._one_gauges[1].append(value)

    def histogram(self, sid: int, dense: NDArray[np.uint64]) -> None:
        """Add one histogram from its dense cumulative buckets."""
        indices, counts = histogram.to_sparse(dense)
        sizes = np.array([indices.size], dtype=np.uint32)
        self._hists.append(HistogramArrays(np.array([sid], dtype=np.uint32), sizes, indices, counts))

    def histograms(self, arrays: HistogramArrays) -> None:
        """Add histograms in flat form (e.g. from a ``HistogramBlock``); they must not be written afterwards."""
        self._hists.append(arrays)

    def build(
        self,
        *,
        registry: SeriesRegistry,
        seq: int,
        timestamp_ns: int,
        monotonic_ns: int,
        interval_ns: int,
        host: str,
    ) -> Frame:
        """The finished frame."""
        self._flush()

        def cat(parts: list[ArrayLike], dtype: type[np.generic]) -> NDArray[np.generic]:
            if not parts:
                return np.zeros(0, dtype=dtype)
            return np.concatenate(parts, axis=None, dtype=dtype, casting="unsafe")

        return Frame(
            instance=registry.instance,
            seq=seq,
            timestamp_ns=timestamp_ns,
            monotonic_ns=monotonic_ns,
            interval_ns=interval_ns,
            host=host,
            catalog_version=registry.version,
            counter_ids=cat(self._counter_ids, np.uint32),  # type: ignore[arg-type]
            counter_values=cat(self._counter_values, np.uint64),  # type: ignore[arg-type]
            gauge_ids=cat(self._gauge_ids, np.uint32),  # type: ignore[arg-type]
            gauge_values=cat(self._gauge_values, np.int64),  # type: ignore[arg-type]
            hist_ids=cat([h.ids for h in self._hists], np.uint32),  # type: ignore[arg-type]
            hist_sizes=cat([h.sizes for h in self._hists], np.uint32),  # type: ignore[arg-type]
            hist_indices=cat([h.indices for h in self._hists], np.uint16),  # type: ignore[arg-type]
            hist_counts=cat([h.counts for h in self._hists], np.uint64),  # type: ignore[arg-type]
        )
