"""scheduler_runqueue against bpftrace on the same tracepoints and against /proc/<pid> counters."""

from __future__ import annotations

import pytest

from rezolus_core import histogram
from rezolus_core.bus import ZmqSubscriber
from sched_workloads import Workload, agent_config, bpftrace_histogram, bucket_index_bpftrace, hist_delta
from support.live import Bpftrace, cgroup, cgroup_dir, family_total, series_values, settle, wait_for_series

pytestmark = pytest.mark.usefixtures("root_bpf")

# Host-wide reference over the same tracepoints, keyed by pid (the agent keys by
# task storage and the CPU's row): a wake-up or a preempted switch-out stamps
# the task as queued, a sleeping switch-out clears the stamp, a switch-in ends it.
REFERENCE = (
    "tracepoint:sched:sched_wakeup, tracepoint:sched:sched_wakeup_new { @q[args->pid] = nsecs; } "
    "tracepoint:sched:sched_switch { "
    "  if (args->prev_pid != 0) { "
    "    if (args->prev_state == 0 || args->prev_state == 256) { @q[args->prev_pid] = nsecs; } "
    "    else { delete(@q[args->prev_pid]); } "
    "    if (@r[args->prev_pid]) { "
    + bucket_index_bpftrace("nsecs - @r[args->prev_pid]", "$i")
    + " @running[$i] = count(); delete(@r[args->prev_pid]); } "
    "    @o[args->prev_pid] = nsecs; "
    "  } "
    "  if (args->next_pid != 0) { "
    "    @r[args->next_pid] = nsecs; "
    "    if (@q[args->next_pid]) { "
    + bucket_index_bpftrace("nsecs - @q[args->next_pid]", "$j")
    + " @runq[$j] = count(); @wait[args->next_pid] = sum(nsecs - @q[args->next_pid]); delete(@q[args->next_pid]); } "
    "    if (@o[args->next_pid]) { "
    + bucket_index_bpftrace("nsecs - @o[args->next_pid]", "$k")
    + " @offcpu[$k] = count(); delete(@o[args->next_pid]); } "
    "  } "
    "} "
    "END { clear(@q); clear(@r); clear(@o); }"
)

HISTOGRAMS = {"scheduler_runqueue_latency": "runq", "scheduler_running": "running", "scheduler_offcpu": "offcpu"}


def tracked(name: str):
    """Predicate: the agent publishes this cgroup's scheduler series."""
    return lambda values: any(n == "cgroup_cpu_usage" and ("name", name) in labels for n, labels in values)


def test_histograms_match_bpftrace_within_one_bucket(agent_factory, bpftrace, tmp_path) -> None:
    """Runqueue latency, running and off-CPU p50/p99 agree with bpftrace over the same window within one bucket."""
    agent = agent_factory(interval="100ms", config=agent_config(tmp_path))
    sub = ZmqSubscriber(agent.endpoint)
    with cgroup("rzsched") as group:
        wait_for_series(sub, tracked(cgroup_dir(group.path)))
        trace = Bpftrace(bpftrace, REFERENCE)
        before = series_values(settle(sub, 2))
        work = Workload(group, 4, ["4000", "300", "500"], cpus={0})
        work.wait_parked()
        work.finish()
        after = series_values(settle(sub, 3))
        output = trace.stop()
    sub.close()
    for metric, ref_name in HISTOGRAMS.items():
        got = hist_delta(before, after, (metric, ()))
        want = bpftrace_histogram(output, ref_name)
        agent_idx = histogram.percentile_indices(got, [50.0, 99.0])
        ref_idx = histogram.percentile_indices(want, [50.0, 99.0])
        print(f"{metric}: agent n={histogram.total(got)} idx={agent_idx} "
              f"bpftrace n={histogram.total(want)} idx={ref_idx}")
        assert histogram.total(want) > 10000
        for a, b in zip(agent_idx, ref_idx, strict=True):
            assert a is not None
            assert b is not None
            assert abs(a - b) <= 1, metric
