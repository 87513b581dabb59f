"""A full buffer disk is logged once per cause with a count, not once per lost frame (issue #17)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from typing import TYPE_CHECKING

import pytest
from hindsight_helpers import Hindsight, Publisher, poll, require

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

LOST_FRAMES = 25


@contextlib.contextmanager
def small_tmpfs(path: Path, hindsights: list[Hindsight]) -> Iterator[Path]:
    """A 1 MiB tmpfs at ``path``; hindsights using it are stopped before it is unmounted."""
    require(os.geteuid() == 0 and shutil.which("mount") is not None, "mounting a tmpfs needs root")
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path)], check=False)
    require(mounted.returncode == 0, "cannot mount tmpfs here")
    try:
        yield path
    finally:
        for process in hindsights:
            if process.proc is not None and process.proc.poll() is None:
                process.stop()
        subprocess.run(["umount", str(path)], check=False)


def _fill(filesystem: Path) -> Path:
    filler = filesystem / "filler"
    with filler.open("wb", buffering=0) as handle, pytest.raises(OSError, match="No space"):  # noqa: PT012 - fill until full
        while True:
            handle.write(b"\0" * 1024)
    return filler


def _records(log: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


def test_full_disk_logs_one_line_per_cause_with_a_count(tmp_path: Path, publisher: Publisher, hindsights) -> None:
    """Many lost frames give one error line; /status counts them; recovery logs the total."""
    with small_tmpfs(tmp_path / "fs", hindsights) as small:
        hs = Hindsight(tmp_path, publisher.endpoint, interval="20ms", directory=small)
        hindsights.append(hs)
        hs.wait_rows(10)
        filler = _fill(small)
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
