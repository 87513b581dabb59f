"""With the real agent: a snapshot equals what a recorder running alongside recorded."""

from __future__ import annotations

import signal
import subprocess
from typing import TYPE_CHECKING

import pyarrow.parquet as pq
import pytest
from hindsight_helpers import Hindsight, poll

from rezolus_recorder.journal import journal_path
from support.env import VENV_BIN

pytestmark = pytest.mark.slow

if TYPE_CHECKING:
    from pathlib import Path


def test_snapshot_equals_a_recorder_running_alongside(tmp_path: Path, agent_factory, hindsights) -> None:
    """Hindsight's rows for the recorder's time range are the recorder's rows, value for value."""
    agent = agent_factory(interval="100ms")
    hs = Hindsight(tmp_path / "hs", agent.endpoint, interval="200ms")
    hindsights.append(hs)
    hs.wait_rows(3)
    recording = tmp_path / "recorder.parquet"
    recorder = subprocess.Popen(
        [str(VENV_BIN / "rezolus-recorder"), "--source", agent.endpoint, "--interval", "200ms", str(recording)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        journal = journal_path(recording)
        poll(lambda: journal.exists() and journal.stat().st_size > 4096, 60, "the recorder to record")
        target = hs.status()["frames_stored"] + 25
        poll(lambda: hs.status()["frames_stored"] >= target, 30, "25 more rows")
    finally:
        recorder.send_signal(signal.SIGTERM)
        _, err = recorder.communicate(timeout=60)
    assert recorder.returncode == 0, err.decode(errors="replace")
    recorded = pq.read_table(recording)
    assert recorded.num_rows >= 15
    stamps = recorded.column("timestamp").to_pylist()
    first, last = stamps[0], stamps[-1]
    def seconds(ns: int) -> str:
        return f"{ns // 10**9}.{ns % 10**9:09d}"

    code, answer = hs.post({"start": seconds(first), "end": seconds(last)})
    assert code == 200, answer
    ours = pq.read_table(answer["path"])
    assert ours.column("timestamp").to_pylist() == stamps
    assert ours.schema.names == recorded.schema.names
    assert len(ours.schema.names) > 20
    for name in recorded.schema.names:
        assert ours.column(name).to_pylist() == recorded.column(name).to_pylist(), name
        assert ours.schema.field(name).metadata == recorded.schema.field(name).metadata, name
    theirs = dict(pq.read_schema(recording).metadata)
    theirs.pop(b"recorder_started")
    for key in (b"bus_messages", b"bus_decode_errors", b"bus_suspect_frames"):  # the live recorder's own counts
        theirs.pop(key)
    assert dict(pq.read_schema(answer["path"]).metadata) == theirs
    assert hs.status()["errors"] == []
