"""One hindsight follows three agents in three network namespaces, through a restart of one.

The agents are synthetic (``fleet_agent.py``: the real ``ZmqPublisher``, frames
on the 100 ms grid, each agent reporting every frame it published); hindsight
is the real command, in a fourth namespace that reaches each agent over its
own veth pair.  The snapshot (SIGHUP) must hold every frame the two steady
agents published after hindsight first heard them, with no gap and no
restart, and the restarted agent's rows must show one restart whose gap
covers at least the ticks it was down.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from fleet_netns import Star

from support.env import VENV_BIN, wait_for

FLEET_AGENT = Path(__file__).with_name("fleet_agent.py")
INTERVAL_NS = 100_000_000
NAMES = ("fleet-a", "fleet-b", "fleet-c")
STATUS = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())"


class Agent:
    """A ``fleet_agent.py`` in a namespace; ``stop`` returns what it published."""

    def __init__(self, ns: str, endpoint: str, hostname: str) -> None:
        self.proc = subprocess.Popen(
            Star.inside(ns, sys.executable, str(FLEET_AGENT), endpoint, hostname),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "bound", self.proc.stderr.read() if self.proc.stderr else ""

    def stop(self) -> dict[str, Any]:
        """SIGTERM, then the published instance and timestamps."""
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, err
        return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _status(star: Star) -> dict[str, Any]:
    done = subprocess.run(
        Star.inside(star.client_ns, sys.executable, "-c", STATUS, "http://127.0.0.1:4243/status"),
        capture_output=True, text=True, check=False, timeout=30,
    )
    return json.loads(done.stdout) if done.returncode == 0 else {}


def _by_host(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["hostname"]: s for s in status.get("sources", []) if s["hostname"]}


def _slot(ts: int) -> int:
    return (ts + INTERVAL_NS // 2) // INTERVAL_NS


def test_three_agents_one_restart_lose_nothing(star: Star, tmp_path: Path) -> None:
    """The steady agents lose no frame; the restarted one shows one restart and its gap."""
    endpoints = [f"tcp://{Star.address(k)}:4241" for k in range(3)]
    agents = [Agent(ns, e, n) for ns, e, n in zip(star.agents, endpoints, NAMES, strict=True)]
    hindsight = subprocess.Popen(
        Star.inside(
            star.client_ns, str(VENV_BIN / "rezolus-hindsight"),
            *(arg for e in endpoints for arg in ("--source", e)),
            "--interval", "100ms", "--duration", "10m", "--listen", "127.0.0.1:4243",
            "--directory", str(tmp_path / "data"), "--output", str(tmp_path / "out"),
        ),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for(lambda: len(h := _by_host(_status(star))) == 3 and all(s["rows"] >= 10 for s in h.values()),
                 60, interval=0.5, what="rows from all three agents")
        first_b = agents[1].stop()
        wait_for(lambda: _by_host(_status(star))["fleet-b"]["last_frame_age_s"] > 1.0, 30, interval=0.3,
                 what="agent b to be silent for a second")
        agents[1] = Agent(star.agents[1], endpoints[1], "fleet-b")
        wait_for(lambda: (b := _by_host(_status(star))["fleet-b"])["agent_restarts"] >= 1 and b["rows"] >= 25,
                 60, interval=0.5, what="rows from the restarted agent b")
        published = [a.stop() for a in agents]
        wait_for(lambda: all(s["last_frame_age_s"] > 0.5 for s in _by_host(_status(star)).values()),
                 30, interval=0.3, what="every agent's last frame to be ingested")
        hindsight.send_signal(signal.SIGHUP)
        snapshot = wait_for(lambda: next((tmp_path / "out").glob("*.parquet"), None), 60, interval=0.2,
                            what="the SIGHUP snapshot")
    finally:
        for agent in agents:
            if agent.proc.poll() is None:
                agent.proc.kill()
        hindsight.terminate()
        _, err = hindsight.communicate(timeout=30)
    assert hindsight.returncode == 0, err
    table = pq.read_table(snapshot).to_pydict()
    rows: dict[str, list[int]] = {}
    for i, host in enumerate(table["host"]):
        rows.setdefault(host, []).append(i)
    assert set(rows) == set(NAMES)
    for name, sent in (("fleet-a", published[0]), ("fleet-c", published[2])):
        stamps = [table["timestamp"][i] for i in rows[name]]
        expected = [t for t in sent["timestamps"] if t >= stamps[0]]
        assert stamps == expected, f"{name}: {len(stamps)} rows for {len(expected)} frames published"
        assert len(stamps) > 30
        assert not any(table["restart"][i] for i in rows[name])
        assert sum(table["missed"][i] for i in rows[name]) == 0
        assert {table["instance"][i] for i in rows[name]} == {sent["instance"]}
    b_rows = rows["fleet-b"]
    restarts = [i for i in b_rows if table["restart"][i]]
    assert len(restarts) == 1
    old = [table["timestamp"][i] for i in b_rows if table["instance"][i] == first_b["instance"]]
    assert old == [t for t in first_b["timestamps"] if t >= old[0]]  # nothing lost before the stop
    row = restarts[0]
    assert table["instance"][row] == published[1]["instance"]
    assert table["duration"][row] is None
    down = _slot(published[1]["timestamps"][0]) - _slot(first_b["timestamps"][-1]) - 1
    assert down >= 9  # it was silent for more than a second
    assert table["missed"][row] == _slot(table["timestamp"][row]) - _slot(old[-1]) - 1 >= down
    new = [table["timestamp"][i] for i in b_rows if table["instance"][i] == published[1]["instance"]]
    assert new == [t for t in published[1]["timestamps"] if t >= new[0]]
