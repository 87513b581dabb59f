"""Snapshot content: the rows equal the frames published in the range, value for value."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow.parquet as pq
from hindsight_synth import MS, T0, Feeder, SyntheticAgent, counter_value, make

from rezolus_core.frame import iter_values
from rezolus_hindsight import snapshot
from rezolus_recording.builder import TableBuilder
from rezolus_recording.grid import Grid

if TYPE_CHECKING:
    from pathlib import Path

    from rezolus_core.tracker import Delivery

S = 1_000_000_000


def test_rows_equal_the_published_frames_in_the_range(tmp_path: Path) -> None:
    """Each row is the grid's frame of its slot, with the agent's counter, gauge and buckets."""
    buffer = make(tmp_path / "buf", interval_ns=500 * MS, duration_ns=600 * S, segment_span_ns=7 * S)
    feeder = Feeder(buffer, SyntheticAgent(interval_ns=100 * MS))
    grid = Grid(500 * MS)
    published = []
    for i in range(1200):
        ts = T0 + 17 * MS + i * 100 * MS
        if grid.offer(ts, 100 * MS, seq=feeder.agent.seq + 1, instance=feeder.agent.instance) is not None:
            published.append((ts, feeder.agent.seq + 1))
        feeder.feed(ts)
    start, end = T0 + 20 * S + 3 * MS, T0 + 80 * S + 250 * MS
    want = [(ts, seq) for ts, seq in published if start <= ts <= end]

    selection = buffer.select(start, end)
    assert selection.rows == len(want)
    result = snapshot.write(selection, tmp_path / "snap.parquet", source="synthetic", interval_ns=500 * MS)
    table = pq.read_table(result.path)
    assert result.rows == table.num_rows == len(want)
    assert (result.start_ns, result.end_ns) == (want[0][0], want[-1][0])
    assert table.column("timestamp").to_pylist() == [ts for ts, _ in want]
    assert table.column("test_operations").to_pylist() == [counter_value(seq) for _, seq in want]
    assert table.column("test_bytes/read").to_pylist() == [counter_value(seq, 1) for _, seq in want]
    assert table.column("test_level").to_pylist() == [-seq - 1 for _, seq in want]
    buckets = table.column("test_latency:buckets").to_pylist()
    for row, (_, seq) in zip(buckets, want, strict=True):
        assert len(row) == 496
        assert (row[3], row[40], row[63]) == (seq + 1, 2 * seq + 1, 5 * seq + 2)
        assert sum(row) == 8 * seq + 4
    assert set(table.column("missed").to_pylist()) == {0}
    assert table.schema.metadata[b"source"] == b"synthetic"
    buffer.close()


def test_snapshot_table_equals_a_recorder_table_of_the_same_frames(tmp_path: Path) -> None:
    """Built from the buffer or directly from the delivered frames, the table is the same."""
    buffer = make(tmp_path / "buf", interval_ns=S, duration_ns=120 * S, segment_span_ns=9 * S)
    feeder = Feeder(buffer, SyntheticAgent(interval_ns=250 * MS, padding=20))
    deliveries: list[Delivery] = []
    original_ingest = buffer.ingest

    def spy(delivery: Delivery, payload: bytes, catalog: bytes) -> bool:
        kept = original_ingest(delivery, payload, catalog)
        if kept:
            deliveries.append(delivery)
        return kept

    buffer.ingest = spy  # type: ignore[method-assign]
    for i in range(400):
        feeder.feed(T0 + i * 250 * MS)
    reference = TableBuilder(source="synthetic", interval_ns=S)
    for delivery in deliveries:
        reference.add(delivery)
    ours = snapshot.build_table(buffer.select(0, 2**63 - 1), source="synthetic", interval_ns=S)
    expected = reference.table()
    assert ours.schema.names == expected.schema.names
    for name in expected.schema.names:
        if name != "version":
            assert ours.column(name).to_pylist() == expected.column(name).to_pylist(), name
    values = {spec.name for spec, _ in iter_values(deliveries[0].frame, deliveries[0].catalog)}
    assert "test_pad" in values
    buffer.close()


def test_a_snapshot_written_in_chunks_equals_the_whole_table(tmp_path: Path) -> None:
    """Streaming thousands of rows in chunks gives the same table and complete file metadata."""
    buffer = make(tmp_path / "buf", interval_ns=100 * MS, duration_ns=3600 * S, segment_span_ns=30 * S)
    feeder = Feeder(buffer, SyntheticAgent(interval_ns=100 * MS))
    rows = 3 * snapshot.CHUNK_ROWS + 17
    for i in range(rows):
        feeder.feed(T0 + i * 100 * MS)
    whole = snapshot.build_table(buffer.select(0, 2**63 - 1), source="synthetic", interval_ns=100 * MS)
    selection = buffer.select(0, 2**63 - 1)
    result = snapshot.write(selection, tmp_path / "s.parquet", source="synthetic", interval_ns=100 * MS)
    written = pq.read_table(result.path)
    assert written.num_rows == whole.num_rows == rows == result.rows
    assert written.schema.names == whole.schema.names
    for name in whole.schema.names:
        assert written.column(name).to_pylist() == whole.column(name).to_pylist(), name
    meta = pq.read_metadata(result.path).metadata
    assert meta[b"rows"] == str(rows).encode()
    assert meta[b"first_timestamp"] == str(T0).encode()
    assert meta[b"last_timestamp"] == str(T0 + (rows - 1) * 100 * MS).encode()
    assert pq.ParquetFile(result.path).metadata.num_row_groups >= 3
    assert list(tmp_path.glob(".*tmp")) == []
    buffer.close()
