"""Histogram columns built in one scatter per chunk hold exactly each frame's buckets, else null."""

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rezolus_core.frame import Catalog, HistogramValue, MetricType, SeriesSpec
from rezolus_core.tracker import Delivery
from rezolus_recording.builder import TableBuilder
from support import synth

SEC = 1_000_000_000
T0 = 1_800_000_000 * SEC
WIDTH = 496


def _catalog(histograms: int) -> Catalog:
    base = synth.catalog()
    extra = tuple(
        SeriesSpec(base.version + i, "test_latency", MetricType.HISTOGRAM, {"op": f"o{i}"}, "nanoseconds", "t")
        for i in range(histograms)
    )
    return Catalog(base.instance, (*base.series, *extra), base.host)


def _random_histogram(rng: np.random.Generator, sid: int) -> HistogramValue:
    size = int(rng.integers(0, 40))
    indices = np.sort(rng.choice(WIDTH + 20, size=size, replace=False)).astype(np.uint16)
    return HistogramValue(sid, indices, rng.integers(0, 2**63, size=size, dtype=np.uint64))


def _dense(hist: HistogramValue) -> list[int]:
    cell = [0] * WIDTH
    for index, count in zip(hist.indices.tolist(), hist.counts.tolist(), strict=True):
        if index < WIDTH:
            cell[index] = count
    return cell


def test_random_frames_give_each_cell_its_buckets_or_null_and_count_dropped_ones():
    """Random subsets of histograms per row (out-of-layout indices included) against a plain-Python expectation."""
    rng = np.random.default_rng(7)
    cat = _catalog(6)
    hist_ids = [s.id for s in cat.series if s.type is MetricType.HISTOGRAM]
    builder = TableBuilder(source="s", interval_ns=SEC)
    builder.declare(cat)
    expected: dict[int, list[list[int] | None]] = {sid: [] for sid in hist_ids}
    dropped = 0
    parts = []
    for seq in range(23):
        chosen = [sid for sid in hist_ids if rng.random() < 0.6]
        hists = tuple(_random_histogram(rng, sid) for sid in rng.permutation(chosen).tolist())
        frame = synth.frame(cat, seq, T0 + seq * SEC).with_histograms(hists)
        builder.add(Delivery(frame, cat, 0, restarted=False))
        by_id = {h.id: h for h in hists}
        for sid in hist_ids:
            expected[sid].append(_dense(by_id[sid]) if sid in by_id else None)
        dropped += sum(int((h.indices >= WIDTH).sum()) for h in hists)
        if seq % 9 == 8:
            parts.append(builder.take())
    parts.append(builder.take())
    table = pa.concat_tables(parts)
    table.validate(full=True)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    assert pq.read_table(pa.BufferReader(sink.getvalue())).equals(table)
    names = {s.id: n for s in cat.series for n in table.schema.names if n.endswith(":buckets")
             and table.schema.field(n).metadata[b"metric"] == s.name.encode()
             and table.schema.field(n).metadata.get(b"op", b"") == s.labels.get("op", "").encode()}
    assert sorted(names) == sorted(hist_ids)
    for sid in hist_ids:
        assert table.column(names[sid]).to_pylist() == expected[sid], sid
    assert builder.file_metadata()["dropped_buckets"] == str(dropped)
    assert dropped > 0
    assert any(v is None for cells in expected.values() for v in cells)


def test_a_column_given_twice_in_one_frame_keeps_the_last():
    """Two catalog series with one identity share a column; the frame's later histogram wins."""
    base = synth.catalog()
    twin = next(s for s in base.series if s.type is MetricType.HISTOGRAM)
    copy = dataclasses.replace(twin, id=base.version)
    cat = Catalog(base.instance, (*base.series, copy), base.host)
    first = HistogramValue(twin.id, np.array([1, 2], np.uint16), np.array([10, 20], np.uint64))
    second = HistogramValue(copy.id, np.array([3], np.uint16), np.array([30], np.uint64))
    frame = synth.frame(cat, 0, T0).with_histograms((first, second))
    builder = TableBuilder(source="s", interval_ns=SEC)
    builder.add(Delivery(frame, cat, 0, restarted=False))
    cell = builder.table().column("syscall_latency/read:buckets").to_pylist()[0]
    assert cell == _dense(second)
