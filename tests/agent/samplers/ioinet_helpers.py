"""Workloads and reference readers shared by the ioinet tests (bounded, loopback or namespaces only)."""

from __future__ import annotations

import contextlib
import mmap
import os
import random
import socket
import subprocess
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

SOFTIRQ_NAMES = (
    "HI",
    "TIMER",
    "NET_TX",
    "NET_RX",
    "BLOCK",
    "IRQ_POLL",
    "TASKLET",
    "SCHED",
    "HRTIMER",
    "RCU",
)


def read_softirqs() -> dict[tuple[str, int], int]:
    """(kind, cpu) -> count from /proc/softirqs, kinds lower-cased like the sampler's labels."""
    lines = Path("/proc/softirqs").read_text(encoding="ascii").splitlines()
    cpus = [int(c[3:]) for c in lines[0].split()]
    out: dict[tuple[str, int], int] = {}
    for line in lines[1:]:
        name, _, rest = line.partition(":")
        if name.strip() not in SOFTIRQ_NAMES:
            continue
        for cpu, value in zip(cpus, rest.split(), strict=False):
            out[(name.strip().lower(), cpu)] = int(value)
    return out


def tcp_transfer(total: int, chunk: int = 16384, host: str = "127.0.0.1") -> int:
    """Send ``total`` bytes over one loopback TCP connection; returns the bytes the receiver read."""
    with socket.create_server((host, 0)) as server:
        port = server.getsockname()[1]
        received = 0

        def receive() -> None:
            nonlocal received
            conn, _ = server.accept()
            with conn:
                while data := conn.recv(65536):
                    received += len(data)

        thread = threading.Thread(target=receive)
        thread.start()
        payload = b"x" * chunk
        with socket.create_connection((host, port)) as client:
            sent = 0
            while sent < total:
                sent += client.send(payload[: min(chunk, total - sent)])
        thread.join(timeout=60)
        assert not thread.is_alive(), "receiver did not finish"
    return received


DISKSTAT_FIELDS = {"read": (0, 2), "write": (4, 6), "discard": (11, 13), "flush": (15, None)}


def read_diskstats(exclude: str = "") -> dict[str, dict[str, int]]:
    """Per op, ops and bytes summed over request-based (blk-mq) whole disks from /proc/diskstats.

    Only devices with ``/sys/block/<dev>/mq`` are summed: partitions would count twice and
    bio-based devices (dm, zram) never pass through the request tracepoints.  ``exclude``
    (a /dev path or name) leaves one device out.
    """
    mq = {p.parent.name for p in Path("/sys/block").glob("*/mq")} - {Path(exclude).name}
    out = {op: {"ops": 0, "bytes": 0} for op in DISKSTAT_FIELDS}
    for line in Path("/proc/diskstats").read_text(encoding="ascii").splitlines():
        fields = line.split()
        if fields[2] not in mq:
            continue
        values = [int(x) for x in fields[3:]]
        for op, (ops, sectors) in DISKSTAT_FIELDS.items():
            if ops < len(values):
                out[op]["ops"] += values[ops]
            if sectors is not None and sectors < len(values):
                out[op]["bytes"] += values[sectors] * 512
    return out


@contextlib.contextmanager
def loop_device(directory: Path, size: int = 64 << 20) -> Iterator[str]:
    """A loop device (direct IO to its backing file) over a file in ``directory``; detached on exit."""
    backing = directory / "loop.img"
    with backing.open("wb") as handle:
        handle.truncate(size)
    subprocess.run(["fallocate", "-l", str(size), str(backing)], check=True)
    dev = subprocess.run(
        ["losetup", "--direct-io=on", "--show", "-f", str(backing)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)


def direct_io(dev: str, reads: int, writes: int = 0, fsyncs: int = 0, block: int = 4096) -> None:
    """O_DIRECT random ``block``-sized reads, then writes, then fsyncs on ``dev`` (seeded, bounded)."""
    rng = random.Random(1234)
    buf = mmap.mmap(-1, block)
    fd = os.open(dev, os.O_RDWR | os.O_DIRECT)
    try:
        blocks = os.lseek(fd, 0, os.SEEK_END) // block
        for _ in range(reads):
            assert os.preadv(fd, [buf], rng.randrange(blocks) * block) == block
        for _ in range(writes):
            assert os.pwritev(fd, [buf], rng.randrange(blocks) * block) == block
        for _ in range(fsyncs):
            os.fsync(fd)
    finally:
        os.close(fd)
        buf.close()


def snmp_tcp(netns: str | None = None) -> dict[str, int]:
    """The Tcp: line of /proc/net/snmp (optionally inside a named network namespace) as a dict."""
    if netns is None:
        text = Path("/proc/net/snmp").read_text(encoding="ascii")
    else:
        text = subprocess.run(
            ["ip", "netns", "exec", netns, "cat", "/proc/net/snmp"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    rows = [line.split()[1:] for line in text.splitlines() if line.startswith("Tcp:")]
    return {k: int(v) for k, v in zip(rows[0], rows[1], strict=True)}


@contextlib.contextmanager
def veth_pair(tag: str) -> Iterator[tuple[str, str, str]]:
    """Two namespaces joined by a veth pair, 10.x addresses only inside them.

    Yields (client namespace, server namespace, server address).
    """
    client, server = f"rzc{tag}", f"rzs{tag}"
    cmds = [
        ["ip", "netns", "add", client],
        ["ip", "netns", "add", server],
        [
            "ip",
            "-n",
            client,
            "link",
            "add",
            "veth0",
            "type",
            "veth",
            "peer",
            "name",
            "veth1",
            "netns",
            server,
        ],
        ["ip", "-n", client, "link", "set", "veth0", "gso_max_segs", "1"],
        ["ip", "-n", server, "link", "set", "veth1", "gso_max_segs", "1"],
        ["ip", "-n", client, "addr", "add", "10.213.0.1/30", "dev", "veth0"],
        ["ip", "-n", server, "addr", "add", "10.213.0.2/30", "dev", "veth1"],
        ["ip", "-n", client, "link", "set", "veth0", "up"],
        ["ip", "-n", server, "link", "set", "veth1", "up"],
        ["ip", "-n", server, "link", "set", "lo", "up"],
    ]
    try:
        for cmd in cmds:
            subprocess.run(cmd, check=True, capture_output=True)
        yield client, server, "10.213.0.2"
    finally:
        for ns in (client, server):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


SERVER = """
import socket, sys
s = socket.create_server(("0.0.0.0", int(sys.argv[1])))
print("ready", flush=True)
c, _ = s.accept()
n = 0
while d := c.recv(65536):
    n += len(d)
print(n, flush=True)
"""

CLIENT = """
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60)
c.sendall(b"y" * int(sys.argv[3]))
c.shutdown(socket.SHUT_WR)
c.recv(1)
"""


def namespace_transfer(client: str, server: str, ip: str, total: int, port: int = 5201) -> int:
    """Send ``total`` bytes from the client namespace to a server in the server namespace; bytes received."""
    import sys  # noqa: PLC0415 - only the interpreter path is needed

    with subprocess.Popen(
        ["ip", "netns", "exec", server, sys.executable, "-c", SERVER, str(port)],
        stdout=subprocess.PIPE,
        text=True,
    ) as srv:
        assert srv.stdout is not None
        assert srv.stdout.readline().strip() == "ready"
        subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                client,
                sys.executable,
                "-c",
                CLIENT,
                ip,
                str(port),
                str(total),
            ],
            check=True,
            timeout=120,
        )
        received = int(srv.stdout.readline())
        srv.wait(timeout=30)
    return received
