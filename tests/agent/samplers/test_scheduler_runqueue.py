"""scheduler_runqueue against bpftrace on the same tracepoints and against /proc/<pid> counters."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from bracket import Bracket, Totals
from sched_workloads import (
    GATE,
    AttachedBpftrace,
    Workload,
    agent_config,
    bpftrace_histogram,
    bucket_index_bpftrace,
    group,
    hist_delta,
    mark,
)

from rezolus_agent.cgroup_table import CGROUP_HIST_GROUPING_POWER
from rezolus_core import histogram
from support.live import attached, cgroup_dir, family_total, series_values, settle

pytestmark = pytest.mark.usefixtures("root_bpf")

# Host-wide reference over the same tracepoints, keyed by pid (the agent keys by
# task storage and the CPU's row): a wake-up or a preempted switch-out stamps
# the task as queued, a sleeping switch-out clears the stamp, a switch-in ends it.
REFERENCE = GATE + (
    "tracepoint:sched:sched_wakeup, tracepoint:sched:sched_wakeup_new { @q[args->pid] = nsecs; } "
    "tracepoint:sched:sched_switch { "
    "  $now = nsecs; "
    "  if (args->prev_pid != 0) { "
    "    if (args->prev_state == 0 || args->prev_state == 256) { @q[args->prev_pid] = $now; } "
    "    else { delete(@q[args->prev_pid]); } "
    "    if (@r[args->prev_pid]) { "
    + bucket_index_bpftrace("$now - @r[args->prev_pid]", "$i")
    + " if (@on) { @running[$i] = count(); } @oncpu[args->prev_pid] = sum($now - @r[args->prev_pid]); "
    "      delete(@r[args->prev_pid]); } "
    "    @o[args->prev_pid] = $now; "
    "  } "
    "  if (args->next_pid != 0) { "
    "    @r[args->next_pid] = $now; "
    "    if (@q[args->next_pid]) { "
    + bucket_index_bpftrace("$now - @q[args->next_pid]", "$j")
    + " if (@on) { @runq[$j] = count(); if (@cg[args->next_pid]) { @cgrunq[$j] = count(); } } "
    "      @wait[args->next_pid] = sum($now - @q[args->next_pid]); delete(@q[args->next_pid]); } "
    "    if (@o[args->next_pid]) { "
    + bucket_index_bpftrace("$now - @o[args->next_pid]", "$k")
    + " if (@on) { @offcpu[$k] = count(); if (@cg[args->next_pid]) { @cgoffcpu[$k] = count(); } } "
    "      delete(@o[args->next_pid]); } "
    "  } "
    "} "
    "tracepoint:sched:sched_process_free { delete(@q[args->pid]); delete(@r[args->pid]); delete(@o[args->pid]); "
    "  delete(@cg[args->pid]); } "
    "END { clear(@q); clear(@r); clear(@o); clear(@cg); }"
)


def reference(cgroup_path: Path) -> str:
    """REFERENCE, plus per-cgroup runqueue and off-CPU histograms of tasks seen running in ``cgroup_path``."""
    member = (
        f'tracepoint:sched:sched_switch /cgroup == cgroupid("{cgroup_path}")/ {{ @cg[args->prev_pid] = 1; }} '
    )
    return member + REFERENCE

HISTOGRAMS = {"scheduler_runqueue_latency": "runq", "scheduler_running": "running", "scheduler_offcpu": "offcpu"}
CGROUP_HISTOGRAMS = {"cgroup_scheduler_runqueue_latency": "cgrunq", "cgroup_scheduler_offcpu": "cgoffcpu"}
# Percentiles are compared with one fixed tolerance: the agent's bucket at p must
# lie within one bucket of bpftrace's buckets at p -/+ this many points.
PERCENTILE_POINTS = 0.5


def assert_same_distribution(metric: str, got, want, grouping_power: int) -> None:
    """Event counts within 1 %, then p50/p99 within one bucket (of ``grouping_power``'s layout)."""
    got = histogram.downsample(got, grouping_power)
    want = histogram.downsample(want, grouping_power)
    n_got, n_want = histogram.total(got), histogram.total(want)
    print(f"{metric}: agent n={n_got} p50/p99 buckets {histogram.percentile_indices(got, [50.0, 99.0])}, "
          f"bpftrace n={n_want} {histogram.percentile_indices(want, [50.0, 99.0])}")
    assert n_want > 1000, metric
    assert abs(n_got - n_want) <= 0.01 * n_want, (metric, n_got, n_want)
    for p in (50.0, 99.0):
        (agent_idx,) = histogram.percentile_indices(got, [p])
        low, high = histogram.percentile_indices(want, [p - PERCENTILE_POINTS, min(100.0, p + PERCENTILE_POINTS)])
        assert agent_idx is not None
        assert low is not None
        assert high is not None
        assert low - 1 <= agent_idx <= high + 1, (metric, p, agent_idx, low, high)


def test_histograms_match_bpftrace_within_one_bucket(subscribe, agent_factory, bpftrace, tmp_path) -> None:
    """Host-wide and one cgroup's scheduler histograms agree with bpftrace: counts within 1 %, p50/p99 within a bucket.

    The cgroup's runqueue and off-CPU histograms are compared in their own,
    coarser layout (grouping power 2).
    """
    agent = agent_factory(interval="100ms", config=agent_config(tmp_path))
    sub = subscribe(agent.endpoint)
    attached(sub)
    with group("rzsched") as sched_group:
        name = cgroup_dir(sched_group.path)
        trace = AttachedBpftrace(bpftrace, reference(sched_group.path))
        # bpftrace sees an off-CPU period only if it began after attaching; give it
        # a 2 s lead (20 frames) so periods up to 2 s that end in the window are in
        # both.  It counts only between the marks, made as each frame arrives.
        before = series_values(settle(sub, 20))
        mark(on=True)
        work = Workload(sched_group, 4, ["4000", "300", "500"], cpus={0})
        work.wait_parked("ready")
        work.go()
        work.wait_parked()
        work.finish()
        after = series_values(settle(sub, 3))
        mark(on=False)
        output = trace.stop()
    for metric, ref_name in HISTOGRAMS.items():
        assert_same_distribution(metric, hist_delta(before, after, (metric, ())), bpftrace_histogram(output, ref_name),
                                 histogram.GROUPING_POWER)
    for metric, ref_name in CGROUP_HISTOGRAMS.items():
        key = (metric, (("name", name),))
        assert_same_distribution(metric, hist_delta(before, after, key), bpftrace_histogram(output, ref_name),
                                 CGROUP_HIST_GROUPING_POWER)


def steal_ns() -> dict[int, int]:
    """Stolen time per CPU from /proc/stat, in nanoseconds."""
    found = {}
    tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    for line in Path("/proc/stat").read_text(encoding="ascii").splitlines():
        fields = line.split()
        if fields[0].startswith("cpu") and fields[0][3:].isdigit():
            found[int(fields[0][3:])] = int(fields[8]) * tick
    return found


def cgroup_counter(values, metric: str, name: str, **labels: str) -> int:
    """One cgroup's counter (summed over any other labels)."""
    return family_total(values, metric, name=name, **labels)


@dataclass
class TwoGroups:
    """What one run of the spinners (CPU 0) and the sleepers (CPU 1) left."""

    names: dict[str, str]
    before: dict
    after: dict
    proc: dict[str, dict[str, int]]
    stolen: dict[str, int]
    bracket: dict[str, Totals]


def run_two_groups(sub, reference: Bracket) -> TwoGroups:
    """Run the spinners and the sleepers once, between two frames.

    Two CPU-bound processes share CPU 0 (involuntary switches, ~1 s of CPU
    each); four sleepers on CPU 1 wake 2000 times each (voluntary switches,
    little CPU).
    """
    with group("rzspin") as spin_group, group("rzsleep") as sleep_group:
        spinners = Workload(spin_group, 2, ["1", "1000000", "0"], cpus={0})
        sleepers = Workload(sleep_group, 4, ["2000", "20", "200"], cpus={1})
        works = {"spin": spinners, "sleep": sleepers}
        for work in works.values():
            work.wait_parked("ready")
        start = {label: work.status() for label, work in works.items()}
        steal_start = steal_ns()
        before = series_values(settle(sub, 2))
        bracket_start = {label: reference.totals(work.pids) for label, work in works.items()}
        for work in works.values():
            work.go()
        for work in works.values():
            work.wait_parked()
        end = {label: work.status() for label, work in works.items()}
        steal = steal_ns()
        after = series_values(settle(sub, 3))
        bracket = {label: reference.totals(work.pids) - bracket_start[label] for label, work in works.items()}
        for work in works.values():
            work.finish()
        return TwoGroups(
            names={"spin": cgroup_dir(spin_group.path), "sleep": cgroup_dir(sleep_group.path)},
            before=before,
            after=after,
            proc={label: {k: end[label][k] - start[label][k] for k in start[label]} for label in works},
            stolen={label: steal[cpu] - steal_start[cpu] for label, cpu in (("spin", 0), ("sleep", 1))},
            bracket=bracket,
        )


def test_two_cgroups_match_proc_and_bracketing_programs(subscribe, agent_factory, tmp_path) -> None:
    """Per-cgroup switches match /proc/<pid>/status and lie, with on-CPU time and runqueue wait, inside a bracket.

    The bracket (``bracket.Bracket``) reads the clock just before and just
    after the agent on every event, so each of the agent's sums must lie
    within its bounds exactly; its count of waits must equal the agent's.
    """
    reference = Bracket()
    try:
        agent = agent_factory(interval="100ms", config=agent_config(tmp_path))
        sub = subscribe(agent.endpoint)
        attached(sub)
        reference.attach_late()
        measured = run_two_groups(sub, reference)
        disorder = reference.disorder()
    finally:
        reference.close()
    assert disorder == 0
    for label, name in measured.names.items():
        before, after, bounds = measured.before, measured.after, measured.bracket[label]
        got = {
            kind: cgroup_counter(after, "cgroup_scheduler_context_switch", name, kind=kind)
            - cgroup_counter(before, "cgroup_scheduler_context_switch", name, kind=kind)
            for kind in ("voluntary", "involuntary")
        }
        oncpu = cgroup_counter(after, "cgroup_cpu_usage", name) - cgroup_counter(before, "cgroup_cpu_usage", name)
        wait = cgroup_counter(after, "cgroup_scheduler_runqueue_wait", name) - cgroup_counter(
            before, "cgroup_scheduler_runqueue_wait", name)
        latency = hist_delta(before, after, ("cgroup_scheduler_runqueue_latency", (("name", name),)))
        waits = int(histogram.total(latency))
        proc = measured.proc[label]
        print(f"{label}: agent switches={got} oncpu={oncpu} wait={wait} waits={waits}; /proc={proc}; "
              f"bracket {bounds}; stolen on its CPU {measured.stolen[label]} ns")
        assert got == {kind: proc[kind] for kind in got}
        assert waits == bounds.waits
        assert bounds.wait_lo <= wait <= bounds.wait_hi
        assert bounds.on_lo <= oncpu <= bounds.on_hi
        # The kernel's sum_exec_runtime starts at its rq clock, which can lag
        # a switch by microseconds, and leaves out stolen time (/proc/stat's,
        # in USER_HZ ticks: one more tick for its granularity).
        switches = sum(got.values())
        tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
        assert abs(oncpu - proc["oncpu"]) <= 0.01 * proc["oncpu"] + 5_000 * switches + measured.stolen[label] + tick
    proc = measured.proc
    # Each round's 200 us sleep blocks unless its timer fires before the sleeper reaches
    # schedule() (preempted by another sleeper after arming it): the kernel then skips the
    # switch, so a few rounds in 8,000 may not count; the agent's counts equal /proc's above.
    assert proc["sleep"]["voluntary"] >= 0.99 * 4 * 2000
    # The spinners run until preempted, the sleepers ~20 us per wake-up: per
    # switch, the spinners' cgroup must hold far longer runs.
    per_switch = {k: proc[k]["oncpu"] / (proc[k]["voluntary"] + proc[k]["involuntary"]) for k in proc}
    assert per_switch["spin"] > 10 * per_switch["sleep"]
    assert proc["sleep"]["voluntary"] > 100 * proc["spin"]["voluntary"]
