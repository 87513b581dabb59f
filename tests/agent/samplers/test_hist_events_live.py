"""The kernel's histogram programs count each CPU's events per histogram after the bucket (``rz_hist_add``, issue #19).

The agent sums a histogram again only when its event count moved on some CPU
(``wiring.Histograms``).  That is only right if every program that adds to
a bucket bumps that histogram's count on its CPU after it: read the counts,
then the buckets, then the counts again, and each CPU's bucket total of each
histogram lies between the first read and the second plus one (the one
event a CPU can have between its bucket and its count; programs do not nest
on a CPU).
"""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import numpy as np
import pytest

from rezolus_agent import wiring
from rezolus_agent.sampler import BpfSampler

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import Loaded

pytestmark = pytest.mark.usefixtures("root_bpf")

SAMPLERS = ("syscall_latency", "scheduler_runqueue", "blockio_latency", "blockio_requests", "tcp_traffic",
            "tcp_receive", "tcp_connect_latency", "tcp_packet_latency")
WORKLOAD = (
    "import os, socket, time\n"
    "srv = socket.create_server(('127.0.0.1', 0)); port = srv.getsockname()[1]\n"
    "for _ in range(20):\n"
    "    c = socket.create_connection(('127.0.0.1', port)); s, _ = srv.accept()\n"
    "    c.sendall(b'x' * 65536); s.recv(65536); c.close(); s.close(); time.sleep(0.001)\n"
    "fd = os.open('.', os.O_RDONLY); os.fsync(fd); os.close(fd)\n"
)


def test_every_histogram_program_counts_its_events(load_samplers: Callable[..., Loaded]) -> None:
    """Per CPU and histogram: counts before <= bucket total <= counts after + 1; the busy maps' counts moved."""
    loaded = load_samplers(*SAMPLERS)
    emitters = {
        (sampler.name, index): emitter
        for sampler in loaded.samplers if isinstance(sampler, BpfSampler)
        for index, emitter in enumerate(sampler._wired) if isinstance(emitter, wiring._Hists)
    }
    assert len(emitters) == 9
    start = {name: emitter.events.copy() for name, emitter in emitters.items()}
    subprocess.run([sys.executable, "-c", WORKLOAD], check=True, timeout=60)
    for name, emitter in emitters.items():
        first = emitter.events.copy()
        total = np.add.reduce(emitter.rows, axis=2, dtype=np.uint64)
        second = emitter.events.copy()
        assert (first <= total).all(), name
        assert (total <= second + np.uint64(1)).all(), name
    for name in (("syscall_latency", 0), ("scheduler_runqueue", 1), ("tcp_traffic", 1)):
        assert emitters[name].events.sum() > start[name].sum(), f"{name}: no event counted"
