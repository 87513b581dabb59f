"""Subscriber bookkeeping: gaps, restarts, late catalogs and bad input."""

from __future__ import annotations

from rezolus_core.bus import MemoryBus
from rezolus_core.frame import encode_catalog, encode_frame
from rezolus_core.tracker import Tracker
from support.frames import catalog, frame


def test_in_order_frames_are_delivered() -> None:
    """Consecutive frames are delivered with nothing missed."""
    bus = MemoryBus()
    bus.publish_catalog(catalog())
    sub = bus.attach()
    for seq in range(1, 6):
        bus.publish_frame(frame(seq))
    assert [d.frame.seq for d in sub.deliveries] == [1, 2, 3, 4, 5]
    assert sub.tracker.stats.missed == 0


def test_gap_is_counted() -> None:
    """A jump in sequence numbers counts the frames in between as missed."""
    tracker = Tracker()
    tracker.feed(encode_catalog(catalog()))
    tracker.feed(encode_frame(frame(1)))
    delivered = tracker.feed(encode_frame(frame(5)))
    assert delivered[0].missed_before == 3
    assert tracker.stats.missed == 3


def test_frame_waits_for_its_catalog() -> None:
    """A frame that arrives before any catalog is delivered as soon as the catalog comes."""
    tracker = Tracker()
    assert tracker.feed(encode_frame(frame(1))) == []
    assert tracker.feed(encode_frame(frame(2))) == []
    delivered = tracker.feed(encode_catalog(catalog()))
    assert [d.frame.seq for d in delivered] == [1, 2]


def test_catalog_growth() -> None:
    """A frame needing new series waits for the grown catalog, then is delivered."""
    tracker = Tracker()
    tracker.feed(encode_catalog(catalog()))
    tracker.feed(encode_frame(frame(1)))
    assert tracker.feed(encode_frame(frame(2, version=5))) == []
    delivered = tracker.feed(encode_catalog(catalog(extra=2)))
    assert [d.frame.seq for d in delivered] == [2]
    assert delivered[0].catalog.version == 5


def test_restart_is_flagged_once() -> None:
    """A new instance id counts a restart and flags only its first delivery."""
    tracker = Tracker()
    tracker.feed(encode_catalog(catalog("a" * 32)))
    tracker.feed(encode_frame(frame(9, "a" * 32)))
    tracker.feed(encode_catalog(catalog("b" * 32)))
    first = tracker.feed(encode_frame(frame(1, "b" * 32)))
    second = tracker.feed(encode_frame(frame(2, "b" * 32)))
    assert first[0].restarted
    assert not second[0].restarted
    assert tracker.stats.restarts == 1
    assert first[0].missed_before == 0


def test_duplicates_and_garbage_are_counted_not_raised() -> None:
    """A repeated frame and garbage bytes are counted and dropped."""
    tracker = Tracker()
    tracker.feed(encode_catalog(catalog()))
    tracker.feed(encode_frame(frame(3)))
    assert tracker.feed(encode_frame(frame(3))) == []
    assert tracker.feed(b"\xc1garbage") == []
    assert tracker.stats.duplicates == 1
    assert tracker.stats.decode_errors == 1
    assert tracker.last_error


def test_pending_queue_is_bounded() -> None:
    """Frames waiting for a catalog that never comes are bounded and counted as missed."""
    tracker = Tracker(pending_limit=4)
    for seq in range(1, 11):
        tracker.feed(encode_frame(frame(seq)))
    assert tracker.stats.missed == 6
    delivered = tracker.feed(encode_catalog(catalog()))
    assert [d.frame.seq for d in delivered] == [7, 8, 9, 10]
