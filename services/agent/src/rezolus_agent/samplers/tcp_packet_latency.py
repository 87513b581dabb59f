"""tcp_packet_latency: time from a data segment's arrival to the application reading the socket.

Attaches to the raw tracepoints ``tcp_probe``, ``tcp_rcv_space_adjust`` and
``tcp_destroy_sock`` (``bpf/tcp_packet_latency.bpf.c``).  Emits
``tcp_packet_latency`` (histogram, nanoseconds): oldest pending arrival on a
socket → the next read that copies from it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rezolus_agent.sampler import BpfSpec, Hook, Sampler, SamplerUnavailable
from rezolus_agent.samplers._tcp import HostHistogram, tcp_cflags

if TYPE_CHECKING:
    from rezolus_agent.bpfload import BpfMaps
    from rezolus_agent.series import FrameBuilder


class TcpPacketLatency(Sampler):
    """Histogram of receive-to-read latency."""

    name = "tcp_packet_latency"
    bpf = BpfSpec(
        source="tcp_packet_latency.bpf.c",
        hooks=(
            Hook("raw_tracepoint", "tcp_probe", "tcp_packet_latency__probe"),
            Hook("raw_tracepoint", "tcp_rcv_space_adjust", "tcp_packet_latency__read"),
            Hook("raw_tracepoint", "tcp_destroy_sock", "tcp_packet_latency__destroy"),
        ),
        maps=("tcp_packet_latency", "tcp_packet_start"),
    )

    def options(self) -> None:
        """``max_sockets``: sockets with a pending arrival tracked at once (default 16384)."""
        self.max_sockets = self.ctx.options.integer("max_sockets", 16384, minimum=64, maximum=1 << 20)

    def cflags(self) -> tuple[str, ...]:
        """Size the pending-arrival table; skb offsets from the kernel's BTF."""
        return (*tcp_cflags(), f"-DTCP_PACKET_MAX_SOCKETS={self.max_sockets}")

    def start(self, maps: BpfMaps | None) -> None:
        """Register the histogram."""
        if maps is None:
            raise SamplerUnavailable("BPF is not available")
        self._hist = HostHistogram(
            maps,
            self.ctx.cpus,
            self.ctx.registry,
            "tcp_packet_latency",
            "TCP data arrival to application read.",
        )

    def sample(self, out: FrameBuilder) -> None:
        """Emit the histogram."""
        self._hist.emit(out)


SAMPLER = TcpPacketLatency
