"""tcp_traffic: TCP bytes moved by applications and segments received.

Attaches to the raw tracepoints ``sock_send_length``, ``sock_recv_length`` and
``tcp_probe`` (``bpf/tcp_traffic.bpf.c``; socket family and protocol read at BTF
offsets).  Emits
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
from rezolus_agent.samplers._tcp import tcp_cflags
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
            Hook("raw_tracepoint", "sock_send_length", "tcp_traffic__send"),
            Hook("raw_tracepoint", "sock_recv_length", "tcp_traffic__recv"),
            Hook("raw_tracepoint", "tcp_probe", "tcp_traffic__probe"),
        ),
        maps=("tcp_traffic", "tcp_size"),
    )

    def cflags(self) -> tuple[str, ...]:
        """Socket and skb member offsets from the kernel's BTF."""
        return tcp_cflags()

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
