"""kill -9 at random moments never damages sealed segments and tears at most one tail write."""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

import pytest
from hindsight_helpers import Hindsight, Publisher, poll

from rezolus_hindsight import segment
from rezolus_hindsight.buffer import TAIL_MAGIC, TAIL_NAME
from rezolus_recording import records
from rezolus_recording.records import KIND_CATALOG, KIND_ROW

pytestmark = pytest.mark.slow

if TYPE_CHECKING:
    from pathlib import Path

ITERATIONS = 12


def inspect(directory: Path) -> tuple[dict[int, bytes], int, int]:
    """Read the buffer as a crash left it, without repairing anything.

    Return every frame payload by timestamp, the torn bytes at the tail's
    end and the largest record seen.
    """
    frames: dict[int, bytes] = {}
    sealed: list[int] = []
    largest = 0
    for path in sorted(directory.glob("seg-*.rzh")):
        info = segment.read_info(path)  # raises if a sealed segment is damaged
        with path.open("rb") as handle:
            found = segment.read_records(handle.fileno(), info)
        assert found[0].kind == KIND_CATALOG, path.name
        for record in found:
            largest = max(largest, len(record.raw))
            if record.kind == KIND_ROW:
                frames[record.timestamp_ns] = record.frame
                sealed.append(record.timestamp_ns)
    assert sealed == sorted(set(sealed))
    data = (directory / TAIL_NAME).read_bytes()
    assert data.startswith(TAIL_MAGIC)
    scanned = records.scan(data, len(TAIL_MAGIC))
    found, end = scanned.records, scanned.end
    tail = [r for r in found if r.kind == KIND_ROW]
    assert [r.timestamp_ns for r in tail] == sorted({r.timestamp_ns for r in tail})
    for record in found:
        largest = max(largest, len(record.raw))
    for record in tail:
        if sealed and record.timestamp_ns <= sealed[-1]:  # sealed, but the tail was not yet emptied
            assert frames[record.timestamp_ns] == record.frame
        frames[record.timestamp_ns] = record.frame
    return frames, len(data) - end, largest


def test_kill_9_at_random_moments(tmp_path: Path, hindsights) -> None:
    """Across many kills nothing recovered before is lost, and everything stored is as published."""
    seed = random.randrange(1 << 30)
    print(f"seed {seed}")
    rng = random.Random(seed)
    publisher = Publisher(period_s=0.005, padding=200)
    try:
        hs = Hindsight(
            tmp_path, publisher.endpoint, interval="5ms", duration="1h", max_bytes="256MiB",
            extra='segment = "60ms"\n', start=False,
        )
        hindsights.append(hs)
        buffer_dir = hs.directory / "buffer"
        previous: dict[int, bytes] = {}
        torn_seen = 0
        for iteration in range(ITERATIONS):
            hs.start()
            if iteration == 0:
                hs.wait_rows(20)
            time.sleep(rng.uniform(0.0, 0.4))  # the random moment of the kill, not a wait for state
            hs.kill()
            frames, torn, largest = inspect(buffer_dir)
            torn_seen += bool(torn)
            assert torn < 2 * largest + 64, f"iteration {iteration}: {torn} torn bytes"
            lost = [ts for ts in previous if frames.get(ts) != previous[ts]]
            assert not lost, f"iteration {iteration}: {len(lost)} frames lost or changed"
            published = poll(lambda: (p := publisher.payloads()) and p, 5, "published frames")
            for ts, payload in frames.items():
                assert published.get(ts) == payload, f"iteration {iteration}: {ts} differs"
            previous = frames
        print(f"{torn_seen} of {ITERATIONS} kills left a torn tail record")
        assert len(previous) > 50
        assert len(list(buffer_dir.glob("seg-*.rzh"))) > 3
        hs.start()
        status = hs.status()
        assert status["rows"] >= len(previous)
        code, answer = hs.post({})
        assert code == 200, answer
        assert answer["rows"] >= len(previous)
    finally:
        publisher.stop()
