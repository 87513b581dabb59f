"""tcp_receive: smoothed RTT and RTT deviation of established TCP sockets, per received segment.

Attaches to the raw tracepoint ``tcp_probe`` (``tcp_receive.bpf.c``): srtt and
the mean deviation are ``tcp_sock.srtt_us / 8`` and ``tcp_sock.mdev_us / 4``,
read at the offsets given by the kernel's BTF.  Emits ``tcp_srtt`` and ``tcp_jitter``
(histograms, nanoseconds, microsecond resolution).
"""

from __future__ import annotations

from rezolus_agent.sampler import BpfSampler, BpfSpec, raw
from rezolus_agent.samplers._tcp import tcp_cflags
from rezolus_agent.wiring import Histograms, one


class TcpReceive(BpfSampler):
    """Histograms of srtt and jitter."""

    name = "tcp_receive"
    bpf = BpfSpec(
        hooks=(raw("tcp_probe", "tcp_receive__probe"),),
        maps=("tcp_srtt", "tcp_jitter"),
        metrics=(
            Histograms("tcp_srtt",
                       one("tcp_srtt", "nanoseconds", "Smoothed RTT of a TCP socket, per received segment.")),
            Histograms("tcp_jitter",
                       one("tcp_jitter", "nanoseconds", "RTT mean deviation of a TCP socket, per received segment.")),
        ),
        btf=tcp_cflags,
    )


SAMPLER = TcpReceive
