"""tcp_receive: smoothed RTT and RTT deviation of established TCP sockets, per received segment.

Attaches to the raw tracepoint ``tcp_probe`` (``bpf/tcp_receive.bpf.c``): srtt and
the mean deviation are ``tcp_sock.srtt_us / 8`` and ``tcp_sock.mdev_us / 4``,
read at the offsets given by the kernel's BTF.  Emits ``tcp_srtt`` and ``tcp_jitter``
(histograms, nanoseconds, microsecond resolution).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rezolus_agent.sampler import BpfSpec, Hook, Sampler, SamplerUnavailable
from rezolus_agent.samplers._tcp import HostHistogram, tcp_cflags

if TYPE_CHECKING:
    from rezolus_agent.bpfload import BpfMaps
    from rezolus_agent.series import FrameBuilder


class TcpReceive(Sampler):
    """Histograms of srtt and jitter."""

    name = "tcp_receive"
    bpf = BpfSpec(
        source="tcp_receive.bpf.c",
        hooks=(Hook("raw_tracepoint", "tcp_probe", "tcp_receive__probe"),),
        maps=("tcp_srtt", "tcp_jitter"),
    )

    def cflags(self) -> tuple[str, ...]:
        """tcp_sock offsets from the kernel's BTF (BtfError makes the sampler unavailable)."""
        return tcp_cflags()

    def start(self, maps: BpfMaps | None) -> None:
        """Register the two histograms."""
        if maps is None:
            raise SamplerUnavailable("BPF is not available")
        reg, cpus = self.ctx.registry, self.ctx.cpus
        self._srtt = HostHistogram(maps, cpus, reg, "tcp_srtt", "Smoothed RTT of a TCP socket, per received segment.")
        self._jitter = HostHistogram(
            maps,
            cpus,
            reg,
            "tcp_jitter",
            "RTT mean deviation of a TCP socket, per received segment.",
        )

    def sample(self, out: FrameBuilder) -> None:
        """Emit both histograms."""
        self._srtt.emit(out)
        self._jitter.emit(out)


SAMPLER = TcpReceive
