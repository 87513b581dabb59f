"""The ``stopped`` log line carries the exit code the recorder really ends with (issue #17)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from support.env import require
from support.synth import MS


@pytest.fixture
def full_tmpfs(tmp_path):
    """A 1 MiB tmpfs with about 48 KiB free; unmounted at teardown."""
    mount = tmp_path / "small"
    mount.mkdir()
    require(os.geteuid() == 0 and shutil.which("mount") is not None, "mounting a tmpfs needs root and mount(8)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    require(done.returncode == 0, f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        (mount / "filler").write_bytes(b"\0" * (shutil.disk_usage(mount).free - 48 * 1024))
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _stopped_codes(stderr: str) -> list[int]:
    codes = []
    for line in stderr.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == "stopped":
                codes.append(record["exit_code"])
    return codes


@pytest.mark.slow
def test_full_disk_logs_the_real_exit_code(full_tmpfs, endpoint, agents, recorder) -> None:
    """A full disk ends the recording with exit 1, and the log says exit_code 1, not 0."""
    agents(endpoint, interval_ns=100 * MS, cpus=96)
    proc = recorder("--source", endpoint, "--interval", "100ms", "--duration", "5m", full_tmpfs / "rec.parquet")
    assert proc.wait(120) == 1, proc.stderr
    assert "No space left on device" in proc.stderr
    assert _stopped_codes(proc.stderr) == [1], proc.stderr


def test_a_clean_recording_logs_exit_code_0(tmp_path, endpoint, agents, recorder) -> None:
    """The same line says 0 when the recording finishes."""
    agents(endpoint, interval_ns=100 * MS)
    proc = recorder("--source", endpoint, "--interval", "100ms", "--duration", "300ms", tmp_path / "rec.parquet")
    assert proc.wait(60) == 0, proc.stderr
    assert _stopped_codes(proc.stderr) == [0], proc.stderr
