"""Record framing: round trips, torn ends and corruption are detected, never misread."""

from __future__ import annotations

import random

import pytest

from rezolus_hindsight import records
from rezolus_hindsight.records import Kind


def _stream(count: int) -> tuple[list[records.Record], bytes]:
    rng = random.Random(7)
    made = [
        records.encode(
            Kind.FRAME if i % 5 else Kind.CATALOG, i * 1000 if i % 5 else 0, rng.randbytes(rng.randrange(0, 300))
        )
        for i in range(count)
    ]
    return made, b"".join(r.raw for r in made)


def test_round_trip() -> None:
    """Scanning encoded records gives back every kind, timestamp and payload."""
    made, data = _stream(40)
    found, end = records.scan(data)
    assert end == len(data)
    assert [(r.kind, r.timestamp_ns, r.payload) for r in found] == [
        (r.kind, r.timestamp_ns, r.payload) for r in made
    ]


def test_every_torn_end_loses_only_the_last_record() -> None:
    """Cutting the stream at any byte inside the last record keeps every earlier record."""
    made, data = _stream(6)
    last_start = len(data) - len(made[-1].raw)
    for cut in range(last_start, len(data)):
        found, end = records.scan(data[:cut])
        assert found == made[:-1], cut
        assert end == last_start


@pytest.mark.parametrize("victim", [0, 3, 9])
def test_a_flipped_bit_stops_the_scan_at_that_record(victim: int) -> None:
    """A corrupted record (header or payload) is refused together with everything after it."""
    made, data = _stream(10)
    start = sum(len(r.raw) for r in made[:victim])
    for offset in (0, 5, 9, len(made[victim].raw) - 1):
        broken = bytearray(data)
        broken[start + offset] ^= 0x10
        found, end = records.scan(bytes(broken))
        assert found == made[:victim], offset
        assert end == start


def test_garbage_is_no_record() -> None:
    """Random bytes never parse as a record."""
    rng = random.Random(3)
    for _ in range(200):
        found, end = records.scan(rng.randbytes(rng.randrange(0, 200)))
        assert found == []
        assert end == 0


def test_oversized_payload_is_refused() -> None:
    """Encoding refuses payloads beyond the frame codec's limit."""
    with pytest.raises(ValueError, match="exceeds"):
        records.encode(Kind.FRAME, 1, b"\0" * (records.MAX_PAYLOAD_BYTES + 1))
