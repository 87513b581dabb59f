import json
import math
import signal
import subprocess
import threading

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest
from test_docs import run_examples

from rezolus_core import histogram
from rezolus_core.bus import ZmqSubscriber
from rezolus_core.frame import MetricType
from rezolus_exporter import plan as exporter_plan
from rezolus_exporter.render import Settings, render
from rezolus_exporter.state import AgentState
from rezolus_recorder import journal
from rezolus_recording.layout import BOOKKEEPING, column_name
from support.env import VENV_BIN, free_port
from support.synth import MS, wait_until


class Collector:
    """Collects every frame an agent publishes, from a thread, until stopped."""

    def __init__(self, endpoint):
        self.deliveries = {}
        self._stop = threading.Event()
        self._sub = ZmqSubscriber(endpoint)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            for delivery in self._sub.poll(0.1):
                self.deliveries[delivery.frame.timestamp_ns] = delivery

    def stop(self):
        """Stop collecting and close the subscription."""
        self._stop.set()
        self._thread.join(10)
        self._sub.close()


@pytest.mark.slow
def test_live_agent_recording_opens_everywhere_and_matches_the_frames(
    tmp_path, agent_factory, recorder, monkeypatch
):
    """A 3 s recording of a live 100 ms agent at 500 ms: 6 grid rows, metadata, frame values."""
    agent = agent_factory(interval="100ms")
    collector = Collector(agent.endpoint)
    out = tmp_path / "rezolus.parquet"
    try:
        wait_until(lambda: collector.deliveries, 20, "the collector's first frame")
        proc = recorder("--source", agent.endpoint, "--interval", "500ms", "--duration", "3s", out)
        assert proc.wait(60) == 0, proc.stderr
    finally:
        collector.stop()

    count, lo, hi = duckdb.execute(
        "select count(*), min(timestamp), max(timestamp) from read_parquet(?)", [str(out)]
    ).fetchall()[0]
    frame = pd.read_parquet(out)
    assert count + int(frame["missed"].sum()) == 6  # a tick the agent skipped is a counted gap
    assert abs((hi - lo) - 5 * 500 * MS) < 250 * MS  # timestamps are when frames were taken
    assert len(frame) == count
    assert pl.read_parquet(out).height == count
    assert not frame["restart"].any()

    schema = pq.read_schema(out)
    meta = schema.metadata
    host = json.loads(meta[b"host"])
    assert meta[b"hostname"].decode() == host["hostname"]
    assert meta[b"kernel"].decode() == host["kernel"]
    assert meta[b"sampling_interval_ms"] == b"500"

    table = pq.read_table(out)
    _check_rows_against_frames(table, schema, collector)
    _check_exporter_percentiles(table, collector)
    counters = [n for n in schema.names if n not in BOOKKEEPING
                and schema.field(n).metadata[b"metric_type"] == b"counter"]
    for name in counters:
        values = [v for v in table.column(name).to_pylist() if v is not None]
        assert values == sorted(values), name

    monkeypatch.chdir(tmp_path)
    sql, namespaces = run_examples()
    assert sql[0][0][0] == count
    pandas_ns = next(ns for ns in namespaces if "p99" in ns)
    assert len(pandas_ns["p99"]) == count


def _journal_rows(path):
    if not path.exists():
        return 0
    return sum(1 for r in journal.read_records(path) if r.kind == journal.KIND_ROW)


def _start_agent(endpoint):
    return subprocess.Popen(
        [str(VENV_BIN / "rezolus-agent"), "--listen", endpoint, "--interval", "100ms"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_live_agent_restart_keeps_the_recording_going(tmp_path, recorder):
    """Restarting the real agent on the same endpoint yields one marked restart row."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    out = tmp_path / "rec.parquet"
    journal_file = tmp_path / "rec.parquet.journal"
    agent = _start_agent(endpoint)
    try:
        proc = recorder("--source", endpoint, "--interval", "200ms", out)
        wait_until(lambda: _journal_rows(journal_file) >= 5, 30, "rows from the first agent")
        agent.terminate()
        assert agent.wait(15) == 0
        agent = _start_agent(endpoint)
        wait_until(lambda: _journal_rows(journal_file) >= 12, 30, "rows from the second agent")
        proc.proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0, proc.stderr
    finally:
        agent.terminate()
        agent.wait(15)
    frame = pd.read_parquet(out)
    assert frame["instance"].nunique() == 2
    assert int(frame["restart"].sum()) == 1
    at = int(frame.index[frame["restart"]][0])
    assert pd.isna(frame["duration"].iloc[at])
    assert frame["instance"].iloc[at] != frame["instance"].iloc[at - 1]
    assert frame["duration"].drop(index=[0, at]).notna().all()


def _check_rows_against_frames(table, schema, collector):
    """Check every recorded cell against the frame the agent published at that timestamp."""
    stamps = table.column("timestamp").to_pylist()
    histograms_checked = 0
    for row, ts in enumerate(stamps):
        delivery = collector.deliveries[ts]
        catalog = delivery.catalog
        seen = set()
        for sid, value in zip(delivery.frame.counter_ids.tolist(),
                              delivery.frame.counter_values.tolist(), strict=True):
            spec = catalog.series[sid]
            name = column_name(spec)
            seen.add(name)
            assert table.column(name)[row].as_py() == value, name
            field = schema.field(name).metadata
            assert field[b"unit"].decode() == spec.unit
            assert field[b"metric"].decode() == spec.name
            assert field[b"metric_type"] == b"counter"
            for key, label in spec.labels.items():
                assert field[key.encode()].decode() == label
        for hist in delivery.frame.histograms:
            spec = catalog.series[hist.id]
            name = column_name(spec)
            seen.add(name)
            cell = np.asarray(table.column(name)[row].as_py(), dtype=np.uint64)
            assert np.array_equal(cell, histogram.to_dense(hist.indices, hist.counts))
            before = collector.deliveries[stamps[row - 1]].frame.histograms if row else ()
            older = next((h for h in before if h.id == hist.id), None)
            if older is not None:  # a histogram new in this row (a new cgroup's) has no window yet
                window, _ = histogram.delta(
                    cell, np.asarray(table.column(name)[row - 1].as_py(), dtype=np.uint64)
                )
                expected, _ = histogram.delta(
                    histogram.to_dense(hist.indices, hist.counts),
                    histogram.to_dense(older.indices, older.counts),
                )
                assert histogram.percentiles(window) == histogram.percentiles(expected)
                histograms_checked += 1
        assert len(seen) > 10
    assert all(
        spec.type is not MetricType.HISTOGRAM or column_name(spec) in schema.names
        for spec in collector.deliveries[stamps[-1]].catalog.series
    )
    assert histograms_checked > 0, "the live agent published no histograms"


def _check_exporter_percentiles(table, collector):
    """The exporter's summary quantiles for a window equal those decoded from the bucket lists."""
    stamps = table.column("timestamp").to_pylist()
    settings = Settings(quantiles=(0.5, 0.9, 0.99, 0.999, 0.9999),
                        percents=(50.0, 90.0, 99.0, 99.9, 99.99), grouping_power=3)
    compared = 0
    for k in range(1, len(stamps)):
        older, newer = collector.deliveries[stamps[k - 1]], collector.deliveries[stamps[k]]
        state = AgentState(window_ns=newer.frame.timestamp_ns - older.frame.timestamp_ns,
                           clock=lambda: 0)
        state.ingest(older)
        state.ingest(newer)
        window = state.window()
        assert window is not None
        assert window.baseline is not None
        assert window.baseline.seq == older.frame.seq
        plan = exporter_plan.build(newer.catalog, summaries=True, histograms=False)
        families = {f.name: f for f in plan.families}
        for metric in render(plan, window, settings):
            family = families[metric.name]
            if family.kind != "summary":
                continue
            for sid, labels in family.series:
                name = column_name(newer.catalog.series[sid])
                cells = table.column(name)
                if cells[k].as_py() is None or cells[k - 1].as_py() is None:
                    continue
                in_window, _ = histogram.delta(np.asarray(cells[k].as_py(), dtype=np.uint64),
                                               np.asarray(cells[k - 1].as_py(), dtype=np.uint64))
                ours = [None if a is None else family.unit.convert(a)
                        for a in histogram.percentiles(in_window, settings.percents)]
                theirs = [s.value for s in metric.samples
                          if s.name == metric.name and "quantile" in s.labels
                          and {x: y for x, y in s.labels.items() if x != "quantile"} == labels]
                assert len(theirs) == len(ours), name
                for a, b in zip(ours, theirs, strict=True):
                    assert (a is None and math.isnan(b)) or a == pytest.approx(b), name
                compared += sum(a is not None for a in ours)
    assert compared > 0, "no non-empty histogram window was compared with the exporter"
