"""Writing recordings: parquet encodings and whole-or-nothing files.

Invariants:
- A streamed recording (recorder conversion, hindsight snapshot) holds one
  row group in memory (two with ``overlap``, below): it ends after ``STREAM_ROWS`` rows or once its dense
  histogram buckets (496 * 8 bytes per histogram per row) reach
  ``ROW_GROUP_BYTES``, whichever comes first.  Every row group adds about
  120 bytes per column to the footer, so smaller groups cost file size.
- ``write_table`` and ``RecordingWriter`` never leave a partial file at the
  path: they write ``durable.temp_path``, fsync it, rename it over the path
  and fsync the directory (``durable.sync_dir``); on failure the temp file
  is removed.
- Every recording (recorder or hindsight) is written with ``write_options``.
- ``pyarrow.parquet`` (about 5 MB resident) is imported when the first file
  is written, not with this module, so a service that has not written a file
  yet does not hold it.
- A ``RecordingWriter(overlap=True)`` encodes each row group in a thread of
  its own while the caller builds the next one (pyarrow releases the GIL), so
  it holds two row groups in memory, never more: ``write`` first waits for
  the previous row group to be written, and a failure there is raised by the
  next ``write`` or by ``commit``.
- The ``catalog`` metadata is stored once, in the parquet footer's key-value
  metadata (DuckDB ``parquet_kv_metadata``, ``pq.read_metadata().metadata``,
  ``pl.read_parquet_metadata``); every other key is also in the arrow schema.
"""

from __future__ import annotations

import base64
import contextlib
import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from rezolus_recording.durable import sync_dir, temp_path
from rezolus_recording.layout import KV_ONLY, TIMESTAMP

if TYPE_CHECKING:
    import pathlib
    from collections.abc import Mapping

    import pyarrow.parquet as pq

ROW_GROUP_ROWS = 4096
STREAM_ROWS = 1024  # rows of a streamed row group at most
ROW_GROUP_BYTES = 32 << 20  # dense histogram data of a streamed row group (TableBuilder.pending_bytes)
ARROW_SCHEMA = "ARROW:schema"  # where pyarrow keeps the arrow schema in a parquet footer


def write_options(schema: pa.Schema | None = None) -> dict[str, Any]:
    """Return the parquet writer options for a recording with ``schema``.

    Integer columns use DELTA_BINARY_PACKED and histogram buckets
    BYTE_STREAM_SPLIT; the buckets are compressed with zstd (level 3), every
    other column with LZ4 (parquet's LZ4_RAW): a column chunk of a few
    hundred scalars compresses as well with LZ4, without the cost of a zstd
    context per chunk.  Dictionaries only for ``instance``.  (Measured in
    docs/performance-history.md, "Snapshot writer"; DuckDB, pandas and
    polars read both.)  Without a
    schema, every column is zstd.
    """
    options: dict[str, Any] = {
        "compression": "zstd",
        "compression_level": 3,
        "write_statistics": [TIMESTAMP],
        "data_page_size": 8 << 20,
    }
    if schema is not None:
        encodings, codecs, levels = {}, {}, {}
        for item in schema:
            if pa.types.is_list(item.type):
                leaf = f"{item.name}.list.element"
                encodings[leaf] = "BYTE_STREAM_SPLIT"
                codecs[leaf], levels[leaf] = "zstd", 3
                continue
            if pa.types.is_integer(item.type):
                encodings[item.name] = "DELTA_BINARY_PACKED"
            codecs[item.name] = "lz4"
        options["column_encoding"] = encodings
        options["compression"] = codecs
        options["compression_level"] = levels
        options["use_dictionary"] = [
            item.name for item in schema if pa.types.is_dictionary(item.type)
        ]
    return options


class RecordingWriter:
    """Writes one recording row group by row group into a temp file and renames it into place.

    Every ``write`` must have the schema of the first (declare the catalogs
    first).  The file metadata is given to ``commit``, when every row is
    known: the parquet footer is written last, so nothing has to be counted
    in a pass of its own.  pyarrow is told not to embed the arrow schema when
    the file opens; ``commit`` embeds it (``ARROW:schema``, what pyarrow
    would have written) with the final metadata.  The ``KV_ONLY`` keys (the
    large ``catalog``) go only into the parquet footer's key-value metadata,
    not into the embedded arrow schema, so the footer does not carry them twice.
    """

    def __init__(self, path: pathlib.Path, *, overlap: bool = False) -> None:
        self.path = path
        self._tmp = temp_path(path)
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="parquet") if overlap else None
        self._pending: Future[None] | None = None

    def write(self, table: pa.Table) -> None:
        """Append ``table`` as one row group (its schema metadata is ignored: see ``commit``)."""
        if self._writer is None:
            import pyarrow.parquet as pq  # noqa: PLC0415 - loaded by the first file written, not by importing

            self._schema = table.schema
            bare = table.schema.remove_metadata()
            self._writer = pq.ParquetWriter(self._tmp, bare, store_schema=False, **write_options(bare))
        bare_table = table.replace_schema_metadata(None)
        if self._pool is None:
            self._writer.write_table(bare_table, row_group_size=max(1, table.num_rows))
            return
        self._wait()
        self._pending = self._pool.submit(self._writer.write_table, bare_table, max(1, table.num_rows))

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def commit(self, metadata: Mapping[str, str] | None = None) -> int:
        """Finish the file with ``metadata`` (default: the first table's); return its size.

        The file is made durable and renamed over the path.
        """
        if self._writer is None or self._schema is None:
            raise ValueError("nothing was written")
        if metadata is None:
            meta = {_text(k): _text(v) for k, v in (self._schema.metadata or {}).items()}
        else:
            meta = dict(metadata)
        embedded = self._schema.with_metadata({k: v for k, v in meta.items() if k not in KV_ONLY})
        try:
            self._wait()
            self._stop()
            self._writer.add_key_value_metadata(
                {ARROW_SCHEMA: base64.b64encode(embedded.serialize()).decode(), **meta}
            )
            self._writer.close()
            with self._tmp.open("rb") as handle:
                os.fsync(handle.fileno())
            self._tmp.replace(self.path)
        except BaseException:
            self.abort()
            raise
        sync_dir(self.path.parent)
        return self.path.stat().st_size

    def _stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def abort(self) -> None:
        """Drop the temp file (after a failure)."""
        with contextlib.suppress(Exception):
            self._wait()
        self._stop()
        if self._writer is not None:
            with contextlib.suppress(OSError):
                self._writer.close()
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()


def _text(value: bytes) -> str:
    return value.decode()


def write_table(table: pa.Table, path: pathlib.Path) -> int:
    """Write ``table`` as zstd parquet at ``path`` atomically; return the bytes written."""
    writer = RecordingWriter(path)
    try:
        for start in range(0, max(1, table.num_rows), ROW_GROUP_ROWS):
            writer.write(table.slice(start, ROW_GROUP_ROWS))
    except BaseException:
        writer.abort()
        raise
    return writer.commit()
