"""The seed README's commands, run as written (shorter durations), each in a private network namespace.

Seed commands: ``rezolus record --interval 1s --duration 15m http://localhost:4241 rezolus.parquet``,
``rezolus record http://localhost:4241 rezolus.parquet``, ``rezolus config/agent.toml``,
``rezolus exporter config/exporter.toml`` and ``rezolus hindsight config/hindsight.toml``.
"""

from __future__ import annotations

import json
import signal
import time
from typing import TYPE_CHECKING

import pyarrow.parquet as pq
import pytest
from seed_netns import Namespace, rezolus

if TYPE_CHECKING:
    from pathlib import Path


def _get(url: str, method: str = "GET") -> str:
    return (
        "import urllib.request, sys\n"
        f"req = urllib.request.Request({url!r}, method={method!r})\n"
        "print(urllib.request.urlopen(req, timeout=10).read().decode())\n"
    )


def _poll(ns: Namespace, code: str, want: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        done = ns.python(code)
        last = done.stdout + done.stderr
        if done.returncode == 0 and want in done.stdout:
            return done.stdout
        time.sleep(0.5)
    raise AssertionError(f"{want!r} not seen within {timeout}s; last answer: {last[-500:]}")


def test_record_with_interval_and_duration(netns: Namespace, tmp_path: Path) -> None:
    """``rezolus record --interval 1s --duration 3s http://localhost:4241 rezolus.parquet`` (15m shortened)."""
    netns.synthetic_agent()
    done = netns.run(*rezolus("record", "--interval", "1s", "--duration", "3s", "http://localhost:4241",
                              "rezolus.parquet"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    table = pq.read_table(tmp_path / "rezolus.parquet")
    assert table.num_rows == 3
    assert "tcp://localhost:4241" in done.stdout + done.stderr


def test_record_until_interrupted(netns: Namespace, tmp_path: Path) -> None:
    """``rezolus record http://localhost:4241 rezolus.parquet`` records until SIGINT, then writes the file."""
    netns.synthetic_agent()
    proc = netns.start(*rezolus("record", "http://localhost:4241", "rezolus.parquet"), cwd=tmp_path)
    journal = tmp_path / "rezolus.parquet.journal"
    deadline = time.monotonic() + 30
    while not (journal.exists() and journal.stat().st_size > 4096) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.2)
    time.sleep(2.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert pq.read_table(tmp_path / "rezolus.parquet").num_rows >= 2


def test_exporter_with_its_config_file(netns: Namespace) -> None:
    """``rezolus exporter config/exporter.toml`` serves the agent's frames on :4242."""
    netns.synthetic_agent()
    proc = netns.start(*rezolus("exporter", "config/exporter.toml"))
    metrics = _poll(netns, _get("http://127.0.0.1:4242/metrics"), "cpu_usage", 30)
    assert "rezolus_agent_up 1" in metrics or "agent_up 1" in metrics
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


def test_hindsight_with_its_config_file(netns: Namespace) -> None:
    """``rezolus hindsight config/hindsight.toml`` buffers frames (in a private /var/lib) and snapshots them."""
    netns.synthetic_agent()
    proc = netns.start(*rezolus("hindsight", "config/hindsight.toml"), private_var_lib=True)
    status = json.loads(_poll(netns, _get("http://127.0.0.1:4243/status"), '"rows": ', 30).strip() or "{}")
    deadline = time.monotonic() + 30
    while status.get("rows", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        status = json.loads(netns.python(_get("http://127.0.0.1:4243/status")).stdout or "{}")
    assert status["rows"] >= 2, status
    answer = json.loads(netns.python(_get("http://127.0.0.1:4243/snapshot", "POST")).stdout)
    assert answer["rows"] >= 2, answer
    assert answer["path"].startswith("/var/lib/rezolus/snapshots/")
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


@pytest.mark.slow
@pytest.mark.usefixtures("root_bpf")
def test_agent_from_its_config_file(netns: Namespace) -> None:
    """``rezolus config/agent.toml`` runs the real agent; ``rezolus tap`` sees a frame on its default address."""
    proc = netns.start(*rezolus("config/agent.toml"))
    done = netns.run(*rezolus("tap", "--json", "--count", "1", "--timeout", "240"), timeout=300)
    assert done.returncode == 0, (done.stderr, proc.poll())
    frame = json.loads(done.stdout.splitlines()[0])
    names = {series["name"] for series in frame["series"]}
    assert "cpu_usage" in names, sorted(names)[:20]
    assert frame["interval"] == 1_000_000_000
    proc.terminate()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
