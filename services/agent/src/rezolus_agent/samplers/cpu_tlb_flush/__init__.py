"""cpu_tlb_flush: TLB flushes per CPU by reason.

Attaches to the raw tracepoint ``tlb:tlb_flush`` (``cpu_tlb_flush.bpf.c``).
Emits ``cpu_tlb_flush{reason,id}`` (counter, flushes) for the reasons
task_switch, remote_shootdown, local_shootdown, local_mm_shootdown,
remote_send_ipi, remote_wrong_cpu, and ``other`` for reasons this agent does
not know (none on current kernels).
"""

from __future__ import annotations

from rezolus_agent.sampler import BpfSampler, BpfSpec, raw
from rezolus_agent.wiring import Counters, each

REASONS = (
    "task_switch",
    "remote_shootdown",
    "local_shootdown",
    "local_mm_shootdown",
    "remote_send_ipi",
    "remote_wrong_cpu",
    "other",
)


class CpuTlbFlush(BpfSampler):
    """Counts tlb_flush events on each CPU by reason."""

    name = "cpu_tlb_flush"
    bpf = BpfSpec(
        hooks=(raw("tlb_flush", "cpu_tlb_flush__flush"),),
        maps=("cpu_tlb_flush",),
        metrics=(
            Counters("cpu_tlb_flush", each("cpu_tlb_flush", "flushes", "TLB flushes on a CPU, by reason.", "reason",
                                           REASONS), per_cpu=True),
        ),
    )


SAMPLER = CpuTlbFlush
