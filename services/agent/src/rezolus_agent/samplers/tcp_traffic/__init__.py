"""tcp_traffic: TCP bytes moved by applications and segments received.

Attaches to the raw tracepoints ``sock_send_length``, ``sock_recv_length`` and
``tcp_probe`` (``tcp_traffic.bpf.c``; socket family and protocol read at BTF
offsets).  Emits
``tcp_bytes{direction}`` (counter, bytes returned by send/receive calls on TCP
sockets), ``tcp_size{direction}`` (histogram, bytes per call) and
``tcp_packets{direction=receive}`` (counter, segments processed by established
sockets).  ``tcp_packets{direction=transmit}`` is not emitted: no tracepoint
sees TCP segments on the way out (see docs/metrics.md).
"""

from __future__ import annotations

from rezolus_agent.sampler import BpfSampler, BpfSpec, raw
from rezolus_agent.samplers._tcp import tcp_cflags
from rezolus_agent.wiring import Counters, Histograms, Series, each

DIRECTIONS = ("receive", "transmit")


class TcpTraffic(BpfSampler):
    """TCP application bytes, call sizes and received segments."""

    name = "tcp_traffic"
    bpf = BpfSpec(
        hooks=(
            raw("sock_send_length", "tcp_traffic__send"),
            raw("sock_recv_length", "tcp_traffic__recv"),
            raw("tcp_probe", "tcp_traffic__probe"),
        ),
        maps=("tcp_traffic", "tcp_size"),
        metrics=(
            Counters("tcp_traffic", (
                *each("tcp_bytes", "bytes", "Bytes moved by send/receive calls on TCP sockets.", "direction",
                      DIRECTIONS),
                Series("tcp_packets", "packets", "TCP segments processed by established sockets.",
                       (("direction", "receive"),)),
            )),
            Histograms("tcp_size", each("tcp_size", "bytes", "Bytes per send/receive call on TCP sockets.",
                                        "direction", DIRECTIONS)),
        ),
        btf=tcp_cflags,
    )


SAMPLER = TcpTraffic
