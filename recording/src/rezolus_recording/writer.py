"""Writing recordings: parquet encodings and whole-or-nothing files.

Invariants:
- ``write_table`` and ``RecordingWriter`` never leave a partial file at the
  path: they write ``durable.temp_path``, fsync it, rename it over the path
  and fsync the directory (``durable.sync_dir``); on failure the temp file
  is removed.
- Every recording (recorder or hindsight) is written with ``write_options``.
- The ``catalog`` metadata is stored once, in the parquet footer's key-value
  metadata (DuckDB ``parquet_kv_metadata``, ``pq.read_metadata().metadata``,
  ``pl.read_parquet_metadata``); every other key is also in the arrow schema.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from rezolus_recording.durable import sync_dir, temp_path
from rezolus_recording.layout import KV_ONLY, TIMESTAMP

if TYPE_CHECKING:
    import pathlib

ROW_GROUP_ROWS = 4096


def write_options(schema: pa.Schema | None = None) -> dict[str, Any]:
    """Return the parquet writer options for a recording with ``schema``.

    Integer columns use DELTA_BINARY_PACKED and histogram buckets
    BYTE_STREAM_SPLIT, both under zstd; dictionaries only for ``instance``.
    (Measured in docs/performance.md; DuckDB, pandas and polars read both.)
    """
    options: dict[str, Any] = {
        "compression": "zstd",
        "compression_level": 3,
        "write_statistics": [TIMESTAMP],
        "data_page_size": 8 << 20,
    }
    if schema is not None:
        encodings = {}
        for item in schema:
            if pa.types.is_list(item.type):
                encodings[f"{item.name}.list.element"] = "BYTE_STREAM_SPLIT"
            elif pa.types.is_integer(item.type):
                encodings[item.name] = "DELTA_BINARY_PACKED"
        options["column_encoding"] = encodings
        options["use_dictionary"] = [
            item.name for item in schema if pa.types.is_dictionary(item.type)
        ]
    return options


class RecordingWriter:
    """Writes one recording chunk by chunk into a temp file and renames it into place.

    The ``KV_ONLY`` metadata keys (the large ``catalog``) go only into the
    parquet footer's key-value metadata, not into the embedded arrow schema,
    so the footer does not carry them twice.
    """

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self._tmp = temp_path(path)
        self._writer: pq.ParquetWriter | None = None
        self._kv: dict[str, str] = {}

    def write(self, table: pa.Table, metadata: dict[str, str] | None = None) -> None:
        """Append ``table`` as row groups; ``metadata`` replaces the file metadata."""
        meta = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in (metadata if metadata is not None else table.schema.metadata or {}).items()
        }
        self._kv = {k: meta.pop(k) for k in KV_ONLY if k in meta}
        table = table.replace_schema_metadata(meta)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._tmp, table.schema, **write_options(table.schema))
        self._writer.write_table(table, row_group_size=ROW_GROUP_ROWS)

    def commit(self) -> int:
        """Finish the file, make it durable and rename it over the path; return its size."""
        if self._writer is None:
            raise ValueError("nothing was written")
        try:
            if self._kv:
                self._writer.add_key_value_metadata(self._kv)
            self._writer.close()
            with self._tmp.open("rb") as handle:
                os.fsync(handle.fileno())
            self._tmp.replace(self.path)
        except BaseException:
            self.abort()
            raise
        sync_dir(self.path.parent)
        return self.path.stat().st_size

    def abort(self) -> None:
        """Drop the temp file (after a failure)."""
        if self._writer is not None:
            with contextlib.suppress(OSError):
                self._writer.close()
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()


def write_table(table: pa.Table, path: pathlib.Path) -> int:
    """Write ``table`` as zstd parquet at ``path`` atomically; return the bytes written."""
    writer = RecordingWriter(path)
    try:
        writer.write(table)
    except BaseException:
        writer.abort()
        raise
    return writer.commit()
