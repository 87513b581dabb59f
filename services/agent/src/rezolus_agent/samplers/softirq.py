"""softirq: softirq entries and time per CPU and kind.

Attaches to the raw tracepoints ``irq:softirq_entry`` and ``irq:softirq_exit``
(``bpf/softirq.bpf.c``).  Emits ``softirq{kind,id}`` (counter, softirqs;
counted at entry like /proc/softirqs) and ``softirq_time{kind,id}`` (counter,
nanoseconds from entry to exit, including hard interrupts taken meanwhile).
A softirq running when the agent attaches is counted from its next entry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rezolus_agent.sampler import BpfSpec, Hook, Sampler, SamplerUnavailable

if TYPE_CHECKING:
    from rezolus_agent.bpfload import BpfMaps
    from rezolus_agent.series import FrameBuilder

# Kernel softirq vectors in vector-number order (include/linux/interrupt.h).
KINDS = (
    "hi",
    "timer",
    "net_tx",
    "net_rx",
    "block",
    "irq_poll",
    "tasklet",
    "sched",
    "hrtimer",
    "rcu",
)
ROW = 24


class Softirq(Sampler):
    """Per-CPU softirq counts and time by kind."""

    name = "softirq"
    bpf = BpfSpec(
        source="softirq.bpf.c",
        hooks=(
            Hook("raw_tracepoint", "softirq_entry", "softirq__entry"),
            Hook("raw_tracepoint", "softirq_exit", "softirq__exit"),
        ),
        maps=("softirq",),
    )

    def start(self, maps: BpfMaps | None) -> None:
        """Register one count and one time series per CPU and kind."""
        if maps is None:
            raise SamplerUnavailable("BPF is not available")
        cpus = self.ctx.cpus
        rows = maps.array("softirq").reshape(cpus, ROW)
        kinds = len(KINDS)
        self._values = rows[:, : 2 * kinds]
        reg = self.ctx.registry
        counts = np.empty((cpus, kinds), dtype=np.uint32)
        times = np.empty((cpus, kinds), dtype=np.uint32)
        for cpu in range(cpus):
            for vec, kind in enumerate(KINDS):
                labels = {"kind": kind, "id": str(cpu)}
                counts[cpu, vec] = reg.counter("softirq", labels, "softirqs", "Softirqs run, by kind and CPU.")
                times[cpu, vec] = reg.counter(
                    "softirq_time",
                    labels,
                    "nanoseconds",
                    "Time spent in softirqs, by kind and CPU.",
                )
        self._ids = np.concatenate([counts, times], axis=1)

    def sample(self, out: FrameBuilder) -> None:
        """Emit every CPU's counts and times."""
        out.counters(self._ids, self._values)


SAMPLER = Softirq
