"""The on-disk buffer: grid, wrap at duration, restart, torn tails, disk cap, corruption."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest
from hindsight_synth import MS, T0, Feeder, S, SyntheticAgent, make, selected_stamps

from rezolus_hindsight import segment, snapshot
from rezolus_hindsight.buffer import TAIL_NAME, disk
from rezolus_recording import durable, records
from rezolus_recording.grid import Grid

if TYPE_CHECKING:
    from pathlib import Path

def files_charged(directory: Path) -> tuple[int, int]:
    """Bytes charged (4 KiB blocks) and bytes allocated for the files in ``directory``."""
    sizes = [p.stat() for p in directory.iterdir()]
    return sum(disk(s.st_size) for s in sizes), sum(s.st_blocks * 512 for s in sizes)


def test_fills_then_wraps_at_the_duration(tmp_path: Path) -> None:
    """Rows grow one per interval until the buffer spans ``duration``, then old rows go."""
    buffer = make(tmp_path, duration_ns=60 * S)
    feeder = Feeder(buffer, SyntheticAgent(interval_ns=100 * MS))
    for i in range(3000):  # 300 s of an agent at 100 ms
        feeder.feed(T0 + i * 100 * MS)
        newest = feeder.stored[-1].timestamp_ns
        retained = buffer.retained()
        assert retained is not None
        assert newest - retained[0] <= 60 * S
        expected = [f.timestamp_ns for f in feeder.stored if f.timestamp_ns >= newest - 60 * S]
        assert buffer.rows() == len(expected)
    assert len(feeder.stored) == 300
    assert buffer.rows() == 61
    assert buffer.stats.segments_dropped > 0
    assert selected_stamps(buffer) == [f.timestamp_ns for f in feeder.stored[-61:]]


def test_one_frame_per_slot_as_the_recorder_chooses(tmp_path: Path) -> None:
    """The buffer keeps exactly the frames the recorder's Grid picks from the same stream."""
    buffer = make(tmp_path, interval_ns=500 * MS)
    feeder = Feeder(buffer, SyntheticAgent(interval_ns=100 * MS))
    grid = Grid(500 * MS)
    picked = []
    for i in range(200):
        ts = T0 + 30 * MS + i * 100 * MS + (i % 3) * MS
        if grid.offer(ts, 100 * MS, seq=feeder.agent.seq + 1, instance=feeder.agent.instance) is not None:
            picked.append(ts)
        feeder.feed(ts)
    assert [f.timestamp_ns for f in feeder.stored] == picked
    assert selected_stamps(buffer) == picked


def test_restart_keeps_the_data_and_the_grid(tmp_path: Path) -> None:
    """Closing and reopening keeps every row, byte for byte, and never refills a taken slot."""
    buffer = make(tmp_path)
    feeder = Feeder(buffer, SyntheticAgent(interval_ns=100 * MS))
    for i in range(95):
        feeder.feed(T0 + i * 100 * MS)
    before = selected_stamps(buffer)
    selection = buffer.select(0, 2**63 - 1)
    raw_before = [r.raw for r in selection.records()]
    selection.close()
    buffer.close()

    reopened = make(tmp_path)
    assert selected_stamps(reopened) == before
    selection = reopened.select(0, 2**63 - 1)
    assert [r.raw for r in selection.records()] == raw_before
    selection.close()
    feeder.buffer = reopened
    kept = [feeder.feed(T0 + i * 100 * MS) for i in range(95, 101)]
    assert kept == [False] * 5 + [True]  # 9.5 s .. 9.9 s fall in slot 9, stored before the restart
    assert selected_stamps(reopened) == [*before, T0 + 10_000 * MS]
    reopened.close()


def test_torn_tail_record_is_cut_and_older_records_survive(tmp_path: Path) -> None:
    """A partial record at the end of the tail is dropped on open; everything before stays."""
    buffer = make(tmp_path, segment_span_ns=3600 * S)
    feeder = Feeder(buffer)
    for i in range(20):
        feeder.feed(T0 + i * S)
    buffer.close()
    tail = tmp_path / TAIL_NAME
    intact = tail.stat().st_size
    partial = records.encode_row(99, T0 + 99 * S, b"x" * 500).raw[:-7]
    with tail.open("ab") as handle:
        handle.write(partial)

    reopened = make(tmp_path, segment_span_ns=3600 * S)
    assert reopened.stats.recovered_torn_bytes == len(partial)
    assert tail.stat().st_size == intact
    assert selected_stamps(reopened) == [f.timestamp_ns for f in feeder.stored]
    feeder.buffer = reopened
    assert feeder.feed(T0 + 30 * S)
    reopened.close()
    again = make(tmp_path, segment_span_ns=3600 * S)
    assert selected_stamps(again) == [f.timestamp_ns for f in feeder.stored]
    again.close()


def test_crash_between_seal_and_tail_reset_duplicates_nothing(tmp_path: Path) -> None:
    """If the tail was not emptied after its segment was sealed, reopening drops the copies."""
    buffer = make(tmp_path, segment_span_ns=3600 * S)
    feeder = Feeder(buffer)
    for i in range(12):
        feeder.feed(T0 + i * S)
    tail = tmp_path / TAIL_NAME
    stale = tail.read_bytes()
    buffer._seal()
    assert len(buffer.segments) == 1
    buffer.close()
    tail.write_bytes(stale)  # as if the process died before the tail was emptied

    reopened = make(tmp_path, segment_span_ns=3600 * S)
    assert reopened.stats.recovered_duplicates == 12
    assert selected_stamps(reopened) == [f.timestamp_ns for f in feeder.stored]
    assert reopened.rows() == 12
    reopened.close()


def test_disk_cap_holds_at_every_step_with_a_high_rate_agent(tmp_path: Path, monkeypatch) -> None:
    """A fast agent with big frames never pushes the buffer's files past max_bytes."""
    cap = 1 << 20
    peaks: list[tuple[int, int]] = []
    real_fsync = durable.sync_dir

    def measured(directory: Path) -> None:
        real_fsync(directory)
        peaks.append(files_charged(directory))  # segment renamed in, tail not yet emptied

    monkeypatch.setattr(durable, "sync_dir", measured)
    buffer = make(tmp_path, interval_ns=10 * MS, duration_ns=3600 * S, max_bytes=cap)
    feeder = Feeder(buffer, SyntheticAgent(interval_ns=10 * MS, padding=1000))
    for i in range(1500):  # ~8 KiB of incompressible counters per frame, ~12 MB in all
        assert feeder.feed(T0 + i * 10 * MS)
        charged, blocks = files_charged(tmp_path)
        assert charged <= cap
        assert blocks <= cap
        assert buffer.disk_bytes() == charged
    assert peaks
    assert max(p[0] for p in peaks) <= cap
    assert buffer.stats.segments_dropped > 0
    assert buffer.stats.refused == 0
    stamps = selected_stamps(buffer)
    assert stamps[-1] == feeder.stored[-1].timestamp_ns
    assert stamps == [f.timestamp_ns for f in feeder.stored[-len(stamps):]]


def test_a_frame_too_big_for_the_cap_is_refused_with_a_reason(tmp_path: Path) -> None:
    """A single frame larger than the tail may hold is refused, counted and explained."""
    errors: list[str] = []
    buffer = make(tmp_path, max_bytes=1 << 20, on_error=errors.append)
    feeder = Feeder(buffer, SyntheticAgent(padding=40_000))  # ~320 KiB > 1 MiB / 4
    assert not feeder.feed(T0)
    assert buffer.stats.refused == 1
    assert errors
    assert "does not fit" in errors[0]
    assert buffer.rows() == 0


def test_retention_follows_the_newest_sample_not_the_clock(tmp_path: Path) -> None:
    """Frames from long ago stay until newer frames push them out (an outage freezes the buffer)."""
    old = 1_600_000_000 * S  # 2020
    buffer = make(tmp_path, duration_ns=60 * S)
    feeder = Feeder(buffer)
    for i in range(50):
        feeder.feed(old + i * S)
    buffer.close()
    reopened = make(tmp_path, duration_ns=60 * S)
    assert reopened.rows() == 50
    feeder.buffer = reopened
    feeder.feed(T0)  # the agent is back, years later
    assert reopened.rows() == 1
    assert selected_stamps(reopened) == [T0]
    reopened.close()


def test_damaged_segments_are_reported_not_misread(tmp_path: Path) -> None:
    """A bad body fails the snapshot naming the file; a bad header is removed on open."""
    buffer = make(tmp_path, segment_span_ns=5 * S)
    feeder = Feeder(buffer)
    for i in range(40):
        feeder.feed(T0 + i * S)
    first, second = buffer.segments[0].path, buffer.segments[1].path
    lost = set(buffer.segments[1].timestamps.tolist())
    third = buffer.segments[2].first_ts
    data = bytearray(first.read_bytes())
    data[-3] ^= 0xFF
    first.write_bytes(bytes(data))
    with pytest.raises(snapshot.SnapshotError, match=first.name):
        snapshot.build_table(buffer.select(0, 2**63 - 1), source="t", interval_ns=S)
    buffer.close()

    data = bytearray(second.read_bytes())
    data[12] ^= 0xFF
    second.write_bytes(bytes(data))
    errors: list[str] = []
    reopened = make(tmp_path, segment_span_ns=5 * S, on_error=errors.append)
    assert reopened.stats.corrupt_segments == 1
    assert not second.exists()
    assert any(second.name in e for e in errors)
    assert reopened.rows() == 40 - len(lost)
    kept = [f.timestamp_ns for f in feeder.stored if f.timestamp_ns not in lost]
    assert selected_stamps(reopened, third) == [t for t in kept if t >= third]
    reopened.close()


def test_a_new_agent_instance_gets_its_catalog_and_a_restart_row(tmp_path: Path) -> None:
    """After an agent restart the snapshot reads both instances and marks the restart."""
    buffer = make(tmp_path)
    first = Feeder(buffer)
    for i in range(5):
        first.feed(T0 + i * S)
    second = Feeder(buffer)
    second.tracker = first.tracker
    second.tracker.feed(second.catalog)
    for i in range(5, 10):
        second.feed(T0 + i * S)
    table = snapshot.build_table(buffer.select(0, 2**63 - 1), source="t", interval_ns=S)
    assert table.num_rows == 10
    assert table.column("restart").to_pylist() == [False] * 5 + [True] + [False] * 4
    assert table.column("instance").to_pylist() == [first.agent.instance] * 5 + [second.agent.instance] * 5
    buffer.close()


def test_stale_temporary_files_are_removed_on_open(tmp_path: Path) -> None:
    """A segment whose write was interrupted before the rename is discarded on open."""
    buffer = make(tmp_path)
    buffer.close()
    stale = tmp_path / (segment.file_name(7) + durable.TEMP_SUFFIX)
    stale.write_bytes(os.urandom(100))
    reopened = make(tmp_path)
    assert not stale.exists()
    assert reopened.rows() == 0
    reopened.close()
