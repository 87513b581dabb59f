"""A full buffer disk is logged once per cause with a count, not once per lost frame (issue #17)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from hindsight_helpers import Hindsight, Publisher, fill, poll, tmpfs

if TYPE_CHECKING:
    from pathlib import Path

LOST_FRAMES = 25


def _records(log: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


def test_full_disk_logs_one_line_per_cause_with_a_count(tmp_path: Path, publisher: Publisher, hindsights) -> None:
    """Many lost frames give one error line; /status counts them; recovery logs the total."""
    with tmpfs(tmp_path / "fs", "1m", hindsights) as small:
        hs = Hindsight(tmp_path, publisher.endpoint, interval="20ms", directory=small)
        hindsights.append(hs)
        hs.wait_rows(10)
        filler = fill(small)
        status = poll(lambda: (s := hs.status())["write_errors"] >= LOST_FRAMES and s, 30, "frames lost")
        space = [e for e in status["errors"] if "No space left" in str(e["message"])]
        assert len(space) == 1, status["errors"]
        assert space[0]["count"] >= LOST_FRAMES
        errors = [r for r in _records(hs.log()) if r["level"] == "error" and "No space left" in str(r["event"])]
        assert len(errors) == 1, errors
        filler.unlink()
        poll(lambda: any(r["event"] == "buffer writes succeed again" for r in _records(hs.log())), 30, "recovery")
        recovered = next(r for r in _records(hs.log()) if r["event"] == "buffer writes succeed again")
        assert int(str(recovered["count"])) >= LOST_FRAMES
        assert hs.stop() == 0
