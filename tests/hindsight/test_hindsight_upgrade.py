"""A buffer written in the record format before rezolus_recording (v2) survives the upgrade."""

from __future__ import annotations

import struct
import zlib
from typing import TYPE_CHECKING

import numpy as np
from hindsight_synth import T0, S, SyntheticAgent, make

from rezolus_hindsight import legacy, segment, snapshot
from rezolus_hindsight.buffer import TAIL_MAGIC, TAIL_NAME
from rezolus_recording.records import KIND_CATALOG, KIND_ROW

if TYPE_CHECKING:
    from pathlib import Path


def v2_record(kind: int, timestamp_ns: int, slot: int, payload: bytes) -> bytes:
    """Frame a record exactly as hindsight did before the shared format."""
    crc = zlib.crc32(payload, zlib.crc32(struct.pack("<IBQq", len(payload), kind, timestamp_ns, slot)))
    return struct.pack("<IIBQq", len(payload), crc, kind, timestamp_ns, slot) + payload


def v2_segment(body: bytes, stamps: list[int]) -> bytes:
    """A v2 segment: the current header layout with the old magic, body stored as is."""
    fields = struct.pack("<8sIQQIB", legacy.OLD_SEGMENT_MAGIC, len(stamps), len(body), len(body), zlib.crc32(body), 0)
    packed = np.asarray(stamps, dtype="<u8").tobytes()
    return fields + packed + struct.pack("<I", zlib.crc32(packed, zlib.crc32(fields))) + body


def test_v2_segments_and_tail_are_upgraded_in_place_and_lose_nothing(tmp_path: Path) -> None:
    """Every v2 frame comes back with its slot, timestamp and bytes; a torn v2 tail end is cut."""
    agent = SyntheticAgent()
    catalog = agent.catalog_payload()
    stamps = [T0 + k * S for k in range(6)]
    frames = [agent.next_payload(ts) for ts in stamps]
    sealed = v2_record(1, 0, 0, catalog) + b"".join(
        v2_record(2, ts, 1000 + k, f) for k, (ts, f) in enumerate(zip(stamps[:4], frames[:4], strict=True))
    )
    (tmp_path / segment.file_name(0)).write_bytes(v2_segment(sealed, stamps[:4]))
    tail = legacy.OLD_TAIL_MAGIC + v2_record(1, 0, 0, catalog)
    pairs = zip(stamps[4:], frames[4:], strict=True)
    tail += b"".join(v2_record(2, ts, 1004 + k, f) for k, (ts, f) in enumerate(pairs))
    (tmp_path / TAIL_NAME).write_bytes(tail + v2_record(2, T0 + 9 * S, 1009, b"torn")[:-3])

    buffer = make(tmp_path, segment_span_ns=3600 * S)
    assert buffer.stats.corrupt_segments == 0
    assert (tmp_path / segment.file_name(0)).read_bytes()[:8] == segment.MAGIC
    assert (tmp_path / TAIL_NAME).read_bytes().startswith(TAIL_MAGIC)
    assert buffer.rows() == 6
    selection = buffer.select(0, 2**63 - 1)
    try:
        found = list(selection.records())
    finally:
        selection.close()
    rows = [r.row() for r in found if r.kind == KIND_ROW]
    assert rows == [(1000 + k, ts, f) for k, (ts, f) in enumerate(zip(stamps, frames, strict=True))]
    assert [r.payload for r in found if r.kind == KIND_CATALOG] == [catalog, catalog]

    buffer.close()
    reopened = make(tmp_path, segment_span_ns=3600 * S)
    assert reopened.rows() == 6
    written = snapshot.write(reopened.select(0, 2**63 - 1), tmp_path / "snap.parquet", source="t", interval_ns=S)
    assert written.rows == 6
    reopened.close()


def test_a_damaged_v2_segment_is_removed_and_reported(tmp_path: Path) -> None:
    """An old segment whose body fails its CRC is treated like any damaged segment."""
    agent = SyntheticAgent()
    body = v2_record(1, 0, 0, agent.catalog_payload()) + v2_record(2, T0, 5, agent.next_payload(T0))
    data = bytearray(v2_segment(body, [T0]))
    data[-5] ^= 0x40
    path = tmp_path / segment.file_name(0)
    path.write_bytes(bytes(data))
    buffer = make(tmp_path)
    assert buffer.stats.corrupt_segments == 1
    assert not path.exists()
    assert buffer.rows() == 0
    buffer.close()
