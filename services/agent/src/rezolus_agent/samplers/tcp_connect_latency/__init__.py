"""tcp_connect_latency: time from connect() sending a SYN to the connection being established.

Attaches to the raw tracepoint ``inet_sock_set_state`` (``tcp_connect_latency.bpf.c``):
CLOSE → SYN_SENT starts the clock, SYN_SENT → ESTABLISHED stops it.
Emits ``tcp_connect_latency`` (histogram, nanoseconds); failed connects are
not recorded.  Option ``max_pending``: connects timed at once (LRU table size,
default 8192).
"""

from __future__ import annotations

from rezolus_agent.sampler import BpfSampler, BpfSpec, MapSize, raw
from rezolus_agent.samplers._tcp import tcp_cflags
from rezolus_agent.wiring import Histograms, one


class TcpConnectLatency(BpfSampler):
    """Histogram of active-open handshake time."""

    name = "tcp_connect_latency"
    bpf = BpfSpec(
        hooks=(raw("inet_sock_set_state", "tcp_connect_latency__state"),),
        maps=("tcp_connect_latency", "tcp_connect_start"),
        metrics=(
            Histograms("tcp_connect_latency",
                       one("tcp_connect_latency", "nanoseconds", "TCP connect latency, SYN_SENT to ESTABLISHED.")),
        ),
        sizes=(MapSize("max_pending", 8192, "TCP_CONNECT_MAX_PENDING"),),
        btf=tcp_cflags,
    )


SAMPLER = TcpConnectLatency
