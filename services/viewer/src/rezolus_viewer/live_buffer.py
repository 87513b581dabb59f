"""The live viewer's memory: the last ``window`` of an agent's frames, one row per interval, as the recorder picks them.

Invariants (sans-IO: deliveries in, immutable snapshots out):
- Rows are picked with ``rezolus_recording.grid.Grid`` at the agent's own
  interval, exactly as the recorder does: one frame per slot, ``missed`` set
  on the row after skipped slots, ``restart`` set on a delivery marked
  ``restarted`` or from another agent instance.  An agent that comes back
  with another interval starts the buffer afresh.
- Memory is bounded: rows older than ``window_ns`` before the newest are
  dropped, and slots are strictly increasing, so at most
  ``window / interval + 1`` rows are held; histograms are kept sparse, as
  the frames carry them; a snapshot's matrices hold only the columns its
  rows have; id maps of past agent instances are dropped on restart.
- Column names, types, units and labels are the recording layout's
  (``layout.column_name`` / ``series_field``), so a live page plans the same
  charts as a recording of the same agent.
- ``snapshot()`` returns a ``MemorySource`` that never changes (a ``Source``
  for ``compute``/``query``); ``generation`` grows with every row taken.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from rezolus_core.frame import MetricType, SeriesSpec
from rezolus_recording import idmap, layout
from rezolus_recording.grid import Grid
from rezolus_recording.reader import Column, series_column
from rezolus_viewer.recording import HistIndex

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from rezolus_core.frame import Catalog
    from rezolus_core.tracker import Delivery
    from rezolus_viewer.source import Scalars

_Identity = tuple[MetricType, str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class Row:
    """One picked frame, with its values mapped to column numbers of their type."""

    timestamp_ns: int
    restart: bool
    missed: int
    counter_cols: NDArray[np.intp]
    counter_values: NDArray[np.uint64]
    gauge_cols: NDArray[np.intp]
    gauge_values: NDArray[np.int64]
    hists: tuple[tuple[int, NDArray[np.uint16], NDArray[np.uint64]], ...]


@dataclass
class Taken:
    """What ``take`` did with a delivery (for the caller's log)."""

    row: bool = False
    missed: int = 0
    restart: bool = False
    reset: bool = False


@dataclass
class _Registry:
    """Every series column seen, per type, in order of first appearance."""

    names: set[str] = field(default_factory=set)
    ids: dict[_Identity, int] = field(default_factory=dict)
    by_type: dict[MetricType, list[Column]] = field(default_factory=lambda: {t: [] for t in MetricType})
    maps: dict[str, tuple[int, dict[MetricType, NDArray[np.intp]]]] = field(default_factory=dict)

    def column(self, spec: SeriesSpec) -> int:
        identity: _Identity = (spec.type, spec.name, tuple(sorted(spec.labels.items())))
        known = self.ids.get(identity)
        if known is not None:
            return known
        name = layout.column_name(spec)
        if name in self.names or name in layout.BOOKKEEPING:
            name = layout.unique_name(spec)
        col = series_column(layout.series_field(name, spec))
        if col is None:  # pragma: no cover - series_field always writes a known metric type
            raise ValueError(f"no column for {spec.name}")
        typed = self.by_type[spec.type]
        typed.append(col)
        self.names.add(name)
        self.ids[identity] = len(typed) - 1
        return len(typed) - 1

    def map(self, catalog: Catalog) -> dict[MetricType, NDArray[np.intp]]:
        known = self.maps[catalog.instance] = idmap.extend(self.maps.get(catalog.instance), catalog, self.column)
        return known[1]


class LiveBuffer:
    """The rolling window of rows (see the module invariants)."""

    def __init__(self, window_ns: int, source: str = "") -> None:
        if window_ns <= 0:
            raise ValueError("the window must be positive")
        self.window_ns = window_ns
        self.source = source
        self.rows: deque[Row] = deque()
        self.generation = 0
        self.interval_ns = 0
        self.host: dict[str, str] = {}
        self._grid: Grid | None = None
        self._registry = _Registry()
        self._instance: str | None = None

    def take(self, delivery: Delivery) -> Taken:
        """Offer one delivered frame; it becomes a row when the grid picks it."""
        frame = delivery.frame
        taken = Taken()
        if self._grid is not None and frame.interval_ns != self.interval_ns:
            self.rows.clear()
            self._grid = None
            taken.reset = True
        if self._grid is None:
            self._grid = Grid(frame.interval_ns)
            self.interval_ns = frame.interval_ns
        pick = self._grid.offer(frame.timestamp_ns, frame.interval_ns, seq=frame.seq, instance=frame.instance)
        if pick is None:
            return taken
        maps = self._registry.map(delivery.catalog)
        self.host.update(delivery.catalog.host)
        if frame.host:
            self.host.setdefault(layout.HOSTNAME, frame.host)
        restart = delivery.restarted or (self._instance is not None and self._instance != frame.instance)
        self._instance = frame.instance
        if restart:  # rows hold column numbers, not ids: other instances' id maps are no longer needed
            self._registry.maps = {frame.instance: self._registry.maps[frame.instance]}
        hist_map = maps[MetricType.HISTOGRAM]
        hists = []
        for h in frame.histograms:
            keep = h.indices < layout.HIST.buckets
            hists.append((int(hist_map[h.id]), h.indices[keep], h.counts[keep]))
        self.rows.append(Row(
            frame.timestamp_ns, restart, pick.missed,
            maps[MetricType.COUNTER][frame.counter_ids], frame.counter_values,
            maps[MetricType.GAUGE][frame.gauge_ids], frame.gauge_values, tuple(hists),
        ))
        oldest = frame.timestamp_ns - self.window_ns
        while self.rows and self.rows[0].timestamp_ns < oldest:
            self.rows.popleft()
        self.generation += 1
        taken.row, taken.missed, taken.restart = True, pick.missed, restart
        return taken

    def snapshot(self) -> MemorySource | None:
        """The rows held now as an unchanging source (None before the first row)."""
        if not self.rows:
            return None
        meta = {
            layout.SOURCE: self.source,
            layout.HOSTNAME: self.host.get(layout.HOSTNAME, ""),
            layout.KERNEL: self.host.get(layout.KERNEL, ""),
            layout.VERSION: layout.package_version(),
            layout.INTERVAL_NS: str(self.interval_ns),
            layout.HOST: json.dumps(self.host, sort_keys=True),
        }
        columns = {t: list(c) for t, c in self._registry.by_type.items()}
        return MemorySource(tuple(self.rows), columns, self.interval_ns, meta)


def _dense(rows: tuple[Row, ...], kind: MetricType) -> tuple[NDArray[np.intp], NDArray[np.uint64] | NDArray[np.int64],
                                                               NDArray[np.bool_]]:
    """The column numbers present in ``rows`` and their (column x row) matrix of one scalar type, with presence."""
    counter = kind is MetricType.COUNTER
    parts = [(row.counter_cols, row.counter_values) if counter else (row.gauge_cols, row.gauge_values) for row in rows]
    used = np.unique(np.concatenate([cols[cols >= 0] for cols, _ in parts] or [np.zeros(0, dtype=np.intp)]))
    shape = (len(used), len(rows))
    values: NDArray[np.uint64] | NDArray[np.int64] = (
        np.zeros(shape, dtype=np.uint64) if counter else np.zeros(shape, dtype=np.int64))
    present = np.zeros(shape, dtype=bool)
    for r, (cols, vals) in enumerate(parts):
        ok = cols >= 0
        where = np.searchsorted(used, cols[ok])
        values[where, r] = vals[ok]
        present[where, r] = True
    return used, values, present


class MemorySource:
    """A ``Source`` over rows held in memory: scalars dense, histograms sparse until asked for."""

    def __init__(self, rows: tuple[Row, ...], columns: dict[MetricType, list[Column]], interval_ns: int,
                 metadata: dict[str, str]) -> None:
        self.metadata = metadata
        self.interval_ns = max(interval_ns, 1)
        self.rows = len(rows)
        self.timestamps = np.array([r.timestamp_ns for r in rows], dtype=np.int64)
        self.breaks = np.zeros(self.rows, dtype=bool)
        self.breaks[0] = True
        self.breaks |= np.array([r.restart or r.missed > 0 for r in rows], dtype=bool)
        self.breaks[1:] |= np.diff(self.timestamps) * 2 > 3 * self.interval_ns
        self._scalars: Scalars = {}
        self.columns: dict[str, Column] = {}
        for kind in (MetricType.COUNTER, MetricType.GAUGE):
            used, values, present = _dense(rows, kind)
            for i, number in enumerate(used):
                col = columns[kind][number]
                self.columns[col.name] = col
                self._scalars[col.name] = (values[i], present[i])
        self._hists: dict[str, list[tuple[int, NDArray[np.uint16], NDArray[np.uint64]]]] = {}
        hist_cols = columns[MetricType.HISTOGRAM]
        for r, row in enumerate(rows):
            for number, indices, counts in row.hists:
                if number >= 0:
                    self._hists.setdefault(hist_cols[number].name, []).append((r, indices, counts))
        for hist in hist_cols:
            if hist.name in self._hists:
                self.columns[hist.name] = hist
        self._index: dict[str, HistIndex] = {}

    @property
    def stride(self) -> int:
        """Every row is at hand."""
        return 1

    @property
    def start_ns(self) -> int:
        """Timestamp of the oldest row held."""
        return int(self.timestamps[0])

    @property
    def end_ns(self) -> int:
        """Timestamp of the newest row held."""
        return int(self.timestamps[-1])

    def host(self) -> dict[str, str]:
        """Host facts from the agent's catalog."""
        value = json.loads(self.metadata.get(layout.HOST, "{}"))
        return {str(k): str(v) for k, v in value.items()}

    def scalars(self, names: list[str]) -> Scalars:
        """Scalar columns as (values, present)."""
        return {n: self._scalars[n] for n in names}

    def histogram_index(self, name: str) -> HistIndex:
        """Presence and bucket totals per row (built once per snapshot)."""
        index = self._index.get(name)
        if index is None:
            present = np.zeros(self.rows, dtype=bool)
            totals = np.zeros(self.rows, dtype=np.uint64)
            for r, _, counts in self._hists[name]:
                present[r] = True
                totals[r] = counts.sum(dtype=np.uint64)
            width = layout.HIST.buckets
            index = HistIndex(1, np.arange(self.rows, dtype=np.intp), np.zeros((0, width), dtype=np.uint64),
                              present, totals)
            self._index[name] = index
        return index

    def histogram_rows(self, name: str, rows: NDArray[np.intp]) -> tuple[NDArray[np.uint64], NDArray[np.bool_]]:
        """Cumulative buckets at the given rows (zero where absent) and their presence."""
        lay = self.columns[name].layout
        out = np.zeros((len(rows), lay.buckets if lay else layout.HIST.buckets), dtype=np.uint64)
        by_row = {r: (i, c) for r, i, c in self._hists[name]}
        present = np.zeros(len(rows), dtype=bool)
        for k, r in enumerate(rows):
            hit = by_row.get(int(r))
            if hit is not None:
                out[k, hit[0]] = hit[1]
                present[k] = True
        return out, present

    def close(self) -> None:
        """Nothing to release."""
