"""tcp_connect_latency: time from connect() sending a SYN to the connection being established.

Attaches to the raw tracepoint ``inet_sock_set_state`` (``bpf/tcp_connect_latency.bpf.c``):
CLOSE → SYN_SENT starts the clock, SYN_SENT → ESTABLISHED stops it.
Emits ``tcp_connect_latency`` (histogram, nanoseconds); failed connects are
not recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rezolus_agent.sampler import BpfSpec, Hook, Sampler, SamplerUnavailable
from rezolus_agent.samplers._tcp import HostHistogram, tcp_cflags

if TYPE_CHECKING:
    from rezolus_agent.bpfload import BpfMaps
    from rezolus_agent.series import FrameBuilder


class TcpConnectLatency(Sampler):
    """Histogram of active-open handshake time."""

    name = "tcp_connect_latency"
    bpf = BpfSpec(
        source="tcp_connect_latency.bpf.c",
        hooks=(Hook("raw_tracepoint", "inet_sock_set_state", "tcp_connect_latency__state"),),
        maps=("tcp_connect_latency", "tcp_connect_start"),
    )

    def options(self) -> None:
        """``max_pending``: connects timed at once (LRU table size, default 8192)."""
        self.max_pending = self.ctx.options.integer("max_pending", 8192, minimum=64, maximum=1 << 20)

    def cflags(self) -> tuple[str, ...]:
        """Size the start-time table; socket offsets from the kernel's BTF."""
        return (*tcp_cflags(), f"-DTCP_CONNECT_MAX_PENDING={self.max_pending}")

    def start(self, maps: BpfMaps | None) -> None:
        """Register the histogram."""
        if maps is None:
            raise SamplerUnavailable("BPF is not available")
        self._hist = HostHistogram(
            maps,
            self.ctx.cpus,
            self.ctx.registry,
            "tcp_connect_latency",
            "TCP connect latency, SYN_SENT to ESTABLISHED.",
        )

    def sample(self, out: FrameBuilder) -> None:
        """Emit the histogram."""
        self._hist.emit(out)


SAMPLER = TcpConnectLatency
