"""cpu_migrations and cpu_tlb_flush against bpftrace on the same tracepoints and window."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from sched_workloads import FLIP, GATE, AttachedBpftrace, Workload, agent_config, bpftrace_map, group, mark

from support.live import attached, cgroup_dir, family_total, series_values, settle

pytestmark = pytest.mark.usefixtures("root_bpf")

REASONS = ("task_switch", "remote_shootdown", "local_shootdown", "local_mm_shootdown", "remote_send_ipi",
           "remote_wrong_cpu")

MUNMAP = textwrap.dedent(
    """
    import mmap, sys
    for _ in range(int(sys.argv[1])):
        m = mmap.mmap(-1, 8 * 4096)
        for off in range(0, 8 * 4096, 4096):
            m[off] = 1
        m.close()
    """
)


def delta(before, after, metric: str, **labels: str) -> int:
    """Increase of a counter (summed over matching series) between two frames."""
    return family_total(after, metric, **labels) - family_total(before, metric, **labels)


def test_migrations_pinned_unpinned_match_bpftrace(subscribe, agent_factory, bpftrace, tmp_path) -> None:
    """A pinned cgroup has no migrations, an unpinned one has exactly bpftrace's count; per-CPU totals agree."""
    agent = agent_factory(interval="100ms", config=agent_config(tmp_path))
    sub = subscribe(agent.endpoint)
    attached(sub)
    script = GATE + (
        "tracepoint:sched:sched_migrate_task { @m[args->pid] = count(); "
        "  if (@on) { @from[args->orig_cpu] = count(); @to[args->dest_cpu] = count(); } }"
    )
    with group("rzpinned") as pinned_group, group("rzfree") as free_group:
        pinned_name, free_name = cgroup_dir(pinned_group.path), cgroup_dir(free_group.path)
        # The pinned processes run and sleep on CPU 0; the free ones hop between
        # CPUs 0 and 1 on every round (sched_setaffinity moves a running task).
        pinned = Workload(pinned_group, 2, ["3000", "200", "300"], cpus={0})
        free = Workload(free_group, 2, ["500"], cpus={0}, script=FLIP)
        for work in (pinned, free):
            work.wait_parked("ready")
        trace = AttachedBpftrace(bpftrace, script)
        before = series_values(settle(sub, 2))
        mark(on=True)
        for work in (pinned, free):
            work.go()
        for work in (pinned, free):
            work.wait_parked()
        after = series_values(settle(sub, 2))
        mark(on=False)
        output = trace.stop()
        for work in (pinned, free):
            work.finish()
    per_pid = bpftrace_map(output, "m")
    got_pinned = delta(before, after, "cgroup_cpu_migration", name=pinned_name)
    got_free = delta(before, after, "cgroup_cpu_migration", name=free_name)
    ref_pinned = sum(per_pid.get(pid, 0) for pid in pinned.pids)
    ref_free = sum(per_pid.get(pid, 0) for pid in free.pids)
    print(f"pinned agent={got_pinned} bpftrace={ref_pinned}; free agent={got_free} bpftrace={ref_free}")
    assert got_pinned == ref_pinned == 0
    # Between the parks every migration of these tasks is in both counts.
    assert got_free == ref_free
    assert ref_free >= 2 * 500
    for direction, ref in (("from", bpftrace_map(output, "from")), ("to", bpftrace_map(output, "to"))):
        for cpu in range(2):
            got = delta(before, after, "cpu_migration", direction=direction, id=str(cpu))
            want = ref.get(cpu, 0)
            print(f"{direction} cpu{cpu}: agent={got} bpftrace={want}")
            # Window edges: the marks follow each frame by a few ms of host activity.
            assert abs(got - want) <= 0.05 * want + 10
    totals = {d: family_total(after, "cpu_migration", direction=d) for d in ("from", "to")}
    assert totals["from"] == totals["to"]


def test_tlb_flushes_match_bpftrace(subscribe, agent_factory, bpftrace, tmp_path) -> None:
    """Per-CPU, per-reason TLB flushes over a munmap workload agree with bpftrace on the same window."""
    agent = agent_factory(interval="100ms", config=agent_config(tmp_path))
    sub = subscribe(agent.endpoint)
    attached(sub)
    script = GATE + "tracepoint:tlb:tlb_flush /@on/ { @f[cpu * 16 + args->reason] = count(); }"
    trace = AttachedBpftrace(bpftrace, script)
    before = series_values(settle(sub, 2))
    mark(on=True)
    subprocess.run([sys.executable, "-c", MUNMAP, "20000"], check=True, timeout=120)
    after = series_values(settle(sub, 2))
    mark(on=False)
    output = trace.stop()
    ref = bpftrace_map(output, "f")
    total = 0
    for cpu in range(2):
        for code, reason in enumerate(REASONS):
            got = delta(before, after, "cpu_tlb_flush", reason=reason, id=str(cpu))
            want = ref.get(cpu * 16 + code, 0)
            total += want
            print(f"cpu{cpu} {reason}: agent={got} bpftrace={want}")
            # Window edges: the marks follow each frame by a few ms of host activity.
            assert abs(got - want) <= 0.02 * want + 50
    assert total >= 20000
