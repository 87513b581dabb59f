"""scheduler_runqueue: runqueue latency, running and off-CPU time, context switches.

Attaches to the raw tracepoints ``sched_switch``, ``sched_wakeup`` and
``sched_wakeup_new`` (``bpf/scheduler_runqueue.bpf.c``).
Emits ``scheduler_runqueue_latency``, ``scheduler_running``, ``scheduler_offcpu``
(histograms, nanoseconds), ``scheduler_context_switch{kind}`` (counter), and per
cgroup ``cgroup_scheduler_context_switch{kind,name}``, ``cgroup_cpu_usage{name}``
and ``cgroup_scheduler_runqueue_wait{name}`` (counters) for up to ``max_cgroups``
cgroups.  Values are recorded when a task leaves the CPU (see the BPF source).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rezolus_agent import btf
from rezolus_agent.cgroups import CgroupSeries
from rezolus_agent.sampler import BpfSpec, Hook, Sampler, SamplerUnavailable
from rezolus_core.histogram import layout

if TYPE_CHECKING:
    from rezolus_agent.bpfload import BpfMaps
    from rezolus_agent.series import FrameBuilder, SeriesRegistry

KINDS = ("involuntary", "voluntary")
HISTOGRAMS = (
    ("scheduler_runqueue_latency",
     "Time a task waited runnable on a runqueue before it ran (wake-up or preemption to switch-in)."),
    ("scheduler_running", "Time a task ran on a CPU before it was switched out."),
    ("scheduler_offcpu", "Time a task spent off CPU, from switch-out to its next switch-in."),
)
CGROUP_ROW = 8
SWITCH_ARGS = 4  # preempt, prev, next, prev_state


def _cgroup_series(reg: SeriesRegistry, labels: dict[str, str]) -> list[int]:
    """Series ids for one cgroup, in the order of its BPF row."""
    return [
        *(
            reg.counter("cgroup_scheduler_context_switch", {**labels, "kind": k}, "switches",
                        "Context switches away from tasks of a cgroup, by kind.")
            for k in KINDS
        ),
        reg.counter("cgroup_cpu_usage", labels, "nanoseconds",
                    "On-CPU time of the tasks of a cgroup, from sched_switch."),
        reg.counter("cgroup_scheduler_runqueue_wait", labels, "nanoseconds",
                    "Time tasks of a cgroup waited runnable on a runqueue."),
    ]


def check_switch_args() -> None:
    """Refuse kernels whose raw sched_switch lacks prev_state (before 5.18): the kinds would be garbage."""
    try:
        count = btf.kernel().raw_tracepoint_args("sched_switch")
    except btf.BtfError as exc:
        raise SamplerUnavailable(f"cannot check sched_switch's arguments: {exc}") from exc
    if count < SWITCH_ARGS:
        raise SamplerUnavailable(f"raw sched_switch passes {count} arguments; prev_state (kernel 5.18+) is needed")


class SchedulerRunqueue(Sampler):
    """Scheduler latency histograms and context switches, host-wide and per cgroup."""

    name = "scheduler_runqueue"
    bpf = BpfSpec(
        source="scheduler_runqueue.bpf.c",
        hooks=(
            Hook("raw_tracepoint", "sched_switch", "scheduler_runqueue__switch"),
            Hook("raw_tracepoint", "sched_wakeup", "scheduler_runqueue__wakeup"),
            Hook("raw_tracepoint", "sched_wakeup_new", "scheduler_runqueue__wakeup"),
        ),
        maps=("scheduler_counters", "scheduler_hist", "scheduler_cgroup_slot", "scheduler_cgroup_gen",
              "cgroup_scheduler"),
    )

    def options(self) -> None:
        """``max_cgroups`` (default 1024) and ``max_waking`` (wake-up stamps in flight, default 8192)."""
        self.max_cgroups = self.ctx.options.integer("max_cgroups", 1024, minimum=1, maximum=65536)
        self.max_waking = self.ctx.options.integer("max_waking", 8192, minimum=64, maximum=1 << 20)

    def cflags(self) -> tuple[str, ...]:
        """Map sizes from the configuration."""
        return (f"-DSCHEDULER_MAX_CGROUPS={self.max_cgroups}", f"-DSCHEDULER_MAX_WAKING={self.max_waking}")

    def start(self, maps: BpfMaps | None) -> None:
        """Register host series and the per-cgroup slot table."""
        if maps is None:
            raise SamplerUnavailable("BPF is not available")
        check_switch_args()
        reg = self.ctx.registry
        cpus = self.ctx.cpus
        self._counts = maps.array("scheduler_counters").reshape(cpus, -1)[:, : len(KINDS)]
        self._count_ids = np.array(
            [reg.counter("scheduler_context_switch", {"kind": k}, "switches",
                         "Context switches away from a task (not the idle task), by kind.") for k in KINDS],
            dtype=np.uint32,
        )
        self._hist = maps.array("scheduler_hist").reshape(cpus, len(HISTOGRAMS), layout().buckets)
        self._hist_ids = [reg.histogram(name, None, "nanoseconds", text) for name, text in HISTOGRAMS]
        self._cgroups = CgroupSeries.create(
            self, hash_fd=maps.fds["scheduler_cgroup_slot"], rows=maps.array("cgroup_scheduler"), width=CGROUP_ROW,
            capacity=self.max_cgroups, make=_cgroup_series, generation=maps.array("scheduler_cgroup_gen"),
        )

    def sample(self, out: FrameBuilder) -> None:
        """Sum per-CPU rows and histograms; emit the tracked cgroups."""
        out.counters(self._count_ids, self._counts.sum(axis=0, dtype=np.uint64))
        totals = self._hist.sum(axis=0, dtype=np.uint64)
        for sid, row in zip(self._hist_ids, totals, strict=True):
            out.histogram(sid, row)
        if self._cgroups is not None:
            self._cgroups.sample(out)


SAMPLER = SchedulerRunqueue
