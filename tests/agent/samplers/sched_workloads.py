"""Workloads, agent configs and bpftrace references for the scheduler sampler tests."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rezolus_core import histogram
from rezolus_core.frame import HistogramValue
from support.live import Bpftrace, cgroup, wait_asleep

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np
    from numpy.typing import NDArray

    from support.live import Cgroup, SeriesKey

SAMPLERS = ("scheduler_runqueue", "cpu_migrations", "cpu_tlb_flush")

# Each process prints "ready" and blocks until it reads a byte from stdin,
# then runs N rounds of (spin for SPIN_US, then sleep SLEEP_US), prints "done"
# and blocks again: the test reads its /proc files at rest, before and after.
SPIN_SLEEP = textwrap.dedent(
    """
    import sys, time
    rounds, spin, sleep = int(sys.argv[1]), int(sys.argv[2]) / 1e6, int(sys.argv[3]) / 1e6
    print("ready", flush=True)
    sys.stdin.buffer.read(1)
    for _ in range(rounds):
        end = time.perf_counter() + spin
        while time.perf_counter() < end:
            pass
        if sleep:
            time.sleep(sleep)
    print("done", flush=True)
    sys.stdin.read()
    """
)


# Like SPIN_SLEEP, but each round moves the process to the other CPU of {0, 1}
# with sched_setaffinity: every round is one migration of a running task.
FLIP = textwrap.dedent(
    """
    import os, sys
    print("ready", flush=True)
    sys.stdin.buffer.read(1)
    for i in range(int(sys.argv[1])):
        os.sched_setaffinity(0, {(i + 1) % 2})
    print("done", flush=True)
    sys.stdin.read()
    """
)


def agent_config(tmp_path: Path, **options: int) -> Path:
    """An agent config that runs only the scheduler samplers (with ``max_cgroups`` etc.)."""
    lines = ["[defaults]", "enabled = false"]
    for name in SAMPLERS:
        lines += [f"[samplers.{name}]", "enabled = true"]
        lines += [f"{key} = {value}" for key, value in options.items() if name != "cpu_tlb_flush"]
    path = tmp_path / "agent.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


_LIVE: list[Workload] = []


def reap() -> None:
    """Kill and collect every workload process still running (after a failed test)."""
    while _LIVE:
        work = _LIVE.pop()
        for proc in work.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()


@contextlib.contextmanager
def group(prefix: str) -> Iterator[Cgroup]:
    """A temporary cgroup whose workload processes are killed before it is removed."""
    with cgroup(prefix) as made:
        try:
            yield made
        finally:
            reap()


class Workload:
    """Processes started in a cgroup (optionally pinned) that park when done."""

    def __init__(self, group: Cgroup, count: int, args: list[str], cpus: set[int] | None = None,
                 script: str = SPIN_SLEEP) -> None:
        procs = group.path / "cgroup.procs"

        def setup() -> None:
            if cpus is not None:
                os.sched_setaffinity(0, cpus)
            procs.write_text(str(os.getpid()))

        self.procs: list[subprocess.Popen[bytes]] = [
            subprocess.Popen([sys.executable, "-c", script, *args], preexec_fn=setup,  # noqa: PLW1509 - joins the cgroup before exec
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            for _ in range(count)
        ]
        _LIVE.append(self)

    @property
    def pids(self) -> list[int]:
        """Process ids."""
        return [p.pid for p in self.procs]

    def wait_parked(self, word: str = "done", timeout: float = 120.0) -> None:
        """Wait until every process printed ``word`` (it is then blocked reading stdin)."""
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.strip() == word.encode(), f"workload {proc.pid} ended early"
            assert time.monotonic() < deadline
        for pid in self.pids:
            wait_asleep(pid, max(0.0, deadline - time.monotonic()))

    def go(self) -> None:
        """Start the rounds (each process must be parked at ``ready``)."""
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(b"g")
            proc.stdin.flush()

    def finish(self) -> None:
        """Let every process exit."""
        for proc in self.procs:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=30)
            if proc.stdout is not None:
                proc.stdout.close()

    def status(self) -> dict[str, int]:
        """Summed voluntary/involuntary switches (/proc/<pid>/status) and schedstat fields."""
        total = {"voluntary": 0, "involuntary": 0, "oncpu": 0, "run_delay": 0}
        for pid in self.pids:
            for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
                key, _, value = line.partition(":")
                if key == "voluntary_ctxt_switches":
                    total["voluntary"] += int(value)
                elif key == "nonvoluntary_ctxt_switches":
                    total["involuntary"] += int(value)
            oncpu, run_delay, _ = Path(f"/proc/{pid}/schedstat").read_text(encoding="ascii").split()
            total["oncpu"] += int(oncpu)
            total["run_delay"] += int(run_delay)
        return total


def bucket_index_bpftrace(value: str, out: str) -> str:
    """Bpftrace statements that set ``out`` to the Rezolus bucket index of ``value``."""
    steps = "".join(
        f"if ($x >= {1 << s}) {{ $x = $x >> {s}; $p = $p + {s}; }} " for s in (32, 16, 8, 4, 2, 1)
    )
    return (
        f"$v = {value}; $x = $v; $p = 0; {steps}"
        f"if ($v < 16) {{ {out} = $v; }} else {{ {out} = ($p - 2) * 8 + (($v - (1 << $p)) >> ($p - 3)); }}"
    )


def bpftrace_histogram(output: str, name: str) -> NDArray[np.uint64]:
    """Dense buckets from bpftrace's ``@name[index]: count`` lines."""
    dense = histogram.empty()
    prefix = f"@{name}["
    for line in output.splitlines():
        if line.startswith(prefix):
            index, count = line[len(prefix):].split("]:")
            dense[int(index)] += int(count)
    return dense


def bpftrace_map(output: str, name: str) -> dict[int, int]:
    """``@name[key]: value`` lines as a dict."""
    prefix = f"@{name}["
    found: dict[int, int] = {}
    for line in output.splitlines():
        if line.startswith(prefix):
            key, value = line[len(prefix):].split("]:")
            found[int(key)] = int(value)
    return found


def hist_delta(before: dict[SeriesKey, int | HistogramValue], after: dict[SeriesKey, int | HistogramValue],
               key: SeriesKey) -> NDArray[np.uint64]:
    """Dense bucket counts added between two frames (a series absent before, e.g. a new cgroup's, started at 0)."""
    new = after[key]
    assert isinstance(new, HistogramValue)
    old = before.get(key)
    assert old is None or isinstance(old, HistogramValue)
    older = histogram.empty() if old is None else histogram.to_dense(old.indices, old.counts)
    diff, reset = histogram.delta(histogram.to_dense(new.indices, new.counts), older)
    assert not reset
    return diff


class AttachedBpftrace(Bpftrace):
    """A bpftrace script whose maps may hold up to 65536 keys (the default 4096 fills up on a busy host)."""

    def __init__(self, binary: str, script: str, timeout: float = 30.0) -> None:
        super().__init__(binary, script, timeout, env={"BPFTRACE_MAP_KEYS_MAX": "65536"})


_MARK_ON, _MARK_OFF = 0x7A7A01, 0x7A7A02
# bpftrace probes that set @on between two marks made by ``mark`` (getpgid of a pid that
# cannot exist), so a reference can stamp from its start but count only in the window.
GATE = (
    f"tracepoint:syscalls:sys_enter_getpgid /args->pid == {_MARK_ON}/ {{ @on = 1; }} "
    f"tracepoint:syscalls:sys_enter_getpgid /args->pid == {_MARK_OFF}/ {{ @on = 0; }} "
)


def mark(on: bool) -> None:
    """Open or close the counting window of a script that includes ``GATE``."""
    try:
        os.getpgid(_MARK_ON if on else _MARK_OFF)
    except ProcessLookupError:
        return
    raise AssertionError("a marker pid exists")
