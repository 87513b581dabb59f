"""Reading a recording's description: open the file, list its series columns, decode its metadata.

Invariants:
- Opening reads only the parquet footer; no column data is read here.
- A field is a series column only when its metadata names a known
  ``metric_type`` (and, for histograms, the column is a list with a valid
  bucket layout); every other field (bookkeeping, foreign columns) is left out.
- Series labels are the field metadata minus ``layout.FIELD_KEYS``.
- Metadata comes back as ``str -> str`` without the large ``catalog`` and
  arrow's own schema key; bad bytes are replaced, never raised.
- Files from other writers (no ``layout``/``interval_ns`` keys, no
  bookkeeping columns but ``timestamp``) are readable: missing keys fall back
  to defaults, never to errors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from rezolus_core import histogram
from rezolus_recording import layout

if TYPE_CHECKING:
    import pathlib

_ARROW_SCHEMA = "ARROW:schema"


class RecordingError(ValueError):
    """The file is not a readable recording; the message says why."""


@dataclass(frozen=True)
class Column:
    """One series column of the recording, described by its field metadata."""

    name: str
    metric: str
    type: str
    unit: str
    labels: dict[str, str]
    layout: histogram.Layout | None = None


def series_column(f: pa.Field) -> Column | None:
    """Describe ``f`` as a series column, or None when it is not one."""
    meta = {k.decode(): v.decode() for k, v in (f.metadata or {}).items()}
    kind = meta.get(layout.METRIC_TYPE)
    if kind not in layout.METRIC_TYPES:
        return None
    labels = {k: v for k, v in meta.items() if k not in layout.FIELD_KEYS}
    lay = None
    if kind == "histogram":
        if not pa.types.is_list(f.type) and not pa.types.is_large_list(f.type):
            return None
        try:
            lay = histogram.layout(
                int(meta.get(layout.GROUPING_POWER, str(layout.HIST.grouping_power))),
                int(meta.get(layout.MAX_VALUE_POWER, str(layout.HIST.max_value_power))),
            )
        except ValueError:
            return None
    metric = meta.get(layout.METRIC, f.name.split("/")[0])
    return Column(f.name, metric, kind, meta.get(layout.UNIT, ""), labels, lay)


def series_columns(schema: pa.Schema) -> dict[str, Column]:
    """Every series column of ``schema``, by name, in file order."""
    return {c.name: c for f in schema if (c := series_column(f)) is not None}


def open_file(path: pathlib.Path, footer: pq.FileMetaData | None = None) -> pq.ParquetFile:
    """Open for many small column-chunk reads: memory-mapped, with coalesced pre-buffered reads.

    ``footer``: the file's metadata already parsed by another handle (not parsed again).
    """
    return pq.ParquetFile(path, memory_map=True, pre_buffer=True, metadata=footer)


def open_recording(path: pathlib.Path) -> pq.ParquetFile:
    """Open ``path`` and check it is a recording (it has a ``timestamp`` column)."""
    try:
        handle = open_file(path)
    except (OSError, pa.ArrowException) as exc:
        raise RecordingError(f"{path}: not a readable parquet file ({exc})") from exc
    if layout.TIMESTAMP not in handle.schema_arrow.names:
        raise RecordingError(f"{path}: no '{layout.TIMESTAMP}' column; not a Rezolus recording")
    return handle


def metadata(schema: pa.Schema) -> dict[str, str]:
    """The file metadata as text, without the ``catalog`` and arrow's schema key."""
    raw = {k.decode(): v.decode(errors="replace") for k, v in (schema.metadata or {}).items()}
    return {k: v for k, v in raw.items() if k not in {*layout.KV_ONLY, _ARROW_SCHEMA}}


def interval_ns(meta: dict[str, str]) -> int:
    """The sampling interval the metadata states (``interval_ns``, else ``sampling_interval_ms``), or 0."""
    try:
        value = int(meta.get(layout.INTERVAL_NS, "0"))
        return value or int(meta.get(layout.SAMPLING_INTERVAL_MS, "0")) * 1_000_000
    except ValueError:
        return 0


def host(meta: dict[str, str]) -> dict[str, str]:
    """Host facts from the metadata (JSON ``host`` key), if any."""
    try:
        value = json.loads(meta.get(layout.HOST, "{}"))
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


__all__ = [
    "Column", "RecordingError", "host", "interval_ns", "metadata", "open_file", "open_recording",
    "series_column", "series_columns",
]
