"""Building a recording's arrow table from delivered frames, row by row.

Invariants (the layout itself is ``layout``'s):
- Rows keep the order they were added.  Each row belongs to a source (the
  agent endpoint it came from, ``add(source=...)``, default the builder's
  ``source``); restarts, durations and pending gaps are per source: a row's
  ``restart`` is true when its delivery says ``restarted``, its agent
  instance differs from the previous row of the same source, or
  ``mark_restart`` was called for that source; its ``duration`` is then null.
- A row's ``host`` is ``layout.host_label`` of its agent's hostname (the
  frame's, else the host facts'), made unique per source: two sources never
  share a ``host`` value, one source keeps its value while its hostname stays.
- ``add`` is ``add_flat`` of a delivery's frame, catalog and restart flag;
  either reads a frame's histograms as its flat arrays.
- Each series (type, name, labels) gets exactly one column for the builder's
  life; a name clash falls back to ``layout.unique_name``.
- ``take``/``discard`` forget rows but never columns or totals, so streamed
  chunks share one schema once ``declare`` has fixed it, and
  ``file_metadata`` always describes every row added.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from rezolus_core.frame import MetricType, SeriesSpec
from rezolus_recording import idmap, layout
from rezolus_recording.columns import array, dictionary, list_columns
from rezolus_recording.layout import HIST as _HIST

if TYPE_CHECKING:
    from collections.abc import Mapping

    from numpy.typing import NDArray

    from rezolus_core.frame import Catalog, Frame
    from rezolus_core.tracker import Delivery

_Identity = tuple[MetricType, str, tuple[tuple[str, str], ...]]
_Buckets = tuple["NDArray[np.intp]", "NDArray[np.uint16]", "NDArray[np.uint64]"]


@dataclass
class _Column:
    name: str
    spec: SeriesSpec
    index: int  # position within the columns of its type


@dataclass
class _Stream:
    """What the builder knows about one source."""

    source: str
    facts: dict[str, str] = field(default_factory=dict)
    given: frozenset[str] = frozenset()
    label: str | None = None
    hostname: str | None = None
    last: tuple[int, str] | None = None  # (timestamp, instance) of its newest row
    pending_missed: int = 0
    pending_restart: bool = False


@dataclass
class _Row:
    timestamp_ns: int
    duration_ns: int | None
    instance: str
    restart: bool
    missed: int
    host: str
    counter_cols: NDArray[np.intp]
    counter_values: NDArray[np.uint64]
    gauge_cols: NDArray[np.intp]
    gauge_values: NDArray[np.int64]
    hist_cols: NDArray[np.intp]  # the frame's histograms, in its order: column, bucket count,
    hist_sizes: NDArray[np.intp]  # then every histogram's bucket indices and counts, concatenated
    hist_indices: NDArray[np.uint16]
    hist_counts: NDArray[np.uint64]


class TableBuilder:
    """Accumulates delivered frames as rows and builds the recording's arrow table.

    Gaps: ``mark_gap(n)`` adds ``n`` to the next row's ``missed``; ``add`` also
    accepts ``missed=`` directly.  Restarts: a row whose delivery says
    ``restarted`` or whose agent instance differs from the previous row's is a
    restart row (``restart`` true, ``duration`` null); ``mark_restart()``
    forces the next row to be one.

    Streaming: ``declare(catalog)`` creates columns up front so every chunk
    has the same schema; ``take()`` returns the rows added since the last
    ``take`` and forgets them (``discard()`` forgets without building), while
    totals and the file metadata keep counting every row.
    """

    def __init__(
        self, *, source: str, interval_ns: int, host: Mapping[str, str] | None = None
    ) -> None:
        if interval_ns <= 0:
            raise ValueError(f"interval must be positive, got {interval_ns} ns")
        self.source = source
        self.interval_ns = interval_ns
        given = dict(host or {})
        self._streams: dict[str, _Stream] = {}
        self._default = self._stream(source)
        self._default.facts.update(given)
        self._default.given = frozenset(given)
        self._labels: dict[str, str] = {}  # host label -> source
        self._columns: dict[_Identity, _Column] = {}
        self._names: set[str] = set()
        self._by_type: dict[MetricType, list[_Column]] = {t: [] for t in MetricType}
        self._id_maps: dict[str, tuple[int, dict[MetricType, NDArray[np.intp]]]] = {}
        self._rows: list[_Row] = []
        self._instances: list[str] = []
        self._taken = 0
        self._first_ts: int | None = None
        self._last_ts: int | None = None
        self._gaps = self._missed_rows = self._restarts = 0
        self.dropped_buckets = 0

    @property
    def rows(self) -> int:
        """Number of rows added so far (including rows already returned by ``take``)."""
        return self._taken + len(self._rows)

    @property
    def pending_bytes(self) -> int:
        """Arrow bytes the histogram columns of the rows not yet taken will need (stored dense)."""
        return len(self._rows) * len(self._by_type[MetricType.HISTOGRAM]) * (_HIST.buckets * 8 + 4)

    @property
    def columns(self) -> int:
        """Number of series columns known so far."""
        return len(self._columns)

    def _stream(self, source: str | None) -> _Stream:
        key = self.source if source is None else source
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Stream(key)
        return stream

    def mark_gap(self, missed: int = 1, *, source: str | None = None) -> None:
        """Record that ``missed`` rows are missing before the next row of ``source``."""
        if missed < 0:
            raise ValueError(f"missed rows cannot be negative, got {missed}")
        self._stream(source).pending_missed += missed

    def mark_restart(self, *, source: str | None = None) -> None:
        """Force the next row of ``source`` to be a restart row (no deltas across it)."""
        self._stream(source).pending_restart = True

    def _label(self, stream: _Stream, hostname: str) -> str:
        if stream.label is None or hostname != stream.hostname:
            if stream.label is not None:
                self._labels.pop(stream.label, None)
            taken = {k for k, v in self._labels.items() if v != stream.source}
            stream.label = layout.host_label(hostname, stream.source, taken)
            stream.hostname = hostname
            self._labels[stream.label] = stream.source
        return stream.label

    def _column(self, spec: SeriesSpec) -> _Column:
        identity: _Identity = (spec.type, spec.name, tuple(sorted(spec.labels.items())))
        column = self._columns.get(identity)
        if column is None:
            name = layout.column_name(spec)
            if name in self._names or name in layout.BOOKKEEPING:
                name = layout.unique_name(spec)
            typed = self._by_type[spec.type]
            column = _Column(name, spec, len(typed))
            typed.append(column)
            self._columns[identity] = column
            self._names.add(name)
        return column

    def declare(self, catalog: Catalog, *, source: str | None = None) -> None:
        """Create the columns of every series of ``catalog`` now (to fix the schema early)."""
        self._catalog_map(catalog, self._stream(source))

    def _catalog_map(self, catalog: Catalog, stream: _Stream) -> dict[MetricType, NDArray[np.intp]]:
        known = self._id_maps.get(catalog.instance)
        if known is not None and known[0] >= catalog.version:
            return known[1]
        known = self._id_maps[catalog.instance] = idmap.extend(known, catalog, lambda spec: self._column(spec).index)
        maps = known[1]
        for k, v in catalog.host.items():
            if k not in stream.given:
                stream.facts[k] = v
        if catalog.instance not in self._instances:
            self._instances.append(catalog.instance)
        return maps

    def add(
        self,
        delivery: Delivery,
        *,
        duration_ns: int | None = None,
        missed: int = 0,
        timestamp_ns: int | None = None,
        source: str | None = None,
    ) -> None:
        """Append one row of ``source`` from a delivered frame (``timestamp_ns`` overrides the frame's)."""
        self.add_flat(
            delivery.frame, delivery.catalog, restarted=delivery.restarted,
            duration_ns=duration_ns, missed=missed, timestamp_ns=timestamp_ns, source=source,
        )

    def add_flat(
        self,
        frame: Frame,
        catalog: Catalog,
        *,
        restarted: bool = False,
        duration_ns: int | None = None,
        missed: int = 0,
        timestamp_ns: int | None = None,
        source: str | None = None,
    ) -> None:
        """``add`` for a frame already flat whose ids ``catalog`` (of its instance) covers (``flat.IdCheck``)."""
        stream = self._stream(source)
        maps = self._catalog_map(catalog, stream)
        if frame.host and layout.HOSTNAME not in stream.facts:
            stream.facts[layout.HOSTNAME] = frame.host
        hostname = stream.facts.get(layout.HOSTNAME, "") if layout.HOSTNAME in stream.given else frame.host
        label = self._label(stream, hostname or stream.facts.get(layout.HOSTNAME, ""))
        ts = frame.timestamp_ns if timestamp_ns is None else timestamp_ns
        previous = stream.last
        restart = stream.pending_restart or restarted or (previous is not None and previous[1] != frame.instance)
        if duration_ns is None and previous is not None and not restart:
            duration_ns = max(0, ts - previous[0])
        if restart:
            duration_ns = None
        missed += stream.pending_missed
        sizes, indices, counts = self._buckets(frame)
        row = _Row(
            timestamp_ns=ts,
            duration_ns=duration_ns,
            instance=frame.instance,
            restart=restart,
            missed=missed,
            host=label,
            counter_cols=maps[MetricType.COUNTER][frame.counter_ids],
            counter_values=frame.counter_values,
            gauge_cols=maps[MetricType.GAUGE][frame.gauge_ids],
            gauge_values=frame.gauge_values,
            hist_cols=maps[MetricType.HISTOGRAM][frame.hist_ids],
            hist_sizes=sizes, hist_indices=indices, hist_counts=counts,
        )
        self._rows.append(row)
        stream.pending_missed = 0
        stream.pending_restart = False
        stream.last = (ts, frame.instance)
        self._first_ts = ts if self._first_ts is None else min(self._first_ts, ts)
        self._last_ts = ts if self._last_ts is None else max(self._last_ts, ts)
        self._gaps += 1 if missed else 0
        self._missed_rows += missed
        self._restarts += 1 if restart else 0

    def _buckets(self, frame: Frame) -> _Buckets:
        """A frame's histogram sizes and buckets as a row keeps them; buckets past the layout are dropped (counted)."""
        sizes, indices, counts = frame.hist_sizes.astype(np.intp), frame.hist_indices, frame.hist_counts
        if indices.size and int(indices.max()) >= _HIST.buckets:
            keep = indices < _HIST.buckets
            self.dropped_buckets += int(keep.size - np.count_nonzero(keep))
            sizes = np.bincount(np.repeat(np.arange(sizes.size), sizes)[keep], minlength=sizes.size)
            indices, counts = indices[keep], counts[keep]
        return sizes, indices, counts

    def _scalar_columns(
        self, kind: MetricType, dtype: type[np.uint64 | np.int64]
    ) -> list[pa.Array]:
        columns = self._by_type[kind]
        rows = self._rows
        values = np.zeros((len(columns), len(rows)), dtype=dtype)
        present = np.zeros((len(columns), len(rows)), dtype=bool)
        counters = kind is MetricType.COUNTER
        cols = [r.counter_cols if counters else r.gauge_cols for r in rows]
        if cols:
            sizes = np.fromiter((c.size for c in cols), np.intp, len(cols))
            where = (np.concatenate(cols), np.repeat(np.arange(len(rows)), sizes))
            values[where] = np.concatenate([r.counter_values if counters else r.gauge_values for r in rows])
            present[where] = True
        arrow_type = layout.arrow_type(kind)
        counts = present.sum(axis=1).tolist()
        validity = np.packbits(present, axis=1, bitorder="little")
        return [
            array(arrow_type, values[i], validity[i], len(rows) - counts[i])
            for i in range(len(columns))
        ]

    def _histogram_columns(self) -> list[pa.Array]:
        rows = self._rows
        per_row = np.fromiter((r.hist_cols.size for r in rows), np.intp, len(rows))
        shape = (len(self._by_type[MetricType.HISTOGRAM]), len(rows), _HIST.buckets)
        if not rows:
            return list_columns(*(np.empty(0, np.intp),) * 5, shape=shape)
        return list_columns(
            np.concatenate([r.hist_cols for r in rows]),
            np.repeat(np.arange(len(rows)), per_row),
            np.concatenate([r.hist_sizes for r in rows]),
            np.concatenate([r.hist_indices for r in rows]),
            np.concatenate([r.hist_counts for r in rows]),
            shape=shape,
        )

    def file_metadata(self) -> dict[str, str]:
        """Return the file's key-value metadata for all rows added so far."""
        catalog = [
            {
                "column": c.name, "metric": c.spec.name, "type": c.spec.type.value,
                "labels": dict(c.spec.labels), "unit": c.spec.unit,
                "description": c.spec.description,
            }
            for c in sorted(self._columns.values(), key=lambda c: c.name)
        ]
        streams = [s for s in self._streams.values() if s.label is not None] or [self._default]
        host = streams[0].facts
        hosts = {
            s.label: {**s.facts, layout.SOURCE: s.source} for s in streams if s.label is not None
        }
        return {
            layout.SOURCE: " ".join(s.source for s in streams),
            layout.SOURCES: json.dumps([s.source for s in streams]),
            layout.HOSTS: json.dumps(hosts, sort_keys=True),
            layout.VERSION: layout.package_version(),
            layout.LAYOUT: layout.LAYOUT_VERSION,
            layout.SAMPLING_INTERVAL_MS: str(self.interval_ns // 1_000_000),
            layout.INTERVAL_NS: str(self.interval_ns),
            layout.HOST: json.dumps(host, sort_keys=True),
            layout.HOSTNAME: host.get(layout.HOSTNAME, ""),
            layout.KERNEL: host.get(layout.KERNEL, ""),
            layout.AGENT_VERSION: host.get(layout.AGENT_VERSION, ""),
            layout.INSTANCES: json.dumps(self._instances),
            layout.CATALOG: json.dumps(catalog),
            layout.ROWS: str(self.rows),
            layout.GAPS: str(self._gaps),
            layout.MISSED_ROWS: str(self._missed_rows),
            layout.RESTARTS: str(self._restarts),
            layout.FIRST_TIMESTAMP: "" if self._first_ts is None else str(self._first_ts),
            layout.LAST_TIMESTAMP: "" if self._last_ts is None else str(self._last_ts),
            layout.DROPPED_BUCKETS: str(self.dropped_buckets),
        }

    def table(self) -> pa.Table:
        """Return the rows not yet taken as an arrow table with the recording's schema."""
        rows = self._rows
        arrays: list[pa.Array] = [
            pa.array([r.timestamp_ns for r in rows], type=pa.uint64()),
            pa.array([r.duration_ns for r in rows], type=pa.uint64()),
            dictionary([r.instance for r in rows]),
            pa.array([r.restart for r in rows], type=pa.bool_()),
            pa.array([r.missed for r in rows], type=pa.uint64()),
            dictionary([r.host for r in rows]),
        ]
        fields = layout.bookkeeping_fields(arrays[2].type, arrays[5].type)
        series: list[tuple[str, pa.Field, pa.Array]] = []
        for kind, dtype, built in (
            (MetricType.COUNTER, np.uint64, None),
            (MetricType.GAUGE, np.int64, None),
            (MetricType.HISTOGRAM, None, self._histogram_columns()),
        ):
            columns = self._by_type[kind]
            values = built if built is not None else self._scalar_columns(kind, dtype)  # type: ignore[arg-type]
            series.extend(
                (c.name, layout.series_field(c.name, c.spec), v)
                for c, v in zip(columns, values, strict=True)
            )
        series.sort(key=lambda item: item[0])
        fields.extend(f for _, f, _ in series)
        arrays.extend(a for _, _, a in series)
        schema = pa.schema(fields, metadata=self.file_metadata())
        return pa.Table.from_arrays(arrays, schema=schema)

    def discard(self) -> None:
        """Forget the rows not yet taken without building them; columns and totals carry on."""
        self._taken += len(self._rows)
        self._rows = []

    def take(self) -> pa.Table:
        """Return ``table()`` and forget its rows; columns and totals carry on (for streaming)."""
        table = self.table()
        self._taken += len(self._rows)
        self._rows = []
        return table

