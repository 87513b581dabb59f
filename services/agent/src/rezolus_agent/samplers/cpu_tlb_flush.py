"""cpu_tlb_flush: TLB flushes per CPU by reason.

Attaches to the raw tracepoint ``tlb:tlb_flush`` (``bpf/cpu_tlb_flush.bpf.c``).
Emits ``cpu_tlb_flush{reason,id}`` (counter, flushes) for the reasons
task_switch, remote_shootdown, local_shootdown, local_mm_shootdown,
remote_send_ipi, remote_wrong_cpu, and ``other`` for reasons this agent does
not know (none on current kernels).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rezolus_agent.sampler import BpfSpec, Hook, Sampler, SamplerUnavailable

if TYPE_CHECKING:
    from rezolus_agent.bpfload import BpfMaps
    from rezolus_agent.series import FrameBuilder

REASONS = (
    "task_switch",
    "remote_shootdown",
    "local_shootdown",
    "local_mm_shootdown",
    "remote_send_ipi",
    "remote_wrong_cpu",
    "other",
)


class CpuTlbFlush(Sampler):
    """Counts tlb_flush events on each CPU by reason."""

    name = "cpu_tlb_flush"
    bpf = BpfSpec(
        source="cpu_tlb_flush.bpf.c",
        hooks=(Hook("raw_tracepoint", "tlb_flush", "cpu_tlb_flush__flush"),),
        maps=("cpu_tlb_flush",),
    )

    def start(self, maps: BpfMaps | None) -> None:
        """Register one series per CPU and reason."""
        if maps is None:
            raise SamplerUnavailable("BPF is not available")
        reg = self.ctx.registry
        cpus = self.ctx.cpus
        self._counts = maps.array("cpu_tlb_flush").reshape(cpus, -1)[:, : len(REASONS)]
        self._ids = np.array(
            [
                [reg.counter("cpu_tlb_flush", {"reason": r, "id": str(cpu)}, "flushes",
                             "TLB flushes on a CPU, by reason.") for r in REASONS]
                for cpu in range(cpus)
            ],
            dtype=np.uint32,
        )

    def sample(self, out: FrameBuilder) -> None:
        """Emit every CPU's counts."""
        out.counters(self._ids, self._counts)


SAMPLER = CpuTlbFlush
