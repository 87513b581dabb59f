"""The lies of issue #17, one by one, and the real events that must still be followed."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import numpy as np
import pyarrow.parquet as pq
import pytest
from adversary import CONFIRM, T0, S, Subscribers, catalog, honest, mutate
from prometheus_client import generate_latest

from rezolus_core.frame import BUCKETS, DecodeError, HistogramValue, check_frame, decode, encode_catalog, encode_frame
from rezolus_core.histogram import layout
from rezolus_core.tracker import Delivery, Tracker
from rezolus_hindsight.buffer import Buffer
from rezolus_recorder.progress import LogReporter, summary

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

YEARS_50 = 50 * 365 * 86_400 * S
NOW = T0 + 10_000 * S


@pytest.fixture
def subs(tmp_path: Path) -> Iterator[Subscribers]:
    """Every subscriber behind one tracker, with 24 honest frames already delivered."""
    s = Subscribers(tmp_path, clock=lambda: NOW)
    s.feed(encode_catalog(catalog()))
    for seq in range(1, 25):
        s.feed(encode_frame(honest(seq)))
    yield s
    s.close()


def test_bucket_count_is_the_layout() -> None:
    """The decoder's bucket limit is the histogram layout's size."""
    assert layout().buckets == BUCKETS


def test_bucket_beyond_the_layout_is_a_decode_error_and_scrapes_keep_working(subs: Subscribers) -> None:
    """Item 1: a bucket index of 600 is refused by decode; /metrics keeps answering."""
    bad = mutate(encode_frame(honest(25)), "hx", 600, 0)
    with pytest.raises(DecodeError, match="bucket index 600"):
        decode(bad)
    assert subs.feed(bad) == []
    assert subs.tracker.stats.decode_errors == 1
    subs.feed(encode_frame(honest(25)))
    assert b"syscall_latency" in generate_latest(subs.registry)


def test_exporter_refuses_an_in_process_frame_outside_the_contract(subs: Subscribers) -> None:
    """The exporter's own guard: a delivery that never went through decode cannot break /metrics."""
    good = honest(25)
    hist = good.histograms[0]
    lie = good.with_histograms((HistogramValue(hist.id, np.array([3, 600], np.uint16), np.array([1, 1], np.uint64)),))
    with pytest.raises(DecodeError):
        check_frame(lie)
    subs.state.ingest(Delivery(lie, catalog(), 0, restarted=False))
    assert subs.state.rejected == 1
    assert subs.state.window() is not None
    assert subs.state.window().latest.seq == 24  # type: ignore[union-attr]
    assert b"cpu_usage" in generate_latest(subs.registry)


@pytest.mark.parametrize("jump", [10**12, 1000])
def test_sequence_jump_does_not_wedge_anyone(subs: Subscribers, jump: int) -> None:
    """Item 2: a frame of the live instance with seq far ahead is dropped; the next frames flow."""
    lie = mutate(encode_frame(honest(25)), "s", 24 + jump)
    assert subs.feed(lie) == []
    for seq in range(25, 30):
        (delivery,) = subs.feed(encode_frame(honest(seq)))
        assert delivery.frame.seq == seq
    assert subs.tracker.stats.suspect == 1
    assert subs.tracker.stats.duplicates == 0
    assert subs.state.window().latest.seq == 29  # type: ignore[union-attr]
    assert subs.buffer.newest_ns == T0 + 29 * S
    assert subs.recorder.rows == 29


def test_frame_from_the_future_changes_nothing_and_survives_no_restart(subs: Subscribers, tmp_path: Path) -> None:
    """Item 3: one frame 50 years ahead is dropped: retention, later frames and a reopened buffer are intact."""
    assert subs.buffer.rows() == 24
    assert subs.feed(mutate(encode_frame(honest(25)), "t", T0 + 25 * S + YEARS_50)) == []
    for seq in range(25, 28):
        subs.feed(encode_frame(honest(seq)))
    assert subs.buffer.rows() == 27
    assert subs.recorder.gaps == 0
    assert subs.recorder.rows == 27
    subs.buffer.close()
    reopened = Buffer(tmp_path / "buffer", interval_ns=S, duration_ns=3600 * S, max_bytes=64 << 20)
    reopened.open()
    assert reopened.rows() == 27
    assert reopened.newest_ns == T0 + 27 * S
    reopened.close()


def test_first_frame_from_the_future_is_held_until_confirmed() -> None:
    """With nothing to compare against, a frame far ahead of this clock waits; an honest one goes through."""
    tracker = Tracker(clock=lambda: NOW)
    tracker.feed(encode_catalog(catalog()))
    assert tracker.feed(mutate(encode_frame(honest(1)), "t", NOW + YEARS_50)) == []
    (delivery,) = tracker.feed(encode_frame(honest(2)))
    assert delivery.frame.seq == 2
    assert tracker.stats.suspect == 1


def test_a_real_clock_step_is_followed(subs: Subscribers) -> None:
    """A wall clock that stays on its new time is followed after CONFIRM frames, marked, nothing lost."""
    step = 600 * S
    delivered = []
    for seq in range(25, 25 + CONFIRM + 2):
        frame = honest(seq)
        payload = mutate(encode_frame(frame), "t", frame.timestamp_ns + step)
        delivered += subs.feed(payload)
    assert [d.frame.seq for d in delivered] == list(range(25, 25 + CONFIRM + 2))
    assert delivered[0].resynced
    assert not any(d.resynced for d in delivered[1:])
    assert subs.tracker.stats.resyncs == 1
    assert subs.buffer.newest_ns == T0 + (24 + CONFIRM + 2) * S + step
    assert subs.buffer.rows() == 24 + CONFIRM + 2
    assert subs.recorder.rows == 24 + CONFIRM + 2


def test_a_real_restart_is_followed(subs: Subscribers) -> None:
    """A new instance (catalog first, as the agent does) is followed at once and marked."""
    other = "b" * 32
    subs.feed(encode_catalog(catalog(other)))
    (delivery,) = subs.feed(encode_frame(honest(1, other)))
    assert delivery.restarted
    assert subs.tracker.stats.restarts == 1


def test_a_lone_frame_of_an_unknown_instance_switches_nothing(subs: Subscribers) -> None:
    """Without its catalog, a frame naming another instance neither restarts nor holds anything up."""
    assert subs.feed(mutate(encode_frame(honest(25)), "i", "c" * 32)) == []
    (delivery,) = subs.feed(encode_frame(honest(25)))
    assert not delivery.restarted
    assert subs.tracker.stats.restarts == 0
    assert subs.tracker.instance == "a" * 32


def test_a_catalog_that_rewrites_history_is_a_decode_error() -> None:
    """The catalog is append-only: a republished one that retypes a series is refused."""
    tracker = Tracker()
    tracker.feed(encode_catalog(catalog()))
    lie = catalog()
    series = list(lie.series)
    series[0] = type(series[0])(**{**series[0].__dict__, "name": "renamed"})
    assert tracker.feed(encode_catalog(type(lie)(lie.instance, tuple(series), lie.host))) == []
    assert tracker.stats.decode_errors == 1
    assert tracker.catalog == catalog()


class _Bus:
    """What the recorder uses of its subscriber: the tracker, and close."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker

    def close(self) -> None:
        """Nothing to release."""


def test_the_recorder_counts_bad_messages_everywhere(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Item 4: log line, progress, summary and file metadata all carry the bad messages."""
    subs = Subscribers(tmp_path, clock=lambda: NOW)
    subs.recorder.sources[0].subscriber = _Bus(subs.tracker)  # type: ignore[assignment]
    subs.feed(encode_catalog(catalog()))
    for seq in range(1, 6):
        subs.feed(encode_frame(honest(seq)))
    subs.feed(b"\xc1 not msgpack")
    subs.feed(mutate(encode_frame(honest(6)), "hx", 600))
    subs.feed(mutate(encode_frame(honest(6)), "s", 10**12))
    subs.feed(encode_frame(honest(6)))
    subs.buffer.close()
    assert subs.recorder.bad_messages == 3
    LogReporter(None, 0.0).update(6, 0, 100, subs.recorder.bad_messages)
    asyncio.run(subs.recorder.shutdown())
    captured = capsys.readouterr()
    logged = captured.out + captured.err
    assert "bad bus messages dropped" in logged
    assert "bad_messages=3" in logged
    result = subs.recorder.result
    assert result is not None
    assert "3 bad bus messages" in summary(result, "tcp://x", S, subs.recorder.bad_messages)
    meta = pq.read_schema(result.output).metadata
    assert meta[b"bus_decode_errors"] == b"2"
    assert meta[b"bus_suspect_frames"] == b"1"
