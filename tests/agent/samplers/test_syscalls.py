"""syscall_counts and syscall_latency against bpftrace on the same tracepoints and window."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

from rezolus_agent import syscalls
from rezolus_core import histogram
from rezolus_core.frame import HistogramValue
from support.live import Bpftrace, attached, cgroup, cgroup_dir, family_total, series_values, settle, wait_for_series

pytestmark = pytest.mark.usefixtures("root_bpf")

GETPPID = textwrap.dedent(
    """
    import os, sys
    for _ in range(int(sys.argv[1])):
        os.getppid()
    """
)

SEMTIMEDOP = textwrap.dedent(
    """
    import ctypes, sys
    libc = ctypes.CDLL(None, use_errno=True)
    class SemBuf(ctypes.Structure):
        _fields_ = [("num", ctypes.c_ushort), ("op", ctypes.c_short), ("flg", ctypes.c_short)]
    class TimeSpec(ctypes.Structure):
        _fields_ = [("sec", ctypes.c_long), ("nsec", ctypes.c_long)]
    semid = libc.semget(0, 1, 0o600 | 0o1000)
    assert semid >= 0
    op, timeout = SemBuf(0, -1, 0), TimeSpec(0, int(sys.argv[2]))
    for _ in range(int(sys.argv[1])):
        libc.semtimedop(semid, ctypes.byref(op), 1, ctypes.byref(timeout))
    libc.semctl(semid, 0, 0)
    """
)


def cgroup_tracked(name: str):
    """Predicate: the agent publishes cgroup_syscall series for this cgroup."""
    return lambda values: any(n == "cgroup_syscall" and ("name", name) in labels for n, labels in values)


def test_cgroup_syscalls_match_bpftrace_within_one_percent(subscribe, agent_factory, bpftrace) -> None:
    """Syscalls of a workload in its own cgroup match bpftrace's count of the same cgroup within 1 %."""
    agent = agent_factory(interval="100ms")
    sub = subscribe(agent.endpoint)
    attached(sub)
    calls = 20000
    with cgroup() as group:
        name = cgroup_dir(group.path)
        # Counted from its first syscall: the new cgroup has no series before it.
        before = series_values(settle(sub, 1))
        assert not cgroup_tracked(name)(before)
        host_query_before = family_total(before, "syscall", op="query")
        trace = Bpftrace(
            bpftrace,
            f'tracepoint:raw_syscalls:sys_enter /cgroup == cgroupid("{group.path}")/ {{ @n = count(); }}',
        )
        group.run([sys.executable, "-c", GETPPID, str(calls)])
        after = series_values(settle(sub, 3))
        reference = int(trace.stop().split("@n:")[1].split()[0])
    counted = family_total(after, "cgroup_syscall", name=name) - family_total(before, "cgroup_syscall", name=name)
    query = family_total(after, "cgroup_syscall", name=name, op="query")
    print(f"agent={counted} bpftrace={reference} query={query}")
    assert reference >= calls
    assert abs(counted - reference) <= 0.01 * reference
    assert query >= calls
    assert family_total(after, "syscall", op="query") - host_query_before >= calls


def test_two_cgroups_are_attributed_to_their_names(subscribe, agent_factory) -> None:
    """Two cgroups running different known workloads each get their own count."""
    agent = agent_factory(interval="100ms")
    sub = subscribe(agent.endpoint)
    attached(sub)
    with cgroup("rzsmall") as small, cgroup("rzlarge") as large:
        small_name, large_name = cgroup_dir(small.path), cgroup_dir(large.path)
        small.run([sys.executable, "-c", GETPPID, "3000"])
        large.run([sys.executable, "-c", GETPPID, "30000"])
        values = series_values(settle(sub, 3))
    small_query = family_total(values, "cgroup_syscall", name=small_name, op="query")
    large_query = family_total(values, "cgroup_syscall", name=large_name, op="query")
    print(f"small={small_query} large={large_query}")
    assert 3000 <= small_query < 3000 + 1000
    assert 30000 <= large_query < 30000 + 1000


def test_removed_cgroup_series_stop(subscribe, agent_factory) -> None:
    """A cgroup appears with its first syscall; after it is removed its series are no longer published."""
    agent = agent_factory(interval="100ms")
    sub = subscribe(agent.endpoint)
    attached(sub)
    with cgroup() as group:
        name = cgroup_dir(group.path)
        group.run(["true"])
        wait_for_series(sub, cgroup_tracked(name))
    wait_for_series(sub, lambda values: not cgroup_tracked(name)(values))


@pytest.mark.parametrize("alone", [False, True], ids=["with-syscall_counts", "alone"])
def test_syscall_latency_matches_bpftrace_within_one_bucket(subscribe, agent_factory, bpftrace, tmp_path,
                                                            alone) -> None:
    """p50/p90/p99 of ipc-family latency agree with bpftrace timing the same syscalls host-wide, within one bucket.

    With syscall_counts loaded too, its sys_enter handler writes the entry stamp
    (one task-storage get per syscall); alone, syscall_latency writes its own.
    """
    config = None
    if alone:
        config = tmp_path / "agent.toml"
        config.write_text("[defaults]\nenabled = false\n[samplers.syscall_latency]\nenabled = true\n",
                          encoding="utf-8")
    agent = agent_factory(interval="100ms", config=config)
    sub = subscribe(agent.endpoint)
    attached(sub)
    lay = histogram.layout()
    families = syscalls.family_table()
    ipc = [nr for nr, family in enumerate(families) if syscalls.FAMILIES[family] == "ipc"]
    table = " ".join(f"@ipc[{nr}] = 1;" for nr in ipc)
    script = (
        f"BEGIN {{ {table} }} "
        "tracepoint:raw_syscalls:sys_enter /@ipc[args->id]/ { @s[tid] = nsecs; } "
        'tracepoint:raw_syscalls:sys_exit /@s[tid]/ { printf("lat %d\\n", nsecs - @s[tid]); delete(@s[tid]); }'
    )
    with cgroup() as group:
        trace = Bpftrace(bpftrace, script)
        before = series_values(settle(sub, 1))
        group.run([sys.executable, "-c", SEMTIMEDOP, "1000", "2000000"])
        after = series_values(settle(sub, 2))
        output = trace.stop()
    assert ipc
    latencies = [int(line.split()[1]) for line in output.splitlines() if line.startswith("lat ")]
    assert len(latencies) >= 1000
    old, new = before[("syscall_latency", (("op", "ipc"),))], after[("syscall_latency", (("op", "ipc"),))]
    assert isinstance(old, HistogramValue)
    assert isinstance(new, HistogramValue)
    diff, reset = histogram.delta(
        histogram.to_dense(new.indices, new.counts), histogram.to_dense(old.indices, old.counts)
    )
    assert not reset
    assert histogram.total(diff) >= 1000
    wanted = [50.0, 90.0, 99.0]
    agent_idx = histogram.percentile_indices(diff, wanted)
    reference_idx = histogram.percentile_indices(histogram.from_values(latencies), wanted)
    print(f"agent={agent_idx} bpftrace={reference_idx} bounds={[int(lay.upper[i]) for i in reference_idx if i]}")
    for got, want in zip(agent_idx, reference_idx, strict=True):
        assert got is not None
        assert want is not None
        assert abs(got - want) <= 1
    assert np.all(diff >= 0)
