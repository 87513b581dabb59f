"""``rezolus snapshot``: the same absolute window from several hindsights, one of them down."""

from __future__ import annotations

import json
import subprocess
import time
from typing import TYPE_CHECKING

import pyarrow.parquet as pq
import pytest
from hindsight_helpers import Hindsight, Publisher

from rezolus_hindsight import request
from support.env import VENV_BIN, free_port

if TYPE_CHECKING:
    from pathlib import Path

TOKEN = "fleet-snapshot-token-0123456789"  # noqa: S105 - a test token


def snapshot(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``rezolus snapshot ARGS``."""
    return subprocess.run([str(VENV_BIN / "rezolus"), "snapshot", *args], capture_output=True, text=True,
                          timeout=120, check=False)


def test_one_window_from_three_hindsights_one_down(
    tmp_path: Path, publisher: Publisher, hindsights: list[Hindsight]
) -> None:
    """Two files with the same window, one error row, exit 1; without the dead host, exit 0."""
    hindsights.extend(Hindsight(tmp_path / name, publisher.endpoint, interval="100ms", token=TOKEN) for name in "ab")
    for process in hindsights:
        process.wait_rows(30)  # 3 s at 100 ms: both buffers hold the whole 2 s window asked for below
    dead = f"127.0.0.1:{free_port()}"
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("# the fleet\n" + "".join(f"{h.url}\n" for h in hindsights) + f"\n{dead}  # down\n")
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    out = tmp_path / "snaps"
    done = snapshot("--hosts", str(hosts), "--last", "2s", "--output", str(out), "--token-file", str(token_file),
                    "--timeout", "10", "--json")
    assert done.returncode == 1, done.stderr
    rows = {r["host"]: r for r in map(json.loads, done.stdout.splitlines())}
    assert rows[f"http://{dead}"]["error"].startswith("cannot reach")
    assert rows[f"http://{dead}"]["path"] is None
    files = sorted(out.iterdir())
    assert len(files) == 2
    firsts = []
    for process in hindsights:
        row = rows[process.url]
        assert row["error"] is None
        table = pq.read_table(row["path"])
        assert table.num_rows == row["rows"] > 0
        assert row["bytes"] == (out / row["path"].rsplit("/", 1)[1]).stat().st_size
        stamps = table.column("timestamp").to_pylist()
        assert row["start_ns"] <= min(stamps) <= max(stamps) <= row["end_ns"]
        firsts.append(min(stamps))
    # each hindsight keeps one frame per 100 ms interval, chosen by arrival: the same window, within one interval
    assert {r["start_ns"] for r in rows.values()} == {rows[hindsights[0].url]["start_ns"]}
    assert abs(firsts[0] - firsts[1]) < 100_000_000

    table_run = snapshot("--hosts", *(h.url for h in hindsights), dead, "--last", "2s", "--output", str(out),
                         "--token-file", str(token_file), "--timeout", "10")
    assert table_run.returncode == 1
    error_lines = [line for line in table_run.stdout.splitlines() if "error:" in line]
    assert len(error_lines) == 1
    assert dead in error_lines[0]

    healthy = snapshot("--hosts", *(h.url for h in hindsights), "--last", "2s", "--output", str(out),
                       "--token-file", str(token_file), "--timeout", "10")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    no_token = snapshot("--hosts", hindsights[0].url, "--last", "2s", "--output", str(tmp_path / "none"))
    assert no_token.returncode == 1
    assert "HTTP 401" in no_token.stdout


def test_absolute_window_in_integer_nanoseconds() -> None:
    """``start``/``end`` take integer ns besides Unix seconds and RFC 3339, with the same meaning."""
    now = time.time_ns()
    assert request.parse_time("start", str(now)) == now
    assert request.parse_time("start", f"{now}ns") == now
    assert request.parse_time("start", "5ns") == 5
    assert request.parse_time("start", "1700000000") == 1_700_000_000 * 10**9
    assert request.parse_time("end", "2023-11-14T22:13:20Z") == 1_700_000_000 * 10**9
    with pytest.raises(request.RequestError):
        request.parse_time("start", "99999999999999999999")
