"""The reader describes what the builder wrote; durable writes appear whole or not at all."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rezolus_core.frame import MetricType
from rezolus_recording import durable, layout, reader
from rezolus_recording.builder import TableBuilder
from rezolus_recording.writer import write_table
from support import synth

SEC = 1_000_000_000
T0 = 1_800_000_000 * SEC


def test_reader_lists_every_series_the_builder_wrote(tmp_path) -> None:
    """Series columns, their labels and types, the metadata and host come back as written."""
    cat = synth.catalog("a", cpus=2)
    builder = TableBuilder(source="s", interval_ns=SEC)
    for seq in range(3):
        builder.add(synth.delivery(cat, seq, T0 + seq * SEC))
    path = tmp_path / "r.parquet"
    write_table(builder.table(), path)
    schema = reader.open_recording(path).schema_arrow
    columns = reader.series_columns(schema)
    assert sorted(columns) == sorted(layout.column_name(s) for s in cat.series)
    assert not set(columns) & set(layout.BOOKKEEPING)
    user0 = columns["cpu_usage/user/0"]
    assert (user0.metric, user0.type, user0.unit, user0.labels) == (
        "cpu_usage", "counter", "nanoseconds", {"state": "user", "id": "0"},
    )
    hist = next(c for c in columns.values() if c.type == MetricType.HISTOGRAM.value)
    assert hist.layout is not None
    assert hist.layout.buckets == layout.HIST.buckets
    meta = reader.metadata(schema)
    assert layout.CATALOG not in meta
    assert meta[layout.ROWS] == "3"
    assert reader.interval_ns(meta) == SEC
    assert reader.host(meta)["hostname"] == synth.HOST["hostname"]


def test_reader_refuses_files_without_timestamps_and_ignores_foreign_columns(tmp_path) -> None:
    """A parquet file without ``timestamp`` is no recording; columns without series metadata are skipped."""
    bare = tmp_path / "bare.parquet"
    pq.write_table(pa.table({"x": [1]}), bare)
    with pytest.raises(reader.RecordingError, match="timestamp"):
        reader.open_recording(bare)
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"timestamp": pa.array([1], pa.uint64()), "x": [1]}), other)
    schema = reader.open_recording(other).schema_arrow
    assert reader.series_columns(schema) == {}
    assert reader.interval_ns(reader.metadata(schema)) == 0


def test_write_atomic_replaces_whole_and_leaves_no_temp_on_failure(tmp_path, monkeypatch) -> None:
    """The new content replaces the old in one rename; a failed write keeps the old file and no temp."""
    path = tmp_path / "f"
    durable.write_atomic(path, b"old")
    durable.write_atomic(path, b"new")
    assert path.read_bytes() == b"new"

    def broken_fsync(_fd: int) -> None:
        raise OSError(5, "I/O error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="I/O"):
        durable.write_atomic(path, b"lost")
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]
