"""tcp_retransmit: TCP retransmissions.

Attaches to the raw tracepoints ``tcp_retransmit_skb`` (successful ones) and
``tcp_retransmit_synack`` (``tcp_retransmit.bpf.c``).  Emits
``tcp_retransmit`` (counter, segments; a GSO/TSO skb retransmitted at once
counts as one).
"""

from __future__ import annotations

from rezolus_agent.sampler import BpfSampler, BpfSpec, raw
from rezolus_agent.wiring import Counters, one


class TcpRetransmit(BpfSampler):
    """Counts TCP retransmissions."""

    name = "tcp_retransmit"
    bpf = BpfSpec(
        hooks=(
            raw("tcp_retransmit_skb", "tcp_retransmit__skb"),
            raw("tcp_retransmit_synack", "tcp_retransmit__synack"),
        ),
        maps=("tcp_retransmit",),
        metrics=(Counters("tcp_retransmit", one("tcp_retransmit", "segments", "TCP segments retransmitted.")),),
    )


SAMPLER = TcpRetransmit
