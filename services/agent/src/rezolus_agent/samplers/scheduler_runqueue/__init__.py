"""scheduler_runqueue: runqueue latency, running and off-CPU time, context switches.

Attaches to the raw tracepoints ``sched_switch``, ``sched_wakeup`` and
``sched_wakeup_new`` (``scheduler_runqueue.bpf.c``).
Emits ``scheduler_runqueue_latency``, ``scheduler_running``, ``scheduler_offcpu``
(histograms, nanoseconds), ``scheduler_context_switch{kind}`` (counter), and per
cgroup ``cgroup_scheduler_context_switch{kind,name}``, ``cgroup_cpu_usage{name}``
and ``cgroup_scheduler_runqueue_wait{name}`` (counters), and
``cgroup_scheduler_runqueue_latency{name}`` and ``cgroup_scheduler_offcpu{name}``
(histograms, grouping power 2) for up to ``max_cgroups`` cgroups at once, each
counted from its first switch (the rest under ``name="(overflow)"``).
Values are recorded when a task leaves the CPU (see the BPF source).
Options: ``max_cgroups`` (default 1024), ``max_waking`` (wake-up stamps in
flight, default 8192).
"""

from __future__ import annotations

from rezolus_agent import btf
from rezolus_agent.cgroup_table import table_maps
from rezolus_agent.sampler import BpfSampler, BpfSpec, MapSize, SamplerUnavailable, cgroup_hooks, raw
from rezolus_agent.wiring import CgroupTable, Counters, Histograms, Series, each, one

KINDS = ("involuntary", "voluntary")
SWITCH_ARGS = 4  # preempt, prev, next, prev_state


def switch_args_cflags() -> tuple[str, ...]:
    """Refuse kernels whose raw sched_switch lacks prev_state (before 5.18): the kinds would be garbage."""
    try:
        count = btf.kernel().raw_tracepoint_args("sched_switch")
    except btf.BtfError as exc:
        raise btf.BtfError(f"cannot check sched_switch's arguments: {exc}") from exc
    if count < SWITCH_ARGS:
        raise SamplerUnavailable(f"raw sched_switch passes {count} arguments; prev_state (kernel 5.18+) is needed")
    return ()


class SchedulerRunqueue(BpfSampler):
    """Scheduler latency histograms and context switches, host-wide and per cgroup."""

    name = "scheduler_runqueue"
    bpf = BpfSpec(
        hooks=(
            raw("sched_switch", "scheduler_runqueue__switch"),
            raw("sched_wakeup", "scheduler_runqueue__wakeup"),
            raw("sched_wakeup_new", "scheduler_runqueue__wakeup"),
            *cgroup_hooks("scheduler_runqueue__rmdir"),
        ),
        maps=("scheduler_counters", "scheduler_hist", *table_maps("scheduler"), "cgroup_scheduler",
              "cgroup_scheduler_hist"),
        metrics=(
            Counters("scheduler_counters", each(
                "scheduler_context_switch", "switches",
                "Context switches away from a task (not the idle task), by kind.", "kind", KINDS)),
            Histograms("scheduler_hist", (
                *one("scheduler_runqueue_latency", "nanoseconds",
                     "Time a task waited runnable on a runqueue before it ran (wake-up or preemption to switch-in)."),
                *one("scheduler_running", "nanoseconds", "Time a task ran on a CPU before it was switched out."),
                *one("scheduler_offcpu", "nanoseconds",
                     "Time a task spent off CPU, from switch-out to its next switch-in."),
            )),
            CgroupTable("scheduler", "cgroup_scheduler", width=4, per_cpu=True, hist_map="cgroup_scheduler_hist",
                        hist_series=(
                Series("cgroup_scheduler_runqueue_latency", "nanoseconds",
                       "Runqueue latency of tasks of a cgroup (grouping power 2: 4 buckets per power of two)."),
                Series("cgroup_scheduler_offcpu", "nanoseconds",
                       "Off-CPU time of tasks of a cgroup (grouping power 2: 4 buckets per power of two)."),
            ), series=(
                *each("cgroup_scheduler_context_switch", "switches",
                      "Context switches away from tasks of a cgroup, by kind.", "kind", KINDS),
                Series("cgroup_cpu_usage", "nanoseconds", "On-CPU time of the tasks of a cgroup, from sched_switch."),
                Series("cgroup_scheduler_runqueue_wait", "nanoseconds",
                       "Time tasks of a cgroup waited runnable on a runqueue."),
            )),
        ),
        sizes=(
            MapSize("max_cgroups", 1024, "SCHEDULER_MAX_CGROUPS", minimum=1, maximum=65536),
            MapSize("max_waking", 8192, "SCHEDULER_MAX_WAKING"),
        ),
        btf=switch_args_cflags,
    )


SAMPLER = SchedulerRunqueue
