"""The running service over HTTP: snapshots, status, SIGHUP, concurrency, restart."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hindsight_helpers import Hindsight, Publisher, poll
from hindsight_synth import counter_value

from support.env import free_port

pytestmark = pytest.mark.slow


def check_rows_against_published(table: pa.Table, publisher: Publisher) -> None:
    """Every row is a published frame, with that frame's values."""
    by_ts = {f.timestamp_ns: f for f in publisher.published()}
    for ts, ops in zip(
        table.column("timestamp").to_pylist(), table.column("test_operations").to_pylist(), strict=True
    ):
        assert ts in by_ts
        assert ops == counter_value(by_ts[ts].seq)


def test_post_snapshot_writes_the_published_rows(tmp_path: Path, publisher: Publisher, hindsights) -> None:
    """POST last=2s writes a parquet in output whose rows are the published frames."""
    hs = Hindsight(tmp_path, publisher.endpoint, interval="100ms")
    hindsights.append(hs)
    hs.wait_rows(30)
    code, answer = hs.post({"last": "2s"})
    assert code == 200, answer
    path = Path(answer["path"])
    assert path.parent == hs.output
    table = pq.read_table(path)
    assert table.num_rows == answer["rows"]
    assert 18 <= answer["rows"] <= 21
    assert answer["bytes"] == path.stat().st_size
    assert table.column("timestamp")[0].as_py() == answer["start_ns"]
    assert answer["end_ns"] - answer["start_ns"] <= 2_000_000_000
    check_rows_against_published(table, publisher)
    status = hs.status()
    assert status["snapshots"]["written"] == 1
    assert status["frames_received"] > status["frames_stored"] > 0
    assert status["frames_missed"] == 0
    assert status["errors"] == []


def test_get_snapshot_streams_the_parquet_and_writes_nothing(
    tmp_path: Path, publisher: Publisher, hindsights
) -> None:
    """GET /snapshot answers with the parquet itself; the output directory stays empty."""
    hs = Hindsight(tmp_path, publisher.endpoint, interval="100ms")
    hindsights.append(hs)
    hs.wait_rows(15)
    code, body, headers = hs.request("GET", {"last": "1s", "name": "dl"})
    assert code == 200, body[:200]
    assert headers["Content-Type"] == "application/vnd.apache.parquet"
    assert 'filename="dl.parquet"' in headers["Content-Disposition"]
    table = pq.read_table(pa.BufferReader(body))
    assert table.num_rows == int(headers["X-Rows"]) >= 9
    check_rows_against_published(table, publisher)
    assert list(hs.output.iterdir()) == []


def test_sighup_snapshots_the_whole_buffer(tmp_path: Path, publisher: Publisher, hindsights) -> None:
    """SIGHUP writes one snapshot of everything retained into the output directory."""
    hs = Hindsight(tmp_path, publisher.endpoint, interval="100ms")
    hindsights.append(hs)
    rows = hs.wait_rows(20)["rows"]
    hs.signal(signal.SIGHUP)
    (written,) = poll(lambda: list(hs.output.glob("*.parquet")), 20, "the SIGHUP snapshot")
    table = pq.read_table(written)
    assert table.num_rows >= rows
    check_rows_against_published(table, publisher)
    last = poll(lambda: hs.status()["snapshots"]["last"], 10, "status to show the snapshot")
    assert last["path"] == str(written)
    assert hs.proc is not None
    assert hs.proc.poll() is None


def test_concurrent_snapshots_all_succeed_while_ingestion_continues(tmp_path: Path, hindsights) -> None:
    """Several simultaneous snapshots each get a whole file, and frames keep arriving meanwhile."""
    publisher = Publisher(period_s=0.01, padding=300)
    try:
        hs = Hindsight(tmp_path, publisher.endpoint, interval="10ms", duration="5m")
        hindsights.append(hs)
        before = hs.wait_rows(400)["frames_stored"]
        answers: list[tuple[int, dict]] = []

        def ask(params: dict[str, str]) -> None:
            answers.append(hs.post(params))

        threads = [threading.Thread(target=ask, args=({},)) for _ in range(4)]
        threads += [threading.Thread(target=ask, args=({"name": "same"},)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        codes = sorted(code for code, _ in answers)
        assert codes in ([200] * 5 + [409], [200] * 6), answers
        paths = [Path(a["path"]) for code, a in answers if code == 200]
        assert len(set(paths)) == len(paths)
        for code, answer in answers:
            if code == 200:
                assert pq.read_table(answer["path"]).num_rows == answer["rows"] >= 400
            else:
                assert "already exists" in answer["error"]
        after = poll(lambda: (s := hs.status())["frames_stored"] > before + 100 and s, 20, "ingestion")
        assert after["frames_missed"] == 0
        assert after["snapshots"]["failed"] == 0
    finally:
        publisher.stop()


def test_restart_keeps_the_data_while_the_agent_is_gone(tmp_path: Path, hindsights) -> None:
    """After a restart with no agent, the old rows are still there and can be snapshotted."""
    publisher = Publisher(period_s=0.02)
    hs = Hindsight(tmp_path, publisher.endpoint, interval="100ms")
    hindsights.append(hs)
    hs.wait_rows(20)
    publisher.stop()
    frozen = poll(lambda: (s := hs.status())["last_frame_age_s"] > 0.5 and s, 10, "the agent to go")
    assert hs.stop() == 0
    hs.start()
    status = hs.status()
    assert status["rows"] == frozen["rows"]
    assert status["retained"] == frozen["retained"]
    code, answer = hs.post({"last": "1m"})
    assert code == 200, answer
    assert answer["rows"] == frozen["rows"]
    check_rows_against_published(pq.read_table(answer["path"]), publisher)


def test_status_reports_the_buffer(tmp_path: Path, publisher: Publisher, hindsights) -> None:
    """/status names the retained range, rows, disk bytes, frame counts and last frame age."""
    hs = Hindsight(tmp_path, publisher.endpoint, interval="100ms", max_bytes="2MiB")
    hindsights.append(hs)
    status = hs.wait_rows(5)
    assert status["retained"]["end_ns"] >= status["retained"]["start_ns"]
    assert 0 < status["disk_bytes"] <= 2 * 1024 * 1024
    assert status["last_frame_age_s"] < 5
    assert status["max_bytes"] == 2 * 1024 * 1024
    json.dumps(status)


def _charged(directory: Path) -> int:
    total = 0
    for path in directory.iterdir():
        try:
            total += -(-path.stat().st_size // 4096) * 4096
        except FileNotFoundError:  # deleted by retention between listing and stat
            continue
    return total


def test_disk_cap_holds_with_a_high_rate_agent(tmp_path: Path, hindsights) -> None:
    """A fast agent with big frames keeps the live buffer under max_bytes while it wraps."""
    publisher = Publisher(period_s=0.005, padding=600)
    try:
        hs = Hindsight(tmp_path, publisher.endpoint, interval="5ms", duration="1h", max_bytes="1MiB")
        hindsights.append(hs)
        buffer_dir = hs.directory / "buffer"
        cap = 1024 * 1024
        peak = 0

        def wrapped() -> bool:
            nonlocal peak
            peak = max(peak, _charged(buffer_dir))
            assert peak <= cap
            return hs.status()["segments_dropped"] >= 20

        poll(wrapped, 60, "the buffer to wrap 20 segments", interval=0.01)
        status = hs.status()
        assert status["disk_bytes"] <= cap
        assert status["frames_refused"] == 0
        assert status["write_errors"] == 0
        assert peak > cap // 2
        code, answer = hs.post({})
        assert code == 200, answer
        assert answer["rows"] > 50
    finally:
        publisher.stop()


def test_an_interval_that_is_not_a_multiple_is_reported(tmp_path: Path, publisher: Publisher, hindsights) -> None:
    """An interval that the agent's does not divide is accepted but shown in /status and the log."""
    hs = Hindsight(tmp_path, publisher.endpoint, interval="30ms")
    hindsights.append(hs)
    status = hs.wait_rows(5)
    assert any("not a multiple of the agent's 20ms" in e["message"] for e in status["errors"])
    assert "not a multiple" in hs.log()


def test_sighup_on_an_empty_buffer_is_reported(tmp_path: Path, hindsights) -> None:
    """With no agent yet, SIGHUP writes nothing and says why in /status."""
    silent = f"tcp://127.0.0.1:{free_port()}"
    hs = Hindsight(tmp_path, silent)
    hindsights.append(hs)
    hs.signal(signal.SIGHUP)
    status = poll(lambda: (s := hs.status())["errors"] and s, 10, "the SIGHUP error")
    assert "no frames yet" in status["errors"][-1]["message"]
    assert list(hs.output.iterdir()) == []
    code, answer = hs.post({"last": "5m"})
    assert code == 409
    assert "no frames yet" in answer["error"]
