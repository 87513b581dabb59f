"""syscall_latency: time from syscall entry to exit, by family.

Attaches to the raw tracepoints ``raw_syscalls:sys_enter`` and ``sys_exit``
(``syscall_latency.bpf.c``); the start time is task-local storage.
Emits ``syscall_latency{op}`` (histogram, nanoseconds).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rezolus_agent.sampler import BpfSampler, BpfSpec, raw
from rezolus_agent.syscalls import FAMILIES, fill_family_table
from rezolus_agent.wiring import Histograms, each

if TYPE_CHECKING:
    from rezolus_agent.bpfload import BpfMaps


class SyscallLatency(BpfSampler):
    """Histograms of syscall latency, one per family."""

    name = "syscall_latency"
    bpf = BpfSpec(
        hooks=(
            raw("sys_enter", "syscall_latency__sys_enter"),
            raw("sys_exit", "syscall_latency__sys_exit"),
        ),
        maps=("syscall_latency_family", "syscall_latency"),
        metrics=(
            Histograms("syscall_latency", each("syscall_latency", "nanoseconds", "Syscall latency, entry to exit.",
                                               "op", FAMILIES)),
        ),
    )

    def attach(self, maps: BpfMaps) -> None:
        """Fill the syscall → family table, then wire the histograms."""
        fill_family_table(maps.array("syscall_latency_family"))
        super().attach(maps)


SAMPLER = SyscallLatency
