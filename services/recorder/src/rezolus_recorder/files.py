"""Writing parquet files durably: encodings, atomic replacement, directory fsync.

Invariants:
- ``write_table`` never leaves a partial file at its path: it writes a temp
  file in the same directory, fsyncs it, renames it over the path and fsyncs
  the directory; on any failure the temp file is removed.
- Every recording (recorder or hindsight) is written with ``write_options``.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    import pathlib


def write_options(schema: pa.Schema | None = None) -> dict[str, Any]:
    """Return the parquet writer options for a recording with ``schema``.

    Integer columns use DELTA_BINARY_PACKED and histogram buckets
    BYTE_STREAM_SPLIT, both under zstd; dictionaries only for ``instance``.
    (Measured in docs/performance.md; DuckDB, pandas and polars read both.)
    """
    options: dict[str, Any] = {
        "compression": "zstd",
        "compression_level": 3,
        "write_statistics": ["timestamp"],
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


def write_table(table: pa.Table, path: pathlib.Path) -> int:
    """Write ``table`` as zstd parquet at ``path`` atomically; return the bytes written."""
    tmp = temp_path(path)
    try:
        pq.write_table(table, tmp, row_group_size=4096, **write_options(table.schema))
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(path)
    return path.stat().st_size


def temp_path(path: pathlib.Path) -> pathlib.Path:
    """Return the hidden temp file beside ``path`` that is renamed over it when complete."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def fsync_dir(path: pathlib.Path) -> None:
    """Fsync the directory holding ``path`` so a rename or unlink in it is durable."""
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
