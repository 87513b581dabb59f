"""The live viewer's buffer and command line.

Rows are picked as the recorder picks them, bounded by the window, and the
charts equal a recording's of the same frames.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request

import numpy as np
import pytest
import viewer_synth as synth
import zmq.auth

from rezolus_core.bus import ZmqPublisher
from rezolus_core.curve import ServerKeys
from rezolus_core.tracker import Delivery
from rezolus_viewer import dashboard, query
from rezolus_viewer.live_buffer import LiveBuffer
from rezolus_viewer.recording import Recording
from support.env import VENV_BIN, free_port

SECOND = 1_000_000_000


def deliveries(plan: synth.Plan):
    """The frames of ``plan`` as a subscriber gets them (a new instance is marked restarted, as the tracker does)."""
    instance = 0
    source = synth.agent(synth.plan_catalog("inst-0", plan), plan.interval_ns)
    slot = 0
    for row in range(plan.rows):
        slot += 1 + plan.gaps.get(row, 0)
        restarted = row in plan.restarts
        if restarted:
            instance += 1
            source = synth.agent(synth.plan_catalog(f"inst-{instance}", plan), plan.interval_ns)
        ts = synth.START_NS + slot * plan.interval_ns
        yield Delivery(source.frame(slot, ts), source.cat, 0, restarted=restarted)


def test_charts_of_the_live_buffer_equal_those_of_a_recording_of_the_same_frames(recording):
    """Same columns, same plan, same numbers for every chart (gaps and the restart included)."""
    buffer = LiveBuffer(3600 * SECOND, "tcp://test")
    taken = [buffer.take(d) for d in deliveries(synth.FIXTURE_PLAN)]
    assert sum(t.row for t in taken) == synth.FIXTURE_PLAN.rows
    assert [t.missed for t in taken if t.missed] == [synth.GAP_MISSED]
    assert sum(t.restart for t in taken) == 1
    live = buffer.snapshot()
    rec = Recording(recording)
    try:
        assert set(live.columns) == set(rec.columns)
        assert np.array_equal(live.timestamps, rec.timestamps)
        assert np.array_equal(live.breaks, rec.breaks)
        dash = dashboard.plan(rec.columns.values())
        assert dashboard.plan(live.columns.values()).describe() == dash.describe()
        for chart in dash.charts.values():
            for points in (2000, 50):
                want = query.evaluate(rec, chart, rec.start_ns, rec.end_ns, points)
                got = query.evaluate(live, chart, live.start_ns, live.end_ns, points)
                assert got == want, (chart.id, points)
    finally:
        rec.close()


def test_the_window_bounds_what_is_held():
    """A 60 s window at 1 s holds at most 61 rows whatever the length of the feed, the newest last."""
    buffer = LiveBuffer(60 * SECOND)
    plan = synth.Plan(rows=400, cgroups=2)
    for delivery in deliveries(plan):
        buffer.take(delivery)
        assert len(buffer.rows) <= 61
    snap = buffer.snapshot()
    assert snap.rows == 61
    assert snap.end_ns - snap.start_ns == 60 * SECOND
    assert snap.end_ns == synth.START_NS + 400 * SECOND


def test_an_agent_back_with_another_interval_starts_afresh():
    """Rows of two intervals are never mixed: the buffer restarts and says so."""
    buffer = LiveBuffer(600 * SECOND)
    for delivery in deliveries(synth.Plan(rows=20, cgroups=1)):
        buffer.take(delivery)
    faster = synth.Plan(rows=5, cgroups=1, interval_ns=SECOND // 2)
    source = synth.agent(synth.plan_catalog("inst-fast", faster), faster.interval_ns)
    first = synth.START_NS + 30 * SECOND
    taken = [buffer.take(Delivery(source.frame(k, first + k * faster.interval_ns), source.cat, 0, restarted=True))
             for k in range(5)]
    assert taken[0].reset
    assert buffer.interval_ns == SECOND // 2
    assert buffer.snapshot().rows == 5


def test_no_frames_yet_means_no_snapshot():
    """Before the first row there is nothing to serve (the page shows 'waiting')."""
    assert LiveBuffer(SECOND).snapshot() is None
    with pytest.raises(ValueError, match="window"):
        LiveBuffer(0)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--source=tcp://127.0.0.1:4241", "x.parquet"], "not both"),
        (["--source=tcp://127.0.0.1:4241", "--curve-server-key", "/nonexistent.key"], "--curve-server-key"),
        (["--source=nonsense"], "--source"),
        (["--source=tcp://127.0.0.1:4241", "--window", "0s"], "--window"),
        ([], "expected one file"),
        (["a.parquet", "b.parquet", "c.parquet"], "expected one file"),
    ],
)
def test_bad_live_options_are_one_line_usage_errors(args, words):
    """Exit 2, one line naming the problem, no traceback."""
    result = subprocess.run([str(VENV_BIN / "rezolus-viewer"), *args], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 2, result.stderr
    assert words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_curve_keys_come_from_the_config_file_too(tmp_path):
    """``bus.curve_server_key`` in TOML is read and checked like the flag (here: a missing file, exit 2)."""
    config = tmp_path / "viewer.toml"
    config.write_text('source = "tcp://127.0.0.1:4241"\n[bus]\ncurve_server_key = "/nonexistent/agent.key"\n'
                      'curve_key = "/nonexistent/viewer.key_secret"\n')
    result = subprocess.run([str(VENV_BIN / "rezolus-viewer"), "--config", str(config)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert "bus.curve_server_key" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def _info(url: str) -> dict:
    with urllib.request.urlopen(url + "api/info", timeout=10) as resp:  # noqa: S310 - loopback URL
        return json.load(resp)


@pytest.mark.parametrize("who", ["good", "stranger"])
def test_a_curve_bus_is_viewed_only_with_an_authorised_key(tmp_path, viewer_factory, who):
    """The viewer subscribes as a CURVE client: an authorised key sees rows, a stranger's key sees none."""
    root = tmp_path / "keys"
    (root / "authorized").mkdir(parents=True)
    for name in ("agent", "good", "stranger"):
        zmq.auth.create_certificates(root, name)
    shutil.copy(root / "good.key", root / "authorized" / "good.key")
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    publisher = ZmqPublisher(endpoint, keys=ServerKeys(root / "agent.key_secret", root / "authorized"))
    plan = synth.Plan(rows=1, cgroups=1, interval_ns=SECOND // 5)
    source = synth.agent(synth.plan_catalog("inst-curve", plan), plan.interval_ns)
    viewer = viewer_factory(f"--source={endpoint}", "--curve-server-key", str(root / "agent.key"),
                            "--curve-key", str(root / f"{who}.key_secret"))
    try:
        publisher.publish_catalog(source.cat)
        seen: list[dict] = []
        deadline = time.monotonic() + 8
        seq = 0
        while time.monotonic() < deadline and not (seen and seen[-1].get("rows", 0) >= 5):
            seq += 1
            publisher.publish_frame(source.frame(seq, time.time_ns() // plan.interval_ns * plan.interval_ns))
            seen.append(_info(viewer.url))
            time.sleep(plan.interval_ns / 1e9)  # the publisher's cadence, not a synchronisation
    finally:
        publisher.close()
    if who == "good":
        assert seen[-1]["rows"] >= 5
        assert seen[-1]["mode"] == "live"
    else:
        assert all(s["waiting"] for s in seen)
        assert seq >= 10  # frames kept coming for the whole 8 s
