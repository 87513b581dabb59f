"""The ioinet samplers inside the real agent: on by default, listed by --check, series in frames."""

from __future__ import annotations

import subprocess

import pytest
from ioinet_helpers import tcp_transfer

from rezolus_core.bus import ZmqSubscriber
from support.env import VENV_BIN
from support.live import wait_for_series

pytestmark = pytest.mark.root

SAMPLERS = (
    "softirq",
    "blockio_requests",
    "blockio_latency",
    "tcp_traffic",
    "tcp_retransmit",
    "tcp_receive",
    "tcp_connect_latency",
    "tcp_packet_latency",
    "cpu_frequency",
    "cpu_perf",
)


@pytest.mark.usefixtures("root_bpf")
def test_check_lists_every_sampler_with_its_state():
    """`rezolus-agent --check` lists each sampler; the unavailable or degraded ones carry a reason."""
    out = subprocess.run(
        [str(VENV_BIN / "rezolus-agent"), "--check"], capture_output=True, text=True, check=True, timeout=180
    ).stdout
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in out.splitlines() if line.strip()}
    for name in SAMPLERS:
        assert name in rows, out
        state = rows[name][0]
        if name == "cpu_perf" and state == "unavailable":
            assert "hardware PMU" in rows[name][1]
            continue
        assert state == "running", (name, rows[name])


@pytest.mark.usefixtures("root_bpf")
def test_agent_publishes_the_ioinet_series(agent_factory):
    """With the default configuration a live agent's frames carry softirq, block IO, TCP and TSC series."""
    agent = agent_factory(interval="100ms")
    sub = ZmqSubscriber(agent.endpoint)
    wanted = {
        "softirq",
        "softirq_time",
        "blockio_operations",
        "blockio_latency",
        "blockio_size",
        "tcp_bytes",
        "tcp_size",
        "tcp_packets",
        "tcp_retransmit",
        "tcp_srtt",
        "tcp_jitter",
        "tcp_connect_latency",
        "tcp_packet_latency",
        "cpu_tsc",
    }

    def complete(values):
        tcp_transfer(1 << 20)
        names = {name for name, _ in values}
        tcp = [v for (name, _), v in values.items() if name == "tcp_bytes"]
        return wanted <= names and sum(tcp) > 0

    wait_for_series(sub, complete, timeout=30)
    sub.close()
