"""The shared record format: round trips, torn ends and corruption are detected, never misread."""

from __future__ import annotations

import io
import os
import random
import struct
import zlib

import pytest

from rezolus_recording import records
from rezolus_recording.records import KIND_CATALOG, KIND_HEADER, KIND_ROW


def _stream(count: int, *, compress: bool = False) -> tuple[list[records.Record], bytes]:
    rng = random.Random(7)
    made = [
        records.encode_row(i, i * 1000, rng.randbytes(rng.randrange(0, 300)) * 4, compress=compress)
        if i % 5
        else records.encode(KIND_CATALOG, rng.randbytes(rng.randrange(0, 300)), compress=compress)
        for i in range(count)
    ]
    return made, b"".join(r.raw for r in made)


@pytest.mark.parametrize("compress", [False, True])
def test_round_trip(compress: bool) -> None:
    """Scanning encoded records gives back every kind, slot, timestamp and payload."""
    made, data = _stream(40, compress=compress)
    found = records.scan(data)
    assert found.end == len(data)
    assert found.problem is None
    assert found.records == made
    rows = [r.row() for r in found.records if r.kind == KIND_ROW]
    assert [(slot, ts) for slot, ts, _ in rows] == [(i, i * 1000) for i in range(40) if i % 5]
    if compress:
        assert any(len(r.raw) < records.HEADER.size + len(r.payload) for r in made)


def test_journal_bytes_are_the_documented_layout() -> None:
    """A record is <kind u8, raw_len u32, stored_len u32, crc32 u32> + payload (the journal's format)."""
    payload = b"hello"
    head = struct.pack("<BII", KIND_HEADER, 0, len(payload))
    expected = head + struct.pack("<I", zlib.crc32(payload, zlib.crc32(head))) + payload
    assert records.encode(KIND_HEADER, payload).raw == expected
    assert records.encode(KIND_HEADER, payload, compress=True).raw == expected  # too small to compress


def test_every_torn_end_loses_only_the_last_record() -> None:
    """Cutting the stream at any byte inside the last record keeps every earlier record."""
    made, data = _stream(6)
    last_start = len(data) - len(made[-1].raw)
    for cut in range(last_start, len(data)):
        found = records.scan(data[:cut])
        assert found.records == made[:-1], cut
        assert found.end == last_start
        assert (found.problem is None) == (cut == last_start)


@pytest.mark.parametrize("victim", [0, 3, 9])
def test_a_flipped_bit_stops_the_scan_at_that_record(victim: int) -> None:
    """A corrupted record (header or payload) is refused together with everything after it."""
    made, data = _stream(10)
    start = sum(len(r.raw) for r in made[:victim])
    for offset in (0, 5, 9, 12, len(made[victim].raw) - 1):
        broken = bytearray(data)
        broken[start + offset] ^= 0x10
        found = records.scan(bytes(broken))
        assert found.records == made[:victim], offset
        assert found.end == start
        assert found.problem is not None


def test_unaccepted_kinds_stop_the_scan() -> None:
    """A caller that accepts only some kinds gets the prefix before the first other kind."""
    made = [records.encode(KIND_CATALOG, b"c"), records.encode(KIND_HEADER, b"{}"), records.encode(KIND_CATALOG, b"d")]
    found = records.scan(b"".join(r.raw for r in made), kinds={KIND_CATALOG, KIND_ROW})
    assert found.records == made[:1]
    assert "kind" in (found.problem or "")


def test_garbage_is_no_record() -> None:
    """Random bytes never parse as a record."""
    rng = random.Random(3)
    for _ in range(200):
        found = records.scan(rng.randbytes(rng.randrange(1, 200)))
        assert found.records == []
        assert found.end == 0


def test_stream_reader_matches_scan_and_reports_the_discarded_tail() -> None:
    """Reading a file record by record finds what ``scan`` finds, and says where and why it stopped."""
    made, data = _stream(12, compress=True)
    torn = data + made[3].raw[:-2]
    result = records.StreamResult()
    got = list(records.read_stream(io.BytesIO(b"MAGIC" + torn), 5, 5 + len(torn), result))
    assert got == made
    assert result.valid_bytes == 5 + len(data)
    assert result.discarded_bytes == len(made[3].raw) - 2
    assert "truncated" in (result.problem or "")


def test_truncate_at_cuts_a_file_back_to_its_valid_prefix(tmp_path) -> None:
    """After a torn append, truncating at the scan's end leaves only whole records."""
    made, data = _stream(5)
    path = tmp_path / "records"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND)
    try:
        records.append(fd, made)
        os.write(fd, made[1].raw[:7])
        found = records.scan(path.read_bytes())
        records.truncate_at(fd, found.end)
    finally:
        os.close(fd)
    assert path.read_bytes() == data


def test_oversized_payload_is_refused() -> None:
    """Encoding refuses payloads beyond ``MAX_RECORD``."""
    with pytest.raises(ValueError, match="exceeds"):
        records.encode(KIND_ROW, b"\0" * (records.MAX_RECORD + 1))
