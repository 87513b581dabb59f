"""Workloads and reference readers shared by the ioinet tests (bounded, loopback or namespaces only)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

SOFTIRQ_NAMES = ("HI", "TIMER", "NET_TX", "NET_RX", "BLOCK", "IRQ_POLL", "TASKLET", "SCHED", "HRTIMER", "RCU")


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
