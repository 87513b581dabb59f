"""The agent's own BPF cost from the kernel's program statistics, and the sysctl it leaves as it found it.

The agent turns statistics on with BPF_ENABLE_STATS, a hold the kernel drops
when the fd closes or the process dies: the kernel.bpf_stats_enabled sysctl
(which shows only what was written to it) is never written, so it reads the
same before, during and after the agent, whatever signal ends it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.live import attached, family_total, series_values, settle

pytestmark = pytest.mark.usefixtures("root_bpf")

SYSCTL = Path("/proc/sys/kernel/bpf_stats_enabled")


def stats_enabled() -> int:
    """The current value of kernel.bpf_stats_enabled."""
    return int(SYSCTL.read_text(encoding="ascii"))


def wait_stats(value: int, timeout: float = 10.0) -> None:
    """Poll until the sysctl reads ``value``."""
    deadline = time.monotonic() + timeout
    while stats_enabled() != value:
        assert time.monotonic() < deadline, f"kernel.bpf_stats_enabled stayed {stats_enabled()}, expected {value}"


def config(tmp_path: Path, *, stats: bool | None = True) -> Path:
    """Only syscall_counts (its sys_enter program runs exactly once per syscall); statistics on unless told."""
    path = tmp_path / "agent.toml"
    general = "" if stats is None else f"[general]\nbpf_stats = {str(stats).lower()}\n"
    path.write_text(f"{general}[defaults]\nenabled = false\n[samplers.syscall_counts]\nenabled = true\n",
                    encoding="utf-8")
    return path


def test_statistics_are_off_by_default(subscribe, agent_factory, tmp_path) -> None:
    """Without bpf_stats in the config no rezolus_bpf_* series exist (statistics slow every BPF program)."""
    agent = agent_factory(interval="100ms", config=config(tmp_path, stats=None))
    sub = subscribe(agent.endpoint)
    attached(sub)
    values = series_values(settle(sub, 2))
    assert family_total(values, "syscall") > 0
    assert not [key for key in values if key[0].startswith("rezolus_bpf_")]


def test_run_count_equals_the_syscalls_counted_and_sysctl_is_restored(subscribe, agent_factory, tmp_path) -> None:
    """rezolus_bpf_run_count of sys_enter equals the syscall counter (1 %); the sysctl is unchanged after SIGTERM."""
    old = stats_enabled()
    agent = agent_factory(interval="100ms", config=config(tmp_path))
    sub = subscribe(agent.endpoint)
    attached(sub)
    before = series_values(settle(sub, 1))
    assert stats_enabled() == old
    subprocess.run([sys.executable, "-c", "import os\nfor _ in range(100000): os.getppid()"], check=True)
    after = series_values(settle(sub, 2))
    labels = {"sampler": "syscall_counts", "hook": "sys_enter"}
    runs = family_total(after, "rezolus_bpf_run_count", **labels) - family_total(
        before, "rezolus_bpf_run_count", **labels)
    run_ns = family_total(after, "rezolus_bpf_run_time", **labels) - family_total(
        before, "rezolus_bpf_run_time", **labels)
    syscalls = family_total(after, "syscall") - family_total(before, "syscall")
    print(f"runs={runs} syscalls={syscalls} run_time={run_ns} ns ({run_ns / max(runs, 1):.1f} ns/run)")
    assert syscalls >= 100000
    assert abs(runs - syscalls) <= 0.01 * syscalls
    assert run_ns > 0
    agent.proc.send_signal(signal.SIGTERM)
    agent.proc.wait(timeout=15)
    wait_stats(old)


def test_sysctl_is_restored_when_the_agent_is_killed(subscribe, agent_factory, tmp_path) -> None:
    """Statistics run while the sysctl is untouched; SIGKILL leaves it as it was (the kernel drops the hold)."""
    old = stats_enabled()
    agent = agent_factory(interval="100ms", config=config(tmp_path))
    sub = subscribe(agent.endpoint)
    attached(sub)
    first = series_values(settle(sub, 1))
    later = series_values(settle(sub, 2))
    labels = {"sampler": "syscall_counts", "hook": "sys_enter"}
    assert family_total(later, "rezolus_bpf_run_time", **labels) > family_total(first, "rezolus_bpf_run_time", **labels)
    assert stats_enabled() == old
    agent.proc.kill()
    agent.proc.wait(timeout=15)
    wait_stats(old)
