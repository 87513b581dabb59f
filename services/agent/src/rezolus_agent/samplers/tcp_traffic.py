"""tcp_traffic: TCP bytes moved by applications and segments received.

Attaches to the tracepoints ``sock:sock_send_length``, ``sock:sock_recv_length``
and ``tcp:tcp_probe`` (``bpf/tcp_traffic.bpf.c``).  Emits
``tcp_bytes{direction}`` (counter, bytes returned by send/receive calls on TCP
sockets), ``tcp_size{direction}`` (histogram, bytes per call) and
``tcp_packets{direction=receive}`` (counter, segments processed by established
sockets).  ``tcp_packets{direction=transmit}`` is not emitted: no tracepoint
sees TCP segments on the way out (see docs/metrics.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rezolus_agent.sampler import BpfSpec, Hook, Sampler, SamplerUnavailable
from rezolus_core.histogram import layout

if TYPE_CHECKING:
    from rezolus_agent.bpfload import BpfMaps
    from rezolus_agent.series import FrameBuilder

DIRECTIONS = ("receive", "transmit")
ROW = 8


class TcpTraffic(Sampler):
    """TCP application bytes, call sizes and received segments."""

    name = "tcp_traffic"
    bpf = BpfSpec(
        source="tcp_traffic.bpf.c",
        hooks=(
            Hook("tracepoint", "sock:sock_send_length", "tcp_traffic__send"),
            Hook("tracepoint", "sock:sock_recv_length", "tcp_traffic__recv"),
            Hook("tracepoint", "tcp:tcp_probe", "tcp_traffic__probe"),
        ),
        maps=("tcp_traffic", "tcp_size"),
    )

    def start(self, maps: BpfMaps | None) -> None:
        """Register the counters and the size histograms."""
        if maps is None:
            raise SamplerUnavailable("BPF is not available")
        cpus = self.ctx.cpus
        self._rows = maps.array("tcp_traffic").reshape(cpus, ROW)[:, :3]
        self._sizes = maps.array("tcp_size").reshape(cpus, 2, layout().buckets)
        reg = self.ctx.registry
        self._ids = np.array(
            [
                *(
                    reg.counter(
                        "tcp_bytes",
                        {"direction": d},
                        "bytes",
                        "Bytes moved by send/receive calls on TCP sockets.",
                    )
                    for d in DIRECTIONS
                ),
                reg.counter(
                    "tcp_packets",
                    {"direction": "receive"},
                    "packets",
                    "TCP segments processed by established sockets.",
                ),
            ],
            dtype=np.uint32,
        )
        self._size_ids = [
            reg.histogram("tcp_size", {"direction": d}, "bytes", "Bytes per send/receive call on TCP sockets.")
            for d in DIRECTIONS
        ]

    def sample(self, out: FrameBuilder) -> None:
        """Sum the per-CPU rows."""
        out.counters(self._ids, self._rows.sum(axis=0, dtype=np.uint64))
        for sid, row in zip(self._size_ids, self._sizes.sum(axis=0, dtype=np.uint64), strict=True):
            out.histogram(sid, row)


SAMPLER = TcpTraffic
