import dataclasses
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from rezolus_core import histogram
from rezolus_core.frame import MetricType, SeriesSpec
from rezolus_recording.builder import TableBuilder
from rezolus_recording.layout import column_name
from rezolus_recording.writer import write_table
from support import synth

SEC = 1_000_000_000
T0 = 1_800_000_000 * SEC


def _spec(name, labels, kind=MetricType.COUNTER):
    return SeriesSpec(0, name, kind, labels, "x", "d")


@pytest.mark.parametrize(
    ("name", "labels", "kind", "expected"),
    [
        ("cpu_usage", {"state": "user", "id": "3"}, MetricType.COUNTER, "cpu_usage/user/3"),
        ("softirq", {"kind": "hi", "id": "0"}, MetricType.COUNTER, "softirq/hi/0"),
        ("blockio_latency", {"op": "read"}, MetricType.HISTOGRAM, "blockio_latency/read:buckets"),
        ("memory_free", {}, MetricType.GAUGE, "memory_free"),
        (
            "m",
            {"id": "7", "zeta": "z", "alpha": "a", "direction": "to", "state": "s", "op": "o",
             "name": "/n"},
            MetricType.COUNTER,
            "m//n/o/s/to/a/z/7",
        ),
    ],
)
def test_column_name_follows_the_original_rule(name, labels, kind, expected):
    """Names are metric, then name/op/state/direction, other labels by key, then id."""
    assert column_name(_spec(name, labels, kind)) == expected


def test_table_has_the_original_types_and_metadata():
    """Counters are UInt64, gauges Int64, histograms List<UInt64>, with field and file metadata."""
    builder = TableBuilder(source="tcp://agent:1", interval_ns=SEC, host={"hostname": "h1"})
    cat = synth.catalog()
    for seq in range(3):
        builder.add(synth.delivery(cat, seq, T0 + seq * SEC))
    table = builder.table()
    schema = table.schema
    assert str(schema.field("timestamp").type) == "uint64"
    assert not schema.field("timestamp").nullable
    assert str(schema.field("duration").type) == "uint64"
    assert str(schema.field("cpu_usage/user/1").type) == "uint64"
    assert str(schema.field("memory_free").type) == "int64"
    assert str(schema.field("syscall_latency/read:buckets").type) == "list<item: uint64>"
    meta = {k.decode(): v.decode() for k, v in schema.field("cpu_usage/user/1").metadata.items()}
    assert meta == {
        "state": "user", "id": "1", "metric": "cpu_usage", "metric_type": "counter",
        "unit": "nanoseconds",
    }
    hmeta = schema.field("syscall_latency/read:buckets").metadata
    assert hmeta[b"grouping_power"] == b"3"
    assert hmeta[b"max_value_power"] == b"64"
    file_meta = {k.decode(): v.decode() for k, v in schema.metadata.items()}
    assert file_meta["source"] == "tcp://agent:1"
    assert file_meta["sampling_interval_ms"] == "1000"
    assert file_meta["hostname"] == "h1"
    assert file_meta["kernel"] == synth.HOST["kernel"]
    assert file_meta["rows"] == "3"
    assert file_meta["first_timestamp"] == str(T0)
    assert file_meta["last_timestamp"] == str(T0 + 2 * SEC)
    catalog = json.loads(file_meta["catalog"])
    assert {c["column"] for c in catalog} == set(schema.names) - {
        "timestamp", "duration", "instance", "restart", "missed", "host"
    }
    assert table.column("host").to_pylist() == ["h1"] * 3  # the given hostname names the host
    assert all(c["unit"] and c["description"] for c in catalog)
    assert table.column("duration").to_pylist() == [None, SEC, SEC]
    sid = next(s.id for s in cat.series if column_name(s) == "cpu_usage/user/1")
    assert table.column("cpu_usage/user/1").to_pylist() == [
        synth.counter_value(seq, sid) for seq in range(3)
    ]


def test_histogram_column_holds_all_496_cumulative_buckets():
    """Each histogram cell decodes to the dense cumulative buckets the frame carried."""
    builder = TableBuilder(source="s", interval_ns=SEC)
    cat = synth.catalog()
    frames = [synth.frame(cat, seq, T0 + seq * SEC) for seq in range(2)]
    for seq in range(2):
        builder.add(synth.delivery(cat, seq, T0 + seq * SEC))
    cells = builder.table().column("syscall_latency/read:buckets").to_pylist()
    for cell, frame in zip(cells, frames, strict=True):
        assert len(cell) == 496
        hist = frame.histograms[0]
        expected = histogram.to_dense(hist.indices, hist.counts)
        assert np.array_equal(np.array(cell, dtype=np.uint64), expected)
    window, reset = histogram.delta(
        np.array(cells[1], dtype=np.uint64), np.array(cells[0], dtype=np.uint64)
    )
    assert not reset
    assert histogram.total(window) == sum(
        int(a) - int(b)
        for a, b in zip(frames[1].histograms[0].counts, frames[0].histograms[0].counts, strict=True)
    )


def test_series_appearing_later_are_null_before():
    """A cgroup that appears mid-recording is null in the earlier rows, never zero."""
    builder = TableBuilder(source="s", interval_ns=SEC)
    small, big = synth.catalog(), synth.catalog(extra_cgroups=1)
    builder.add(synth.delivery(small, 0, T0))
    builder.add(synth.delivery(big, 1, T0 + SEC))
    column = builder.table().column("cgroup_cpu_usage//svc/c0/user").to_pylist()
    assert column[0] is None
    assert column[1] is not None


def test_restart_and_gap_are_marked_and_never_diffed():
    """A new agent instance marks a restart row with a null duration; gaps count missed rows."""
    builder = TableBuilder(source="s", interval_ns=SEC)
    first, second = synth.catalog("a"), synth.catalog("b")
    builder.add(synth.delivery(first, 10, T0))
    builder.mark_gap(2)
    builder.add(synth.delivery(first, 13, T0 + 3 * SEC))
    builder.add(synth.delivery(second, 0, T0 + 4 * SEC, restarted=True))
    builder.add(synth.delivery(second, 1, T0 + 5 * SEC))
    table = builder.table()
    assert table.column("restart").to_pylist() == [False, False, True, False]
    assert table.column("missed").to_pylist() == [0, 2, 0, 0]
    assert table.column("duration").to_pylist() == [None, 3 * SEC, None, SEC]
    assert table.column("instance").to_pylist() == ["a", "a", "b", "b"]
    meta = table.schema.metadata
    assert (meta[b"restarts"], meta[b"gaps"], meta[b"missed_rows"]) == (b"1", b"1", b"2")
    assert json.loads(meta[b"instances"]) == ["a", "b"]


def test_clashing_column_names_stay_distinct():
    """Two series that the naming rule maps to one name get distinct columns."""
    builder = TableBuilder(source="s", interval_ns=SEC)
    a = _spec("m", {"kind": "x"})
    b = SeriesSpec(1, "m", MetricType.COUNTER, {"reason": "x"}, "x", "d")
    cat = synth.catalog()
    cat = type(cat)(cat.instance, (*cat.series, type(a)(cat.version, a.name, a.type, a.labels,
                    a.unit, a.description), type(b)(cat.version + 1, b.name, b.type, b.labels,
                    b.unit, b.description)), cat.host)
    builder.declare(cat)
    names = builder.table().schema.names
    assert "m/x" in names
    assert "m/counter/reason=x" in names


def test_take_streams_the_same_rows_as_one_table():
    """Rows taken in chunks concatenate to the table built at once, with the same totals."""
    cat = synth.catalog()
    whole = TableBuilder(source="s", interval_ns=SEC)
    chunked = TableBuilder(source="s", interval_ns=SEC)
    chunked.declare(cat)
    parts = []
    for seq in range(7):
        whole.add(synth.delivery(cat, seq, T0 + seq * SEC))
        chunked.add(synth.delivery(cat, seq, T0 + seq * SEC))
        if seq % 3 == 2:
            parts.append(chunked.take())
    parts.append(chunked.take())
    expected = whole.table()
    for column in expected.schema.names:
        got = [v for part in parts for v in part.column(column).to_pylist()]
        assert got == expected.column(column).to_pylist(), column
    assert chunked.file_metadata()["rows"] == "7"
    assert chunked.rows == 7


def test_write_table_is_atomic_and_compressed(tmp_path):
    """The file appears complete, buckets in zstd and every other column in LZ4; no temp file is left behind."""
    builder = TableBuilder(source="s", interval_ns=SEC)
    cat = synth.catalog()
    builder.add(synth.delivery(cat, 0, T0))
    target = tmp_path / "out.parquet"
    target.write_bytes(b"old")
    written = write_table(builder.table(), target)
    assert written == target.stat().st_size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet"]
    meta = pq.read_metadata(target)
    columns = {
        meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i)
        for i in range(meta.num_columns)
    }
    buckets = {path for path in columns if path.endswith(".list.element")}
    assert buckets
    assert {columns[path].compression for path in buckets} == {"ZSTD"}
    assert {c.compression for path, c in columns.items() if path not in buckets} == {"LZ4"}  # LZ4_RAW in the file
    assert "DELTA_BINARY_PACKED" in columns["cpu_usage/user/0"].encodings
    assert "BYTE_STREAM_SPLIT" in columns["syscall_latency/read:buckets.list.element"].encodings
    assert pq.read_table(target).num_rows == 1


def test_out_of_range_histogram_buckets_are_counted_not_written():
    """A bucket index beyond the 496-bucket layout is dropped and counted in the metadata."""
    builder = TableBuilder(source="s", interval_ns=SEC)
    cat = synth.catalog()
    delivery = synth.delivery(cat, 0, T0)
    hist = delivery.frame.histograms[0]
    indices = np.array([1, 600], dtype=np.uint16)
    bad = type(hist)(hist.id, indices, np.array([5, 9], dtype=np.uint64))
    frame = delivery.frame.with_histograms((bad,))
    builder.add(dataclasses.replace(delivery, frame=frame))
    table = builder.table()
    assert table.column("syscall_latency/read:buckets").to_pylist()[0][1] == 5
    assert table.schema.metadata[b"dropped_buckets"] == b"1"
