"""The parquet recording layout, shared by the recorder and hindsight.

Invariants (the file format; ``docs/parquet.md`` is the user-facing version):
- One row per recorded frame, in the order rows were added.  Bookkeeping
  columns come first: ``timestamp`` (UInt64 ns since the Unix epoch, never
  null), ``duration`` (UInt64 ns since the previous row of the same agent
  instance; null on the first row and on every restart row), ``instance``
  (the agent instance id, dictionary-encoded string), ``restart`` (bool: the
  agent instance changed, so cumulative values start again and must never be
  diffed against the previous row) and ``missed`` (UInt64: rows that should
  have been recorded just before this one but were not, i.e. a gap).
- Then one column per series, sorted by column name: counters UInt64, gauges
  Int64, histograms ``List<UInt64>`` of all 496 cumulative bucket counts named
  ``<column>:buckets``.  A column name is the metric name, then ``/`` + the
  values of the labels ``name``, ``op``, ``state``, ``direction`` (that
  order), then the other label values in key order, then ``/<id>``.  Two
  different series that would get the same name (or the same series with a
  different type) get a unique ``/key=value`` form instead of clashing.
- A series absent from a row (it appeared later, vanished, or belongs to
  another agent instance) is null in that row, never zero.
- Field metadata of a series column: its labels, plus ``metric``,
  ``metric_type``, ``unit`` and, for histograms, ``grouping_power`` and
  ``max_value_power`` (descriptions live once, in the ``catalog`` metadata).  File metadata: ``source``,
  ``version``, ``sampling_interval_ms`` (the original's keys) plus
  ``interval_ns``, ``host`` (JSON), ``hostname``, ``kernel``, ``agent_version``,
  ``instances``
  (JSON list), ``catalog`` (JSON list: column, metric, type, labels, unit,
  description), ``rows``, ``gaps``, ``missed_rows``, ``restarts``,
  ``first_timestamp``, ``last_timestamp`` and ``layout`` (this layout's
  version).
- ``write_table`` (from ``rezolus_recorder.files``) never leaves a partial
  file at its path: temp file, fsync, rename, directory fsync.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from rezolus_core import histogram
from rezolus_core.frame import MetricType, SeriesSpec
from rezolus_recorder.files import write_options, write_table

__all__ = [
    "BOOKKEEPING", "BUCKETS_SUFFIX", "LAYOUT_VERSION", "TableBuilder", "column_name",
    "package_version", "write_options", "write_table",
]

if TYPE_CHECKING:
    from collections.abc import Mapping

    from numpy.typing import NDArray

    from rezolus_core.frame import Catalog
    from rezolus_core.tracker import Delivery

LAYOUT_VERSION = "1"
BUCKETS_SUFFIX = ":buckets"
BOOKKEEPING = ("timestamp", "duration", "instance", "restart", "missed")
_ORDERED_LABELS = ("name", "op", "state", "direction")
_HIST = histogram.layout()


def package_version() -> str:
    """Return the recorder's version, written as the file's ``version``."""
    try:
        return version("rezolus-recorder")
    except PackageNotFoundError:
        return "0+unknown"


def column_name(spec: SeriesSpec) -> str:
    """Return the original's column name of a series (without any collision suffix)."""
    labels = spec.labels
    parts = [spec.name]
    parts.extend(labels[key] for key in _ORDERED_LABELS if key in labels)
    parts.extend(
        labels[key] for key in sorted(labels) if key not in _ORDERED_LABELS and key != "id"
    )
    if "id" in labels:
        parts.append(labels["id"])
    name = "/".join(parts)
    return name + BUCKETS_SUFFIX if spec.type is MetricType.HISTOGRAM else name


def _unique_name(spec: SeriesSpec) -> str:
    inner = ",".join(f"{k}={v}" for k, v in sorted(spec.labels.items()))
    name = f"{spec.name}/{spec.type.value}" + (f"/{inner}" if inner else "")
    return name + BUCKETS_SUFFIX if spec.type is MetricType.HISTOGRAM else name


_Identity = tuple[MetricType, str, tuple[tuple[str, str], ...]]


@dataclass
class _Column:
    name: str
    spec: SeriesSpec
    index: int  # position within the columns of its type


@dataclass
class _Row:
    timestamp_ns: int
    duration_ns: int | None
    instance: str
    restart: bool
    missed: int
    counter_cols: NDArray[np.intp]
    counter_values: NDArray[np.uint64]
    gauge_cols: NDArray[np.intp]
    gauge_values: NDArray[np.int64]
    hist_cols: list[int] = field(default_factory=list)
    hist_buckets: list[tuple[NDArray[np.uint16], NDArray[np.uint64]]] = field(default_factory=list)


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
        self._host: dict[str, str] = dict(host or {})
        self._host_given = set(self._host)
        self._columns: dict[_Identity, _Column] = {}
        self._names: set[str] = set()
        self._by_type: dict[MetricType, list[_Column]] = {t: [] for t in MetricType}
        self._id_maps: dict[str, tuple[int, dict[MetricType, NDArray[np.intp]]]] = {}
        self._rows: list[_Row] = []
        self._instances: list[str] = []
        self._pending_missed = 0
        self._pending_restart = False
        self._last: tuple[int, str] | None = None  # (timestamp, instance) of the newest row
        self._taken = 0
        self._first_ts: int | None = None
        self._gaps = self._missed_rows = self._restarts = 0
        self.dropped_buckets = 0

    @property
    def rows(self) -> int:
        """Number of rows added so far (including rows already returned by ``take``)."""
        return self._taken + len(self._rows)

    @property
    def columns(self) -> int:
        """Number of series columns known so far."""
        return len(self._columns)

    def mark_gap(self, missed: int = 1) -> None:
        """Record that ``missed`` rows are missing before the next row."""
        if missed < 0:
            raise ValueError(f"missed rows cannot be negative, got {missed}")
        self._pending_missed += missed

    def mark_restart(self) -> None:
        """Force the next row to be a restart row (no deltas across it)."""
        self._pending_restart = True

    def _column(self, spec: SeriesSpec) -> _Column:
        identity: _Identity = (spec.type, spec.name, tuple(sorted(spec.labels.items())))
        column = self._columns.get(identity)
        if column is None:
            name = column_name(spec)
            if name in self._names or name in BOOKKEEPING:
                name = _unique_name(spec)
            typed = self._by_type[spec.type]
            column = _Column(name, spec, len(typed))
            typed.append(column)
            self._columns[identity] = column
            self._names.add(name)
        return column

    def declare(self, catalog: Catalog) -> None:
        """Create the columns of every series of ``catalog`` now (to fix the schema early)."""
        self._catalog_map(catalog)

    def _catalog_map(self, catalog: Catalog) -> dict[MetricType, NDArray[np.intp]]:
        # Catalogs of one instance are append-only, so the map of its newest
        # version serves every older one and a newer one only adds its tail.
        known = self._id_maps.get(catalog.instance)
        if known is not None and known[0] >= catalog.version:
            return known[1]
        start = 0 if known is None else known[0]
        maps = {t: np.full(catalog.version, -1, dtype=np.intp) for t in MetricType}
        if known is not None:
            for kind, old in known[1].items():
                maps[kind][:start] = old
        for spec in catalog.series[start:]:
            maps[spec.type][spec.id] = self._column(spec).index
        self._id_maps[catalog.instance] = (catalog.version, maps)
        for k, v in catalog.host.items():
            if k not in self._host_given:
                self._host[k] = v
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
    ) -> None:
        """Append one row from a delivered frame (``timestamp_ns`` overrides the frame's)."""
        frame = delivery.frame
        maps = self._catalog_map(delivery.catalog)
        if frame.host and "hostname" not in self._host:
            self._host["hostname"] = frame.host
        ts = frame.timestamp_ns if timestamp_ns is None else timestamp_ns
        previous = self._last
        restart = (
            self._pending_restart
            or delivery.restarted
            or (previous is not None and previous[1] != frame.instance)
        )
        if duration_ns is None and previous is not None and not restart:
            duration_ns = max(0, ts - previous[0])
        if restart:
            duration_ns = None
        missed += self._pending_missed
        row = _Row(
            timestamp_ns=ts,
            duration_ns=duration_ns,
            instance=frame.instance,
            restart=restart,
            missed=missed,
            counter_cols=maps[MetricType.COUNTER][frame.counter_ids],
            counter_values=frame.counter_values,
            gauge_cols=maps[MetricType.GAUGE][frame.gauge_ids],
            gauge_values=frame.gauge_values,
        )
        hist_map = maps[MetricType.HISTOGRAM]
        for hist in frame.histograms:
            keep = hist.indices < _HIST.buckets
            if not keep.all():
                self.dropped_buckets += int((~keep).sum())
                hist = type(hist)(hist.id, hist.indices[keep], hist.counts[keep])  # noqa: PLW2901
            row.hist_cols.append(int(hist_map[hist.id]))
            row.hist_buckets.append((hist.indices, hist.counts))
        self._rows.append(row)
        self._pending_missed = 0
        self._pending_restart = False
        self._last = (ts, frame.instance)
        if self._first_ts is None:
            self._first_ts = ts
        self._gaps += 1 if missed else 0
        self._missed_rows += missed
        self._restarts += 1 if restart else 0

    def _scalar_columns(
        self, kind: MetricType, dtype: type[np.uint64 | np.int64]
    ) -> list[pa.Array]:
        columns = self._by_type[kind]
        n = len(self._rows)
        values = np.zeros((len(columns), n), dtype=dtype)
        present = np.zeros((len(columns), n), dtype=bool)
        for r, row in enumerate(self._rows):
            cols, vals = (
                (row.counter_cols, row.counter_values)
                if kind is MetricType.COUNTER
                else (row.gauge_cols, row.gauge_values)
            )
            values[cols, r] = vals
            present[cols, r] = True
        arrow_type = pa.uint64() if kind is MetricType.COUNTER else pa.int64()
        return [
            pa.array(values[i], type=arrow_type, mask=~present[i]) for i in range(len(columns))
        ]

    def _histogram_columns(self) -> list[pa.Array]:
        columns = self._by_type[MetricType.HISTOGRAM]
        n, width = len(self._rows), _HIST.buckets
        cells: list[dict[int, tuple[NDArray[np.uint16], NDArray[np.uint64]]]] = [
            {} for _ in columns
        ]
        for r, row in enumerate(self._rows):
            for col, buckets in zip(row.hist_cols, row.hist_buckets, strict=True):
                cells[col][r] = buckets
        arrays = []
        for per_row in cells:
            rows_present = sorted(per_row)
            flat = np.zeros((len(rows_present), width), dtype=np.uint64)
            for k, r in enumerate(rows_present):
                indices, counts = per_row[r]
                flat[k, indices] = counts
            present = np.zeros(n, dtype=bool)
            present[rows_present] = True
            offsets = np.zeros(n + 1, dtype=np.int32)
            offsets[1:] = np.cumsum(present.astype(np.int32) * width)
            arrays.append(
                pa.ListArray.from_arrays(
                    pa.array(offsets, type=pa.int32()),
                    pa.array(flat.reshape(-1), type=pa.uint64()),
                    mask=pa.array(~present),
                )
            )
        return arrays

    def _field(self, column: _Column, arrow_type: pa.DataType) -> pa.Field:
        spec = column.spec
        meta = dict(spec.labels)
        meta.update(metric=spec.name, metric_type=spec.type.value, unit=spec.unit)
        if spec.type is MetricType.HISTOGRAM:
            meta.update(
                grouping_power=str(_HIST.grouping_power),
                max_value_power=str(_HIST.max_value_power),
            )
        return pa.field(column.name, arrow_type, nullable=True, metadata=meta)

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
        return {
            "source": self.source,
            "version": package_version(),
            "layout": LAYOUT_VERSION,
            "sampling_interval_ms": str(self.interval_ns // 1_000_000),
            "interval_ns": str(self.interval_ns),
            "host": json.dumps(self._host, sort_keys=True),
            "hostname": self._host.get("hostname", ""),
            "kernel": self._host.get("kernel", ""),
            "agent_version": self._host.get("agent_version", ""),
            "instances": json.dumps(self._instances),
            "catalog": json.dumps(catalog),
            "rows": str(self.rows),
            "gaps": str(self._gaps),
            "missed_rows": str(self._missed_rows),
            "restarts": str(self._restarts),
            "first_timestamp": "" if self._first_ts is None else str(self._first_ts),
            "last_timestamp": "" if self._last is None else str(self._last[0]),
            "dropped_buckets": str(self.dropped_buckets),
        }

    def table(self) -> pa.Table:
        """Return the rows not yet taken as an arrow table with the recording's schema."""
        rows = self._rows
        arrays: list[pa.Array] = [
            pa.array([r.timestamp_ns for r in rows], type=pa.uint64()),
            pa.array([r.duration_ns for r in rows], type=pa.uint64()),
            pa.array([r.instance for r in rows], type=pa.string()).dictionary_encode(),
            pa.array([r.restart for r in rows], type=pa.bool_()),
            pa.array([r.missed for r in rows], type=pa.uint64()),
        ]
        fields = [
            pa.field("timestamp", pa.uint64(), nullable=False, metadata={"unit": "nanoseconds"}),
            pa.field("duration", pa.uint64(), metadata={"unit": "nanoseconds"}),
            pa.field("instance", arrays[2].type),
            pa.field("restart", pa.bool_(), nullable=False),
            pa.field("missed", pa.uint64(), nullable=False, metadata={"unit": "rows"}),
        ]
        series: list[tuple[str, pa.Field, pa.Array]] = []
        for kind, dtype, arrow_type, built in (
            (MetricType.COUNTER, np.uint64, pa.uint64(), None),
            (MetricType.GAUGE, np.int64, pa.int64(), None),
            (MetricType.HISTOGRAM, None, pa.list_(pa.uint64()), self._histogram_columns()),
        ):
            columns = self._by_type[kind]
            values = built if built is not None else self._scalar_columns(kind, dtype)  # type: ignore[arg-type]
            series.extend(
                (c.name, self._field(c, arrow_type), v)
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
