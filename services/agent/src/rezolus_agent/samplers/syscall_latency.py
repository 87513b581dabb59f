"""syscall_latency: time from syscall entry to exit, by family.

Attaches to the raw tracepoints ``raw_syscalls:sys_enter`` and ``sys_exit``
(``bpf/syscall_latency.bpf.c``); the start time is task-local storage.
Emits ``syscall_latency{op}`` (histogram, nanoseconds).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rezolus_agent.sampler import BpfSpec, Hook, Sampler, SamplerUnavailable
from rezolus_agent.syscalls import FAMILIES, family_table
from rezolus_core.histogram import layout

if TYPE_CHECKING:
    from rezolus_agent.bpfload import BpfMaps
    from rezolus_agent.series import FrameBuilder


class SyscallLatency(Sampler):
    """Histograms of syscall latency, one per family."""

    name = "syscall_latency"
    bpf = BpfSpec(
        source="syscall_latency.bpf.c",
        hooks=(
            Hook("raw_tracepoint", "sys_enter", "syscall_latency__sys_enter"),
            Hook("raw_tracepoint", "sys_exit", "syscall_latency__sys_exit"),
        ),
        maps=("syscall_latency_family", "syscall_latency"),
    )

    def start(self, maps: BpfMaps | None) -> None:
        """Fill the family table and register one histogram per family."""
        if maps is None:
            raise SamplerUnavailable("BPF is not available")
        try:
            families = np.asarray(family_table(), dtype=np.uint64)
        except FileNotFoundError as exc:
            raise SamplerUnavailable(str(exc)) from exc
        maps.array("syscall_latency_family")[: families.size] = families
        buckets = layout().buckets
        self._hist = maps.array("syscall_latency").reshape(self.ctx.cpus, len(FAMILIES), buckets)
        reg = self.ctx.registry
        self._ids = [
            reg.histogram("syscall_latency", {"op": f}, "nanoseconds", "Syscall latency, entry to exit.")
            for f in FAMILIES
        ]

    def sample(self, out: FrameBuilder) -> None:
        """Sum the per-CPU histograms."""
        totals = self._hist.sum(axis=0, dtype=np.uint64)
        for sid, row in zip(self._ids, totals, strict=True):
            out.histogram(sid, row)


SAMPLER = SyscallLatency
