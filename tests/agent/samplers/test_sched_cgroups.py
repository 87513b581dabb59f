"""Per-cgroup bookkeeping of the scheduler samplers: removal, slot reuse, container labels."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
import uuid
from typing import TYPE_CHECKING

import numpy as np
import pytest
from sched_workloads import Workload, agent_config, group

from rezolus_agent import bpfsys
from rezolus_agent.cgroups import CgroupLabeler, SlotTable, container_id, docker_name
from support.env import require
from support.live import cgroup_dir, family_total, series_values, settle, wait_for_series

if TYPE_CHECKING:
    from pathlib import Path

CID = "0123456789abcdef" * 4


def names(values, metric: str) -> set[str]:
    """The ``name`` labels of a metric's series in one frame."""
    return {dict(labels)["name"] for n, labels in values if n == metric}


@pytest.mark.usefixtures("root_bpf")
def test_removed_cgroup_stops_and_new_cgroup_starts_from_zero(subscribe, agent_factory, tmp_path) -> None:
    """A removed cgroup's series stop; a cgroup created after it (reusing its slot) starts at zero."""
    agent = agent_factory(interval="100ms", config=agent_config(tmp_path))
    sub = subscribe(agent.endpoint)
    metrics = ("cgroup_cpu_usage", "cgroup_scheduler_context_switch", "cgroup_cpu_migration")
    with group("rzold") as old:
        old_name = cgroup_dir(old.path)
        wait_for_series(sub, lambda v: all(old_name in names(v, m) for m in metrics))
        work = Workload(old, 2, ["200", "500", "200"])
        work.wait_parked("ready")
        work.go()
        work.wait_parked()
        work.finish()
        busy = series_values(settle(sub, 3))
    # Each round ends in a sleep: at least one voluntary switch per round and process.
    assert family_total(busy, "cgroup_scheduler_context_switch", name=old_name, kind="voluntary") >= 2 * 200
    assert family_total(busy, "cgroup_cpu_usage", name=old_name) > 0
    wait_for_series(sub, lambda v: all(old_name not in names(v, m) for m in metrics))
    with group("rznew") as new:
        new_name = cgroup_dir(new.path)
        fresh = series_values(wait_for_series(sub, lambda v: all(new_name in names(v, m) for m in metrics)))
        later = series_values(settle(sub, 3))
    for values in (fresh, later):
        for metric in metrics:
            assert family_total(values, metric, name=new_name) == 0, metric


class FakeMap:
    """Stands in for the BPF hash map: records the row seen when each id is published."""

    def __init__(self, rows: np.ndarray, width: int) -> None:
        self.rows, self.width = rows, width
        self.entries: dict[int, int] = {}
        self.published: list[tuple[int, int, list[int]]] = []

    def update(self, _fd: int, key: bytes, value: bytes) -> None:
        """Record the row as it is when the id becomes visible to BPF."""
        cgid, slot = int.from_bytes(key, "little"), int.from_bytes(value, "little")
        self.entries[cgid] = slot
        self.published.append((cgid, slot, self.rows[slot * self.width : (slot + 1) * self.width].tolist()))

    def delete(self, _fd: int, key: bytes) -> bool:
        """Forget an id."""
        return self.entries.pop(int.from_bytes(key, "little"), None) is not None


def test_reused_id_or_slot_never_inherits_counts(monkeypatch) -> None:
    """A slot is zeroed before a new id is published in it, and the bound leaves extra cgroups untracked."""
    width = 8
    rows = np.zeros(2 * width, dtype=np.uint64)
    fake = FakeMap(rows, width)
    monkeypatch.setattr(bpfsys, "update", fake.update)
    monkeypatch.setattr(bpfsys, "delete", fake.delete)
    table = SlotTable(-1, rows, width, capacity=2)
    assert table.sync({1: "/", 10: "/a", 11: "/b"}) == {1: 0, 10: 1}
    assert table.untracked == 1
    rows[:] = 99
    table.sync({1: "/", 11: "/b"})
    assert fake.entries == {1: 0, 11: 1}
    assert fake.published[-1] == (11, 1, [0] * width)
    rows[width:] = 7
    table.sync({1: "/"})
    table.sync({1: "/", 11: "/b"})
    assert fake.published[-1] == (11, 1, [0] * width)


def test_container_ids_from_cgroup_paths() -> None:
    """Docker cgroups (cgroupfs and systemd drivers, and their children) map to the container id."""
    assert container_id(f"/docker/{CID}") == CID
    assert container_id(f"/docker/{CID}/init") == CID
    assert container_id(f"/system.slice/docker-{CID}.scope") == CID
    assert container_id("/docker") is None
    assert container_id(f"/docker/{CID[:-1]}") is None
    assert container_id("/user.slice/user-0.slice") is None


def serve_docker(path: Path, reply: dict[str, object] | None, status: int = 200) -> threading.Thread:
    """A one-request HTTP server on a Unix socket that answers like the docker engine."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def run() -> None:
        conn, _ = server.accept()
        with conn, server:
            request = conn.recv(65536).decode()
            assert re.match(rf"GET /containers/{CID}/json HTTP/1.1", request)
            body = json.dumps(reply or {}).encode()
            conn.sendall(f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_container_labels_with_and_without_docker(tmp_path) -> None:
    """``container`` is the short id; ``container_name`` appears only when the docker socket answers."""
    sock = tmp_path / "docker.sock"
    thread = serve_docker(sock, {"Name": "/web-1"})
    labeler = CgroupLabeler(docker_socket=sock)
    assert labeler.labels(f"/docker/{CID}") == {"name": f"/docker/{CID}", "container": CID[:12],
                                                "container_name": "web-1"}
    thread.join(5)
    assert labeler.labels(f"/docker/{CID}/sub") == {"name": f"/docker/{CID}/sub", "container": CID[:12],
                                                    "container_name": "web-1"}
    assert labeler.labels("/a/b/c/d") == {"name": ".../b/c/d"}
    missing = CgroupLabeler(docker_socket=tmp_path / "absent.sock")
    assert missing.labels(f"/docker/{CID}") == {"name": f"/docker/{CID}", "container": CID[:12]}
    sock.unlink()
    thread = serve_docker(sock, None, status=404)
    assert docker_name(CID, sock) is None
    thread.join(5)


def docker_ready() -> bool:
    """Whether dockerd answers and the local debian:bookworm-slim image exists."""
    try:
        probe = subprocess.run(["docker", "image", "inspect", "debian:bookworm-slim"], capture_output=True,
                               timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


@pytest.mark.usefixtures("root_bpf")
def test_docker_containers_are_labelled_and_attributed(subscribe, agent_factory, tmp_path) -> None:
    """Two containers get ``container``/``container_name`` labels; the busy one holds the CPU time."""
    require(docker_ready(), "docker with a local debian:bookworm-slim image")
    agent = agent_factory(interval="100ms", config=agent_config(tmp_path))
    sub = subscribe(agent.endpoint)
    tag = uuid.uuid4().hex[:8]
    names = [f"rzbusy-{tag}", f"rzidle-{tag}"]
    ids: dict[str, str] = {}
    try:
        for name in names:
            ids[name] = subprocess.run(["docker", "run", "-d", "--rm", "--name", name, "debian:bookworm-slim",
                                        "sleep", "600"], capture_output=True, text=True, check=True,
                                       timeout=60).stdout.strip()
        # Work starts only once the agent tracks both containers' cgroups.
        wait_for_series(sub, lambda v: all(
            ("container", cid[:12]) in labels for cid in ids.values() for n, labels in v
            if n == "cgroup_cpu_usage" and dict(labels)["name"] == f"/docker/{cid}"), timeout=30)
        subprocess.run(["docker", "exec", names[0], "sh", "-c",
                        "i=0; while [ $i -lt 1000000 ]; do i=$((i+1)); done"], check=True, timeout=120)
        subprocess.run(["docker", "exec", names[1], "true"], check=True, timeout=60)
        values = series_values(settle(sub, 3))
    finally:
        subprocess.run(["docker", "rm", "-f", *names], capture_output=True, check=False, timeout=60)
    usage: dict[str, int] = {}
    for name, cid in ids.items():
        labels = {"name": f"/docker/{cid}", "container": cid[:12], "container_name": name}
        keys = [k for k in values if k[0] == "cgroup_cpu_usage" and dict(k[1]) == labels]
        assert keys, f"no cgroup_cpu_usage series labelled {labels}"
        usage[name] = int(values[keys[0]])
    busy, idle = usage[names[0]], usage[names[1]]
    print(f"busy={busy} idle={idle}")
    assert busy > 10 * idle
