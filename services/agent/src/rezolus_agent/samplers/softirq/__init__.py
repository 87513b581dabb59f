"""softirq: softirq entries and time per CPU and kind.

Attaches to the raw tracepoints ``irq:softirq_entry`` and ``irq:softirq_exit``
(``softirq.bpf.c``).  Emits ``softirq{kind,id}`` (counter, softirqs;
counted at entry like /proc/softirqs) and ``softirq_time{kind,id}`` (counter,
nanoseconds from entry to exit, including hard interrupts taken meanwhile).
A softirq running when the agent attaches is counted from its next entry.
"""

from __future__ import annotations

from rezolus_agent.sampler import BpfSampler, BpfSpec, raw
from rezolus_agent.wiring import Counters, each

# Kernel softirq vectors in vector-number order (include/linux/interrupt.h).
KINDS = ("hi", "timer", "net_tx", "net_rx", "block", "irq_poll", "tasklet", "sched", "hrtimer", "rcu")


class Softirq(BpfSampler):
    """Per-CPU softirq counts and time by kind."""

    name = "softirq"
    bpf = BpfSpec(
        hooks=(raw("softirq_entry", "softirq__entry"), raw("softirq_exit", "softirq__exit")),
        maps=("softirq",),
        metrics=(
            Counters("softirq", (
                *each("softirq", "softirqs", "Softirqs run, by kind and CPU.", "kind", KINDS),
                *each("softirq_time", "nanoseconds", "Time spent in softirqs, by kind and CPU.", "kind", KINDS),
            ), per_cpu=True),
        ),
    )


SAMPLER = Softirq
