"""tcp_packet_latency: time from a data segment's arrival to the application reading the socket.

Attaches to the raw tracepoints ``tcp_probe``, ``tcp_rcv_space_adjust`` and
``tcp_destroy_sock`` (``tcp_packet_latency.bpf.c``).  Emits
``tcp_packet_latency`` (histogram, nanoseconds): oldest pending arrival on a
socket → the next read that copies from it.  Option ``max_sockets``: sockets
with a pending arrival tracked at once (default 16384).
"""

from __future__ import annotations

from rezolus_agent.sampler import BpfSampler, BpfSpec, MapSize, raw
from rezolus_agent.samplers._tcp import tcp_cflags
from rezolus_agent.wiring import Histograms, one


class TcpPacketLatency(BpfSampler):
    """Histogram of receive-to-read latency."""

    name = "tcp_packet_latency"
    bpf = BpfSpec(
        hooks=(
            raw("tcp_probe", "tcp_packet_latency__probe"),
            raw("tcp_rcv_space_adjust", "tcp_packet_latency__read"),
            raw("tcp_destroy_sock", "tcp_packet_latency__destroy"),
        ),
        maps=("tcp_packet_latency", "tcp_packet_start"),
        metrics=(
            Histograms("tcp_packet_latency",
                       one("tcp_packet_latency", "nanoseconds", "TCP data arrival to application read.")),
        ),
        sizes=(MapSize("max_sockets", 16384, "TCP_PACKET_MAX_SOCKETS"),),
        btf=tcp_cflags,
    )


SAMPLER = TcpPacketLatency
