"""tcp_retransmit: TCP retransmissions.

Attaches to the raw tracepoints ``tcp_retransmit_skb`` (successful ones) and
``tcp_retransmit_synack`` (``bpf/tcp_retransmit.bpf.c``).  Emits
``tcp_retransmit`` (counter, segments; a GSO/TSO skb retransmitted at once
counts as one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rezolus_agent.sampler import BpfSpec, Hook, Sampler, SamplerUnavailable

if TYPE_CHECKING:
    from rezolus_agent.bpfload import BpfMaps
    from rezolus_agent.series import FrameBuilder


class TcpRetransmit(Sampler):
    """Counts TCP retransmissions."""

    name = "tcp_retransmit"
    bpf = BpfSpec(
        source="tcp_retransmit.bpf.c",
        hooks=(
            Hook("raw_tracepoint", "tcp_retransmit_skb", "tcp_retransmit__skb"),
            Hook("raw_tracepoint", "tcp_retransmit_synack", "tcp_retransmit__synack"),
        ),
        maps=("tcp_retransmit",),
    )

    def start(self, maps: BpfMaps | None) -> None:
        """Register the counter."""
        if maps is None:
            raise SamplerUnavailable("BPF is not available")
        self._rows = maps.array("tcp_retransmit").reshape(self.ctx.cpus, 8)[:, 0]
        self._id = self.ctx.registry.counter("tcp_retransmit", None, "segments", "TCP segments retransmitted.")

    def sample(self, out: FrameBuilder) -> None:
        """Sum the per-CPU counts."""
        out.counter(self._id, int(self._rows.sum(dtype=np.uint64)))


SAMPLER = TcpRetransmit
