import json
import os
import pty
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest

from rezolus_core import histogram
from rezolus_core.frame import MetricType
from rezolus_recorder import journal
from rezolus_recording.layout import column_name
from support import synth
from support.synth import MS, wait_until


def _journal_rows(path):
    if not path.exists():
        return 0
    return sum(1 for r in journal.read_records(path) if r.kind == journal.KIND_ROW)


def _one_line_error(stderr):
    lines = [line for line in stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.slow
def test_recording_opens_in_duckdb_pandas_and_polars(tmp_path, endpoint, agents, recorder):
    """A 2 s recording at 200 ms covers 10 grid rows (rows + missed), readable by three tools."""
    agent = agents(endpoint, interval_ns=100 * MS)
    out = tmp_path / "rec.parquet"
    proc = recorder("--source", endpoint, "--interval", "200ms", "--duration", "2s", out)
    assert proc.wait() == 0, proc.stderr
    assert "Recorded " in proc.stdout
    assert not (tmp_path / "rec.parquet.journal").exists()

    count, lo, hi = duckdb.execute(
        "select count(*), min(timestamp), max(timestamp) from read_parquet(?)", [str(out)]
    ).fetchall()[0]
    frame = pd.read_parquet(out)
    # A synthetic tick the loaded machine skipped is a gap, counted in `missed`.
    assert count + int(frame["missed"].sum()) == 10
    assert count >= 8
    assert abs((hi - lo) - 9 * 200 * MS) < 200 * MS  # timestamps are when frames were taken
    assert len(frame) == count
    polars_frame = pl.read_parquet(out)
    assert polars_frame.height == count
    assert polars_frame.schema["cpu_usage/user/0"] == pl.UInt64
    for ts in frame["timestamp"]:
        assert agent.tick_of[int(ts)] % (200 * MS) == 0  # the frame due at a grid point
    hist, counter = "syscall_latency/read:buckets", "cpu_usage/user/0"
    totals = [sum(cell) for cell in frame[hist]]
    by_duckdb = duckdb.execute(
        'select list_sum("syscall_latency/read:buckets"), "cpu_usage/user/0" '
        "from read_parquet(?) order by timestamp",
        [str(out)],
    ).fetchall()
    assert [row[0] for row in by_duckdb] == totals
    assert [row[1] for row in by_duckdb] == frame[counter].tolist()
    by_polars = polars_frame.sort("timestamp").select(pl.col(hist).list.sum()).to_series()
    assert by_polars.to_list() == totals

    published = {f.timestamp_ns: f for f in agent.published}
    cat = synth.catalog()
    for _, row in frame.iterrows():
        source = published[int(row["timestamp"])]
        for sid, value in zip(source.counter_ids.tolist(), source.counter_values.tolist(),
                              strict=True):
            assert int(row[column_name(cat.series[sid])]) == value
    assert not frame["restart"].any()

    meta = pq.read_schema(out).metadata
    assert meta[b"source"] == endpoint.encode()
    assert meta[b"sampling_interval_ms"] == b"200"
    assert meta[b"hostname"] == synth.HOST["hostname"].encode()
    assert b"catalog" not in meta  # stored once, in the footer's key-value metadata only
    footer = pq.read_metadata(out).metadata
    assert footer[b"rows"] == meta[b"rows"]
    units = {c["column"]: c["unit"] for c in json.loads(footer[b"catalog"])}
    assert json.loads(pl.read_parquet_metadata(out)["catalog"]) == json.loads(footer[b"catalog"])
    for spec in cat.series:
        assert units[column_name(spec)] == spec.unit
        field = pq.read_schema(out).field(column_name(spec))
        assert field.metadata[b"metric_type"] == spec.type.value.encode()


def test_existing_output_is_refused_without_force(tmp_path, recorder):
    """An existing OUTPUT is a usage error (exit 2) and stays untouched."""
    out = tmp_path / "rec.parquet"
    out.write_bytes(b"precious")
    proc = recorder("--timeout", "1s", out)
    assert proc.wait() == 2
    assert "--force" in _one_line_error(proc.stderr)
    assert out.read_bytes() == b"precious"


@pytest.mark.slow
def test_force_replaces_an_existing_output(tmp_path, endpoint, agents, recorder):
    """With --force the old file is replaced by the new recording."""
    agents(endpoint, interval_ns=100 * MS)
    out = tmp_path / "rec.parquet"
    out.write_bytes(b"old")
    proc = recorder("--source", endpoint, "--interval", "100ms", "--duration", "500ms",
                    "--force", out)
    assert proc.wait() == 0, proc.stderr
    assert pq.read_table(out).num_rows == 5


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--interval", "soon"], "--interval"),
        (["--duration", "0s"], "--duration"),
        (["--interval", "2s", "--duration", "1s"], "shorter"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(tmp_path, recorder, args, needle):
    """Malformed durations print one line naming the option and exit 2."""
    proc = recorder(*args, tmp_path / "x.parquet")
    assert proc.wait() == 2
    assert needle in _one_line_error(proc.stderr)


def test_interval_finer_than_the_agents_is_refused(tmp_path, endpoint, agents, recorder):
    """Asking for 200 ms rows from a 500 ms agent fails with both intervals named."""
    agents(endpoint, interval_ns=500 * MS)
    out = tmp_path / "rec.parquet"
    proc = recorder("--source", endpoint, "--interval", "200ms", out)
    assert proc.wait() == 2
    line = _one_line_error(proc.stderr)
    assert "200ms" in line
    assert "500ms" in line
    assert not out.exists()
    assert not (tmp_path / "rec.parquet.journal").exists()


def test_unreachable_agent_fails_after_the_timeout(tmp_path, endpoint, recorder):
    """With no agent, the recorder gives up after --timeout with a clear message and exit 1."""
    out = tmp_path / "rec.parquet"
    started = time.monotonic()
    proc = recorder("--source", endpoint, "--timeout", "1s", out)
    assert proc.wait() == 1
    assert time.monotonic() - started < 15
    line = _one_line_error(proc.stderr)
    assert endpoint in line
    assert "within 1s" in line
    assert not out.exists()
    assert not (tmp_path / "rec.parquet.journal").exists()


@pytest.mark.slow
def test_agent_restart_mid_recording_is_marked_and_recording_continues(
    tmp_path, endpoint, agents, recorder
):
    """A new agent instance on the same endpoint continues the file after a restart row."""
    first = agents(endpoint, interval_ns=100 * MS, instance="inst-a")
    out = tmp_path / "rec.parquet"
    journal_file = tmp_path / "rec.parquet.journal"
    proc = recorder("--source", endpoint, "--interval", "100ms", out)
    wait_until(lambda: _journal_rows(journal_file) >= 5, 20, "rows from the first agent")
    first.stop()
    agents(endpoint, interval_ns=100 * MS, instance="inst-b")
    wait_until(lambda: _journal_rows(journal_file) >= 15, 20, "rows from the second agent")
    proc.proc.send_signal(signal.SIGINT)
    assert proc.wait() == 0, proc.stderr
    frame = pd.read_parquet(out)
    assert set(frame["instance"]) == {"inst-a", "inst-b"}
    restarts = frame.index[frame["restart"]].tolist()
    assert len(restarts) == 1
    at = restarts[0]
    assert frame["instance"][at] == "inst-b"
    assert frame["instance"][at - 1] == "inst-a"
    assert pd.isna(frame["duration"][at])
    counter = frame["cpu_usage/user/0"].astype("int64")
    steps = counter.diff()
    assert (steps.drop(index=[0, at]) > 0).all()
    assert steps[at] < 0


@pytest.mark.slow
def test_series_that_appear_later_are_null_before(tmp_path, endpoint, agents, recorder):
    """Cgroups announced mid-recording get columns that are null in the earlier rows."""
    agent = agents(endpoint, interval_ns=100 * MS)
    out = tmp_path / "rec.parquet"
    proc = recorder("--source", endpoint, "--interval", "100ms", "--duration", "2s", out)
    wait_until(lambda: _journal_rows(tmp_path / "rec.parquet.journal") >= 3, 20, "three rows")
    agent.grow()
    assert proc.wait() == 0, proc.stderr
    frame = pd.read_parquet(out)
    column = frame["cgroup_cpu_usage//svc/c0/user"]
    assert column.isna().iloc[0]
    assert column.notna().iloc[-1]
    assert column.isna().sum() > 0
    assert frame["cpu_usage/user/0"].notna().all()


@pytest.mark.slow
def test_sigint_finishes_the_file_and_exits_0(tmp_path, endpoint, agents, recorder):
    """The first SIGINT stops recording, writes the parquet file and removes the journal."""
    agents(endpoint, interval_ns=100 * MS)
    out = tmp_path / "rec.parquet"
    journal_file = tmp_path / "rec.parquet.journal"
    proc = recorder("--source", endpoint, "--interval", "100ms", out)
    wait_until(lambda: _journal_rows(journal_file) >= 5, 20, "five rows")
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.wait() == 0, proc.stderr
    assert pq.read_table(out).num_rows >= 5
    assert not journal_file.exists()
    assert "Recorded" in proc.stdout


@pytest.mark.slow
def test_second_signal_exits_at_once_leaving_a_recoverable_journal(
    tmp_path, endpoint, agents, recorder
):
    """SIGINT then SIGTERM end the process with 130; --recover then yields the rows."""
    agents(endpoint, interval_ns=100 * MS)
    out = tmp_path / "rec.parquet"
    journal_file = tmp_path / "rec.parquet.journal"
    proc = recorder("--source", endpoint, "--interval", "100ms", out)
    wait_until(lambda: _journal_rows(journal_file) >= 5, 20, "five rows")
    proc.proc.send_signal(signal.SIGINT)
    proc.proc.send_signal(signal.SIGTERM)  # a different signal, so the kernel cannot merge them
    code = proc.wait()
    if code == 0:
        pytest.fail("the first signal finished the file before the second arrived")
    assert code == 130
    rows = _journal_rows(journal_file)
    assert not out.exists()
    recovered = recorder("--recover", journal_file)
    assert recovered.wait() == 0, recovered.stderr
    assert pq.read_table(out).num_rows == rows >= 5
    assert not journal_file.exists()


@pytest.mark.slow
def test_progress_bar_on_a_tty(tmp_path, endpoint, agents):
    """On a TTY the recorder draws a rich progress bar with rows and gaps."""
    agents(endpoint, interval_ns=100 * MS)
    out = tmp_path / "rec.parquet"
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rezolus_recorder.main", "--source", endpoint,
         "--interval", "100ms", "--duration", "2s", str(out)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, cwd=tmp_path,
    )
    os.close(slave)
    seen = bytearray()
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen.extend(chunk)
    os.close(master)
    assert proc.wait(30) == 0
    text = seen.decode(errors="replace")
    assert "recording" in text
    assert "rows" in text
    assert "gaps" in text
    assert re.search(rb"Recorded \d+ rows", proc.stdout.read())
    proc.stdout.close()


@pytest.mark.slow
def test_non_tty_progress_is_periodic_log_lines(tmp_path, endpoint, agents, recorder):
    """Without a TTY, progress arrives as JSON log lines with rows and gaps."""
    agents(endpoint, interval_ns=100 * MS)
    out = tmp_path / "rec.parquet"
    proc = recorder("--source", endpoint, "--interval", "100ms", "--duration", "2s",
                    "--progress-every", "500ms", out)
    assert proc.wait() == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    progress = [line for line in lines if line["event"] == "progress"]
    assert len(progress) >= 2
    assert all({"rows", "gaps", "journal_bytes"} <= set(p) for p in progress)
    assert [p["rows"] for p in progress] == sorted(p["rows"] for p in progress)


def test_histogram_columns_match_the_frames_percentiles(tmp_path, endpoint, agents, recorder):
    """Decoding the bucket lists gives the same window percentiles as the published frames."""
    agent = agents(endpoint, interval_ns=100 * MS)
    out = tmp_path / "rec.parquet"
    proc = recorder("--source", endpoint, "--interval", "100ms", "--duration", "1s", out)
    assert proc.wait() == 0, proc.stderr
    table = pq.read_table(out)
    stamps = table.column("timestamp").to_pylist()
    cells = table.column("syscall_latency/read:buckets").to_pylist()
    published = {f.timestamp_ns: f for f in agent.published}
    hid = next(s.id for s in synth.catalog().series if s.type is MetricType.HISTOGRAM)
    for k in range(1, len(cells)):
        window, _ = histogram.delta(
            np.array(cells[k], dtype=np.uint64), np.array(cells[k - 1], dtype=np.uint64)
        )
        newer, older = (
            next(h for h in published[stamps[i]].histograms if h.id == hid) for i in (k, k - 1)
        )
        expected, _ = histogram.delta(
            histogram.to_dense(newer.indices, newer.counts),
            histogram.to_dense(older.indices, older.counts),
        )
        assert histogram.percentiles(window) == histogram.percentiles(expected)
        assert histogram.percentiles(window)[0] is not None


@pytest.mark.slow
def test_without_output_the_file_is_named_after_host_and_time(tmp_path, endpoint, agents):
    """With no OUTPUT, `rezolus record` writes rezolus-HOST-TIME.parquet in the cwd."""
    agents(endpoint, interval_ns=100 * MS)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "rezolus"), "record", "--source", endpoint,
         "--interval", "100ms", "--duration", "300ms"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    files = list(tmp_path.glob("*.parquet"))
    assert len(files) == 1
    name = files[0].name
    assert re.fullmatch(rf"rezolus-{re.escape(socket.gethostname())}-\d{{8}}T\d{{6}}Z\.parquet", name)
    assert pq.read_table(files[0]).num_rows == 3
