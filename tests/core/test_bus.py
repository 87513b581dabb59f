"""The ZeroMQ bus on loopback: late joiners, slow subscribers, restarts, busy addresses."""

from __future__ import annotations

import time

import pytest

from rezolus_core.bus import BusError, ZmqPublisher, ZmqSubscriber
from support.frames import catalog, endpoint, frame
from support.synth import bind_publisher


def collect(sub: ZmqSubscriber, pub: ZmqPublisher, seqs: range, instance: str = "a" * 32) -> list[int]:
    """Publish frames one by one while polling; return the delivered sequence numbers."""
    got: list[int] = []
    for seq in seqs:
        pub.publish_frame(frame(seq, instance))
        got.extend(d.frame.seq for d in sub.poll(0.02))
    got.extend(d.frame.seq for d in sub.poll(0.2))
    return got


def test_late_joiner_gets_catalog_without_waiting_for_republish() -> None:
    """A subscriber that connects after the catalog was sent still decodes frames within a second."""
    where = endpoint()
    pub = ZmqPublisher(where, catalog_every_s=3600)
    try:
        pub.publish_catalog(catalog())
        sub = ZmqSubscriber(where)
        deadline = time.monotonic() + 1.0
        got: list[int] = []
        seq = 0
        while not got and time.monotonic() < deadline:
            seq += 1
            pub.publish_frame(frame(seq))
            got = [d.frame.seq for d in sub.poll(0.02)]
        assert got, "late joiner never received a decodable frame"
        sub.close()
    finally:
        pub.close()


def test_publish_never_blocks_without_subscribers() -> None:
    """Publishing 20000 frames with a stalled subscriber returns promptly and counts drops."""
    where = endpoint()
    pub = ZmqPublisher(where, hwm=10)
    stalled = ZmqSubscriber(where, hwm=10)
    try:
        pub.publish_catalog(catalog())
        frames = [frame(seq) for seq in range(1, 101)]
        for seq in range(20000):
            pub.publish_frame(frames[seq % len(frames)])
    finally:
        stalled.close()
        pub.close()


def test_publisher_restart_is_detected() -> None:
    """When the publisher restarts with a new instance, the subscriber reconnects and flags the restart."""
    where = endpoint()
    sub = ZmqSubscriber(where)
    try:
        first = ZmqPublisher(where)
        first.publish_catalog(catalog("a" * 32))
        assert collect(sub, first, range(1, 40), "a" * 32)
        first.close()
        second = bind_publisher(where)
        second.publish_catalog(catalog("b" * 32))
        got = collect(sub, second, range(1, 60), "b" * 32)
        second.close()
        assert got
        assert sub.tracker.stats.restarts == 1
    finally:
        sub.close()


def test_subscriber_waiting_for_an_absent_publisher_joins_it_promptly() -> None:
    """A subscriber started long before its publisher misses at most the frames of its reconnect cap.

    ZeroMQ's reconnect interval doubles while nothing listens; a cap of seconds would lose that
    long of a restarted agent's first frames. Frames go out every ~20 ms: the first one received
    must be within the first 30 (the cap is 250 ms).
    """
    where = endpoint()
    sub = ZmqSubscriber(where)
    try:
        assert not sub.poll(3.8), "something answered on a fresh endpoint"
        pub = ZmqPublisher(where)
        try:
            pub.publish_catalog(catalog())
            got = collect(sub, pub, range(1, 80))
        finally:
            pub.close()
        assert got, "the subscriber never joined"
        assert got[0] <= 30, got[:5]
    finally:
        sub.close()


def test_busy_address_is_a_clear_error() -> None:
    """Binding an endpoint that is in use raises BusError naming it."""
    where = endpoint()
    pub = ZmqPublisher(where)
    try:
        with pytest.raises(BusError, match=where.replace(".", r"\.")):
            ZmqPublisher(where)
    finally:
        pub.close()


def test_ipc_endpoint_works(tmp_path) -> None:
    """An ipc:// endpoint carries frames like tcp://."""
    where = f"ipc://{tmp_path}/bus.sock"
    pub = ZmqPublisher(where)
    sub = ZmqSubscriber(where)
    try:
        pub.publish_catalog(catalog())
        assert collect(sub, pub, range(1, 50))
    finally:
        sub.close()
        pub.close()
