"""Per-cgroup bookkeeping of the scheduler samplers: removal, slot reuse, container labels."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from sched_workloads import Workload, agent_config, group

from rezolus_agent import bpfsys
from rezolus_agent.bpfload import BpfMaps
from rezolus_agent.cgroup_table import CgroupRows, Namer
from rezolus_agent.cgroups import CgroupIndex, CgroupLabeler, container_id, docker_name
from rezolus_agent.series import FrameBuilder, SeriesRegistry
from rezolus_agent.wiring import each
from support.docker import require_docker
from support.live import attached, cgroup_dir, family_total, series_values, settle, wait_for_series

CID = "0123456789abcdef" * 4


def names(values, metric: str) -> set[str]:
    """The ``name`` labels of a metric's series in one frame."""
    return {dict(labels)["name"] for n, labels in values if n == metric}


@pytest.mark.usefixtures("root_bpf")
def test_removed_cgroup_stops_and_new_cgroup_starts_from_zero(subscribe, agent_factory, tmp_path) -> None:
    """A removed cgroup's series stop; a cgroup created after it (maybe in its slot) counts only its own events."""
    agent = agent_factory(interval="100ms", config=agent_config(tmp_path))
    sub = subscribe(agent.endpoint)
    metrics = ("cgroup_cpu_usage", "cgroup_scheduler_context_switch")
    attached(sub)
    with group("rzold") as old:
        old_name = cgroup_dir(old.path)
        work = Workload(old, 2, ["200", "500", "200"])
        work.wait_parked("ready")
        ready = work.status()["voluntary"]
        work.go()
        work.wait_parked()
        rounds = work.status()["voluntary"] - ready
        work.finish()
        busy = series_values(settle(sub, 3))
    # The kernel's own count of the rounds' voluntary switches (/proc/PID/status) is a floor for the
    # cgroup's; not 200 per process: a 200 us sleep whose timer fires before the task leaves the CPU
    # is no switch (seen 186-200 of 200 here).
    assert rounds > 0
    assert family_total(busy, "cgroup_scheduler_context_switch", name=old_name, kind="voluntary") >= rounds
    assert family_total(busy, "cgroup_cpu_usage", name=old_name) > 0
    wait_for_series(sub, lambda v: all(old_name not in names(v, m) for m in metrics))
    with group("rznew") as new:
        new_name = cgroup_dir(new.path)
        new.run(["true"])
        fresh = series_values(wait_for_series(sub, lambda v: all(new_name in names(v, m) for m in metrics)))
    # `true` switches a handful of times and runs for well under 100 ms.
    assert family_total(fresh, "cgroup_scheduler_context_switch", name=new_name) < 50
    assert family_total(fresh, "cgroup_cpu_usage", name=new_name) < 100_000_000


class FakeKernel:
    """Stands in for the slot hash and free queue: records what the agent does, in order."""

    def __init__(self, tables: dict[str, np.ndarray]) -> None:
        self.tables = tables
        self.log: list[tuple[str, int, list[int]]] = []

    def delete(self, _fd: int, key: bytes) -> bool:
        """The id leaves the hash; note the rows as they are then."""
        self.log.append(("delete", int.from_bytes(key, "little"), self.tables["rows"][1].tolist()))
        return True

    def push(self, _fd: int, value: bytes) -> None:
        """A slot goes back on the free queue; note its rows and owner as they are then."""
        slot = int.from_bytes(value, "little")
        self.log.append(("push", slot, [*self.tables["rows"][slot].tolist(), *self.tables["owner"][slot].tolist()]))


def test_removed_cgroup_final_counts_published_once_then_slot_freed_zeroed(monkeypatch) -> None:
    """The frame after cgroup_rmdir carries the final counts; then the id leaves the hash and the slot is zeroed."""
    capacity, width = 2, 3
    owner = np.zeros(2 * (capacity + 1), dtype=np.uint64)
    rows = np.zeros((capacity + 1) * width, dtype=np.uint64)
    fake = FakeKernel({"rows": rows.reshape(capacity + 1, width), "owner": owner.reshape(capacity + 1, 2)})
    monkeypatch.setattr(bpfsys, "delete", fake.delete)
    monkeypatch.setattr(bpfsys, "push", fake.push)
    registry = SeriesRegistry("t", {})
    sampler = SimpleNamespace(sizes={"max_cgroups": capacity}, name="s", ctx=SimpleNamespace(registry=registry))
    maps = BpfMaps(arrays={"p_cgroup_owner": owner, "rows": rows}, fds={"p_cgroup_slot": 3, "p_cgroup_free": 4})
    index = CgroupIndex(Path("/nonexistent"), min_refresh_s=1e9, paths={7: "/a", 8: "/b"})
    index._refreshed_at = 1e18
    namer = Namer(index, CgroupLabeler(docker_socket=Path("/nonexistent")), names_fd=-1)
    table = CgroupRows(sampler=sampler, maps=maps, prefix="p", namer=namer,  # type: ignore[arg-type]
                       counters=("rows", width, each("c", "x", "d", "k", ("a", "b", "c"))), histograms=None)

    def frame() -> dict[tuple[str, str], int]:
        out = FrameBuilder()
        table.emit(out)
        built = out.build(registry=registry, seq=0, timestamp_ns=0, monotonic_ns=0, interval_ns=1, host="h")
        specs = registry.catalog().series
        return {(specs[i].labels.get("name", ""), specs[i].labels.get("k", specs[i].name)): int(v)
                for i, v in zip(built.counter_ids, built.counter_values, strict=True)}

    owner[2:4] = (7, 0)  # the kernel gave cgroup 7 slot 1 on its first event
    owner[5] += 1  # and bumped the owner table's generation
    rows[width : 2 * width] = (5, 6, 7)
    assert frame() == {("/a", "a"): 5, ("/a", "b"): 6, ("/a", "c"): 7, ("", "rezolus_cgroup_overflow"): 0}
    rows[width : 2 * width] = (9, 9, 9)
    owner[3] = 1  # cgroup_rmdir
    owner[5] += 1
    assert frame()[("/a", "a")] == 9
    assert fake.log == [("delete", 7, [9, 9, 9]), ("push", 1, [0, 0, 0, 0, 0])]
    assert not any(name == "/a" for name, _ in frame())
    owner[2:4] = (8, 0)  # a new cgroup reuses the slot and starts from zero
    owner[5] += 1
    rows[width] = 1
    assert frame()[("/b", "a")] == 1


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



@pytest.mark.usefixtures("root_bpf")
def test_docker_containers_are_labelled_and_attributed(subscribe, agent_factory, tmp_path) -> None:
    """Two containers get ``container``/``container_name`` labels; the busy one holds the CPU time."""
    require_docker()
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
