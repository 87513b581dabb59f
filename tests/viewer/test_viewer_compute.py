"""Rates, gauges, percentiles, heatmaps and downsampling behind the viewer's API, checked against raw rows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import viewer_synth as synth
from viewer_synth import GAP_ROW, RESTART_ROW

from rezolus_core import histogram
from rezolus_core.tracker import Delivery
from rezolus_recording.builder import TableBuilder
from rezolus_recording.writer import write_table
from rezolus_viewer import compute, dashboard, query
from rezolus_viewer import recording as recording_mod
from rezolus_viewer.recording import Recording


def raw(path, column):
    """A column straight from the parquet file, as Python values (None where null)."""
    return pq.read_table(path, columns=[column]).column(0).to_pylist()


def chart(kind, columns):
    """A one-series line chart built by hand."""
    return dashboard.Chart("test", "test", "line", "x", (dashboard.Series("s", kind, columns),))


def test_counter_rate_per_row_matches_raw_deltas_and_nulls_gap_and_restart(recording):
    """Unbinned rates equal (v[r] - v[r-1]) / dt from the raw file; the gap row and the restart row are null."""
    rec = Recording(recording)
    col = "syscall/read"
    out = query.evaluate(rec, chart(kind="rate", columns=(col,)), rec.start_ns, rec.end_ns, 4000)
    values, ts = raw(recording, col), raw(recording, "timestamp")
    assert out["step_rows"] == 1
    assert len(out["x"]) == len(values) - 1
    got = out["series"][0]["values"]
    for r in range(1, len(values)):
        expected = (values[r] - values[r - 1]) / ((ts[r] - ts[r - 1]) / 1e9)
        if r in {GAP_ROW, RESTART_ROW}:
            assert got[r - 1] is None
        else:
            assert got[r - 1] == pytest.approx(expected, rel=1e-6)


def test_binned_rate_is_edge_delta_over_time_and_null_when_a_break_is_inside(recording):
    """Downsampled rates are (v[e1] - v[e0]) / dt over each bin; bins holding the gap or restart are null."""
    rec = Recording(recording)
    col = "network_bytes/receive"
    out = query.evaluate(rec, chart(kind="rate", columns=(col,)), rec.start_ns, rec.end_ns, 50)
    step = out["step_rows"]
    assert step > 1
    values, ts = raw(recording, col), raw(recording, "timestamp")
    got = out["series"][0]["values"]
    nulls = 0
    for j, rate in enumerate(got):
        e0, e1 = j * step, min((j + 1) * step, len(values) - 1)
        if e0 < GAP_ROW <= e1 or e0 < RESTART_ROW <= e1:
            assert rate is None
            nulls += 1
            continue
        assert rate == pytest.approx((values[e1] - values[e0]) / ((ts[e1] - ts[e0]) / 1e9), rel=1e-6)
    assert nulls == 2


@pytest.mark.parametrize("seed", range(20))
def test_in_bins_marks_a_bin_exactly_when_a_flagged_step_lies_in_it(seed):
    """Bin j is flagged iff some flagged step r has e_j < r <= e_j+1 (flags before, between and after the edges)."""
    rng = np.random.default_rng(seed)
    flags = rng.random(300) < rng.choice([0.0, 0.01, 0.2, 1.0])
    edges = np.sort(rng.choice(300, size=rng.integers(0, 40), replace=seed % 2 == 0)).astype(np.intp)
    expected = [bool(flags[edges[j] + 1 : edges[j + 1] + 1].any()) for j in range(len(edges) - 1)]
    assert compute.in_bins(flags, edges).tolist() == expected


@pytest.mark.parametrize("null_range", [0, 2])
def test_list_rows_are_flatten_of_the_present_rows(null_range):
    """Rows of a list column as a matrix, as ``flatten`` gives them, also when a null slot spans values."""
    offsets = pa.array([0, 2, 2 + null_range, 4 + null_range, 6 + null_range], pa.int32())
    values = pa.array(range(1, 7 + null_range), pa.uint64())
    column = pa.ListArray.from_arrays(offsets, values, mask=pa.array([False, True, False, False]))
    present = np.array([True, False, True, True])
    expected = np.array(column.flatten().to_pylist(), dtype=np.uint64).reshape(-1, 2)
    assert recording_mod.list_rows(column, present, 2).tolist() == expected.tolist()
    assert recording_mod.list_rows(column, present, 3) is None


def test_counter_going_down_without_restart_flag_is_null_not_a_spike(tmp_path):
    """A counter that drops between rows of one instance gets a null rate at that step, and in its bin."""
    cat = synth.plan_catalog("solo", synth.Plan(rows=0, cpus=2, cgroups=0))
    agent = synth.agent(cat, 1_000_000_000)
    builder = TableBuilder(source="t", interval_ns=1_000_000_000)
    target = next(s.id for s in cat.series if s.name == "syscall" and s.labels["op"] == "read")
    for seq in range(1, 41):
        if seq == 20:
            agent.values.totals[target] = 5
        builder.add(Delivery(agent.frame(seq, synth.START_NS + seq * 10**9), cat, 0, restarted=False))
    path = tmp_path / "drop.parquet"
    write_table(builder.table(), path)
    rec = Recording(path)
    spec = chart(kind="rate", columns=("syscall/read",))
    per_row = query.evaluate(rec, spec, rec.start_ns, rec.end_ns, 1000)["series"][0]["values"]
    assert per_row[18] is None
    assert all(v is not None and v > 0 for i, v in enumerate(per_row) if i != 18)
    binned = query.evaluate(rec, spec, rec.start_ns, rec.end_ns, 4)
    assert binned["step_rows"] == 10
    assert [v is None for v in binned["series"][0]["values"]] == [False, True, False, False]


def test_gauge_mean_is_the_mean_of_the_rows_in_each_bin(recording):
    """Downsampled gauges are the mean of the bin's rows (excluding the first edge)."""
    rec = Recording(recording)
    col = "memory_free"
    out = query.evaluate(rec, chart(kind="gauge", columns=(col,)), rec.start_ns, rec.start_ns + 100 * 10**9, 10)
    values = raw(recording, col)
    step = out["step_rows"]
    for j, mean in enumerate(out["series"][0]["values"]):
        rows = values[j * step + 1 : (j + 1) * step + 1]
        assert mean == pytest.approx(sum(rows) / len(rows))


def _expected_percentiles(rows, e0, e1, wanted):
    """rezolus_core.histogram's percentiles of rows[e1] - rows[e0] (rows: a buckets column from ``raw``)."""
    newer, older = np.array(rows[e1], dtype=np.uint64), np.array(rows[e0], dtype=np.uint64)
    diff, reset = histogram.delta(newer, older)
    assert not reset
    return histogram.percentiles(diff, wanted)


@pytest.mark.parametrize("points", [4000, 40])
def test_histogram_percentiles_match_the_histogram_library(recording, points):
    """p50/p99/p99.9 per bin equal rezolus_core.histogram on the raw cumulative rows, unbinned and binned."""
    rec = Recording(recording)
    col = "syscall_latency/write:buckets"
    spec = dashboard.Chart("h", "h", "heatmap", "ns", (dashboard.Series("h", "histogram", (col,)),))
    out = query.evaluate(rec, spec, rec.start_ns, rec.end_ns, points)
    step = out["step_rows"]
    lines = {s["label"]: s["values"] for s in out["series"]}
    assert set(lines) == {"p50", "p99", "p99.9"}
    checked = 0
    rows = raw(recording, col)
    for j in range(len(out["x"])):
        e0, e1 = j * step, min((j + 1) * step, rec.rows - 1)
        if e0 < GAP_ROW <= e1 or e0 < RESTART_ROW <= e1:
            assert lines["p50"][j] is None
            assert out["heatmap"]["rates"][j] is None
            continue
        expected = _expected_percentiles(rows, e0, e1, dashboard.PERCENTILES)
        assert [lines[k][j] for k in ("p50", "p99", "p99.9")] == expected
        checked += 1
    assert checked >= len(out["x"]) - 2


def test_heatmap_rows_are_the_downsampled_delta_per_second(recording):
    """Heatmap cells equal histogram.downsample of the bin's delta, divided by the bin's duration."""
    rec = Recording(recording)
    cols = tuple(c for c in rec.columns if c.startswith("syscall_latency/"))
    end = rec.start_ns + 60 * 10**9
    bins = compute.make_bins(rec.timestamps, rec.breaks, rec.start_ns, end, points=6, stride=rec.stride)
    deltas = compute.histogram_deltas(rec, bins, cols)
    heat = compute.heatmap(deltas, bins.dt_s, histogram.layout(), max_rows=16)
    assert len(heat.lower) <= 16
    assert heat.grouping_power < 3
    src = histogram.layout()
    for j, d in enumerate(deltas):
        assert d is not None
        coarse = histogram.downsample(d, heat.grouping_power, src)
        dst = histogram.layout(heat.grouping_power)
        lo = int(np.searchsorted(dst.lower, heat.lower[0]))
        expected = coarse[lo : lo + len(heat.lower)] / bins.dt_s[j]
        assert heat.rates[j] == pytest.approx(list(expected), rel=1e-3)
        assert sum(heat.rates[j]) * bins.dt_s[j] == pytest.approx(histogram.total(d), rel=1e-3)


def test_histogram_index_with_stride_answers_like_reading_every_row(recording, monkeypatch):
    """An index that keeps every 7th row gives the same percentiles as one that keeps every row."""
    col = "scheduler_runqueue_latency:buckets"
    spec = dashboard.Chart("h", "h", "heatmap", "ns", (dashboard.Series("h", "histogram", (col,)),))
    full = Recording(recording)
    expected = query.evaluate(full, spec, full.start_ns, full.end_ns, 60)
    monkeypatch.setattr(recording_mod, "INDEX_ROWS", 90)
    strided = Recording(recording)
    assert strided.stride == 7
    got = query.evaluate(strided, spec, strided.start_ns, strided.end_ns, 60)
    assert got["step_rows"] % 7 == 0
    assert got["x"][-1] == expected["x"][-1]
    zoomed = query.evaluate(strided, spec, strided.start_ns + 30 * 10**9, strided.start_ns + 90 * 10**9, 1000)
    ref = query.evaluate(full, spec, full.start_ns + 30 * 10**9, full.start_ns + 90 * 10**9, 1000)
    assert zoomed["series"] == ref["series"]
    rows = raw(recording, col)
    for j in range(len(got["x"])):
        e0 = j * got["step_rows"]
        e1 = min(e0 + got["step_rows"], len(rows) - 1)
        if e0 < GAP_ROW <= e1 or e0 < RESTART_ROW <= e1:
            continue
        assert got["series"][1]["values"][j] == _expected_percentiles(rows, e0, e1, [99.0])[0]


def test_top_n_keeps_the_largest_series_by_mean_in_the_range(recording):
    """A top-N chart returns the N series with the largest mean over the range, largest first."""
    rec = Recording(recording)
    dash = dashboard.plan(rec.columns.values())
    spec = dash.charts["containers.cgroup_cpu_usage"]
    out = query.evaluate(rec, spec, rec.start_ns, rec.end_ns, 100)
    assert out["total_series"] == 6
    top = dataclasses.replace(spec, top=3)
    got = query.evaluate(rec, top, rec.start_ns, rec.end_ns, 100)
    def mean(s):
        vals = [v for v in s["values"] if v is not None]
        return sum(vals) / len(vals)
    expected = sorted(out["series"], key=mean, reverse=True)[:3]
    assert [s["label"] for s in got["series"]] == [s["label"] for s in expected]
    assert mean(got["series"][0]) >= mean(got["series"][1]) >= mean(got["series"][2])


def test_cpu_utilisation_is_busy_over_capacity_in_percent(recording):
    """The overview CPU line is 100 * rate(busy states) / rate(all states but guest) from the raw rows."""
    rec = Recording(recording)
    spec = dashboard.plan(rec.columns.values()).charts["overview.cpu"]
    out = query.evaluate(rec, spec, rec.start_ns, rec.start_ns + 50 * 10**9, 4000)
    busy = [c for c in rec.columns if c.startswith("cpu_usage/") and c.split("/")[1] not in {"idle", "iowait"}]
    every = [c for c in rec.columns if c.startswith("cpu_usage/")]
    table = {c: raw(recording, c) for c in every}
    for r in range(1, 40):
        b = sum(table[c][r] - table[c][r - 1] for c in busy)
        t = sum(table[c][r] - table[c][r - 1] for c in every)
        assert out["series"][0]["values"][r - 1] == pytest.approx(100 * b / t, rel=1e-5)
    assert all(0 < v < 100 for v in out["series"][0]["values"] if v is not None)


def test_empty_range_between_rows_gives_no_bins(recording):
    """A range that holds no row yields zero bins, not an error or a zero value."""
    rec = Recording(recording)
    bins = compute.make_bins(rec.timestamps, rec.breaks, rec.start_ns + 1, rec.start_ns + 2, points=100)
    assert bins.count == 0


def test_file_without_bookkeeping_columns_breaks_on_time_jumps_and_null_durations(tmp_path):
    """A file in the original's layout (timestamp, duration, series only) shows its gap as null, not a spike."""
    import pyarrow as pa  # noqa: PLC0415 - only this test builds a table by hand

    ts = [synth.START_NS + i * 10**9 for i in range(10)] + [synth.START_NS + (20 + i) * 10**9 for i in range(10)]
    values = [1000 * i for i in range(20)]
    meta = {"metric": "syscall", "metric_type": "counter", "unit": "syscalls", "op": "read"}
    table = pa.table(
        {"timestamp": pa.array(ts, pa.uint64()), "duration": pa.array([None] + [10**9] * 19, pa.uint64()),
         "syscall/read": pa.array(values, pa.uint64())},
    )
    field = table.schema.field(2).with_metadata(meta)
    schema = table.schema.set(2, field).with_metadata({"sampling_interval_ms": "1000"})
    path = tmp_path / "original.parquet"
    pq.write_table(table.cast(schema), path)
    rec = Recording(path)
    assert rec.interval_ns == 10**9
    spec = chart("rate", ("syscall/read",))
    got = query.evaluate(rec, spec, rec.start_ns, rec.end_ns, 100)["series"][0]["values"]
    assert got[9] is None
    assert [v for i, v in enumerate(got) if i != 9] == [1000.0] * 18
