"""The parquet recording layout: column names, metadata keys and the schema pieces.

Shared by every writer (``builder``) and reader (``reader``) of a recording;
no other module spells a column or metadata name.

Invariants (the file format; ``docs/parquet.md`` is the user-facing version):
- One row per recorded frame, in the order rows were added.  Bookkeeping
  columns come first: ``timestamp`` (UInt64 ns since the Unix epoch, never
  null), ``duration`` (UInt64 ns since the previous row of the same agent
  instance; null on the first row and on every restart row), ``instance``
  (the agent instance id, dictionary-encoded string), ``restart`` (bool: the
  agent instance changed, so cumulative values start again and must never be
  diffed against the previous row) and ``missed`` (UInt64: rows that should
  have been recorded just before this one but were not, i.e. a gap), then
  ``host`` (dictionary-encoded string, ``host_label``: which agent the row
  came from, stable across that agent's restarts).  Restarts, durations and
  gaps are per ``host``: rows of one host are in time order, and a file may
  hold several hosts one after the other.  Files written before ``host``
  existed have no such column and hold one agent.
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
  (JSON list), ``sources`` (JSON list of endpoints), ``hosts`` (JSON object:
  ``host`` value -> that agent's facts and ``source``), ``catalog`` (JSON list: column, metric, type, labels, unit,
  description), ``rows``, ``gaps``, ``missed_rows``, ``restarts``,
  ``first_timestamp``, ``last_timestamp`` and ``layout`` (this layout's
  version).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

import pyarrow as pa

from rezolus_core import histogram
from rezolus_core.frame import MetricType

if TYPE_CHECKING:
    from collections.abc import Collection

    from rezolus_core.frame import SeriesSpec

LAYOUT_VERSION = "1"
BUCKETS_SUFFIX = ":buckets"

# Bookkeeping columns, in file order.
TIMESTAMP = "timestamp"
DURATION = "duration"
INSTANCE = "instance"
RESTART = "restart"
MISSED = "missed"
HOST_COLUMN = "host"
BOOKKEEPING = (TIMESTAMP, DURATION, INSTANCE, RESTART, MISSED, HOST_COLUMN)

# Field metadata keys of a series column (every other key is a label).
METRIC = "metric"
METRIC_TYPE = "metric_type"
UNIT = "unit"
DESCRIPTION = "description"
GROUPING_POWER = "grouping_power"
MAX_VALUE_POWER = "max_value_power"
FIELD_KEYS = frozenset({METRIC, METRIC_TYPE, UNIT, DESCRIPTION, GROUPING_POWER, MAX_VALUE_POWER})
METRIC_TYPES = frozenset(t.value for t in MetricType)

# File metadata keys.
SOURCE = "source"
VERSION = "version"
LAYOUT = "layout"
SAMPLING_INTERVAL_MS = "sampling_interval_ms"
INTERVAL_NS = "interval_ns"
HOST = "host"
HOSTNAME = "hostname"
KERNEL = "kernel"
AGENT_VERSION = "agent_version"
INSTANCES = "instances"
SOURCES = "sources"
HOSTS = "hosts"
CATALOG = "catalog"
ROWS = "rows"
GAPS = "gaps"
MISSED_ROWS = "missed_rows"
RESTARTS = "restarts"
FIRST_TIMESTAMP = "first_timestamp"
LAST_TIMESTAMP = "last_timestamp"
DROPPED_BUCKETS = "dropped_buckets"
RECORDER_STARTED = "recorder_started"  # recordings converted from a journal
RECOVERED_TORN_BYTES = "recovered_torn_bytes"  # same, when the journal had a torn tail
KV_ONLY = (CATALOG,)  # stored only in the parquet footer, not in the embedded arrow schema

_ORDERED_LABELS = ("name", "op", "state", "direction")
HIST = histogram.layout()


def package_version() -> str:
    """Return this package's version, written as the file's ``version``."""
    try:
        return version("rezolus-recording")
    except PackageNotFoundError:
        return "0+unknown"


def host_label(hostname: str, source: str, taken: Collection[str] = ()) -> str:
    """The ``host`` value of an agent: its hostname, made unique with ``@HOST:PORT`` if ``taken``.

    An agent that announces no hostname is named by its endpoint (``HOST:PORT``
    of ``tcp://HOST:PORT``, the endpoint itself otherwise).
    """
    where = source.removeprefix("tcp://")
    if not hostname:
        return where
    return hostname if hostname not in taken else f"{hostname}@{where}"


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


def unique_name(spec: SeriesSpec) -> str:
    """Return the collision-free ``/key=value`` column name of a series."""
    inner = ",".join(f"{k}={v}" for k, v in sorted(spec.labels.items()))
    name = f"{spec.name}/{spec.type.value}" + (f"/{inner}" if inner else "")
    return name + BUCKETS_SUFFIX if spec.type is MetricType.HISTOGRAM else name


def arrow_type(kind: MetricType) -> pa.DataType:
    """Return the arrow type of a series column of ``kind``."""
    if kind is MetricType.COUNTER:
        return pa.uint64()
    if kind is MetricType.GAUGE:
        return pa.int64()
    return pa.list_(pa.uint64())


def series_field(name: str, spec: SeriesSpec) -> pa.Field:
    """Return the field of series ``spec`` stored as column ``name``."""
    meta = dict(spec.labels)
    meta.update({METRIC: spec.name, METRIC_TYPE: spec.type.value, UNIT: spec.unit})
    if spec.type is MetricType.HISTOGRAM:
        meta.update({GROUPING_POWER: str(HIST.grouping_power), MAX_VALUE_POWER: str(HIST.max_value_power)})
    return pa.field(name, arrow_type(spec.type), nullable=True, metadata=meta)


def bookkeeping_fields(instance_type: pa.DataType, host_type: pa.DataType) -> list[pa.Field]:
    """Return the bookkeeping fields (the dictionary types of ``instance`` and ``host``)."""
    return [
        pa.field(TIMESTAMP, pa.uint64(), nullable=False, metadata={UNIT: "nanoseconds"}),
        pa.field(DURATION, pa.uint64(), metadata={UNIT: "nanoseconds"}),
        pa.field(INSTANCE, instance_type),
        pa.field(RESTART, pa.bool_(), nullable=False),
        pa.field(MISSED, pa.uint64(), nullable=False, metadata={UNIT: "rows"}),
        pa.field(HOST_COLUMN, host_type),
    ]
