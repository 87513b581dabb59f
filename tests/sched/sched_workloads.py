"""Workloads, agent configs and bpftrace references for the scheduler sampler tests."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from typing import TYPE_CHECKING

import numpy as np

from rezolus_core import histogram
from rezolus_core.frame import HistogramValue

if TYPE_CHECKING:
    from pathlib import Path

    from numpy.typing import NDArray

    from support.live import Cgroup, SeriesKey

SAMPLERS = ("scheduler_runqueue", "cpu_migrations", "cpu_tlb_flush")

# Each process: N rounds of (spin for SPIN_US, then sleep SLEEP_US); prints
# "done" and blocks on stdin so the test can read its /proc files at rest.
SPIN_SLEEP = textwrap.dedent(
    """
    import sys, time
    rounds, spin, sleep = int(sys.argv[1]), int(sys.argv[2]) / 1e6, int(sys.argv[3]) / 1e6
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


def agent_config(tmp_path: Path, **options: int) -> Path:
    """An agent config that runs only the scheduler samplers (with ``max_cgroups`` etc.)."""
    lines = ["[defaults]", "enabled = false"]
    for name in SAMPLERS:
        lines += [f"[samplers.{name}]", "enabled = true"]
        lines += [f"{key} = {value}" for key, value in options.items() if name != "cpu_tlb_flush"]
    path = tmp_path / "agent.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class Workload:
    """Processes started in a cgroup (optionally pinned) that park when done."""

    def __init__(self, group: Cgroup, count: int, args: list[str], cpus: set[int] | None = None) -> None:
        procs = group.path / "cgroup.procs"

        def setup() -> None:
            if cpus is not None:
                os.sched_setaffinity(0, cpus)
            procs.write_text(str(os.getpid()))

        self.procs = [
            subprocess.Popen([sys.executable, "-c", SPIN_SLEEP, *args], preexec_fn=setup,  # noqa: PLW1509 - joins the cgroup before exec
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            for _ in range(count)
        ]

    @property
    def pids(self) -> list[int]:
        """Process ids."""
        return [p.pid for p in self.procs]

    def wait_parked(self, timeout: float = 120.0) -> None:
        """Wait until every process printed ``done`` (it is then blocked reading stdin)."""
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.strip() == b"done", f"workload {proc.pid} ended early"
            assert time.monotonic() < deadline
        for pid in self.pids:
            _wait_sleeping(pid, deadline)

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
            for line in open(f"/proc/{pid}/status", encoding="ascii"):  # noqa: SIM115, PTH123 - short read
                key, _, value = line.partition(":")
                if key == "voluntary_ctxt_switches":
                    total["voluntary"] += int(value)
                elif key == "nonvoluntary_ctxt_switches":
                    total["involuntary"] += int(value)
            with open(f"/proc/{pid}/schedstat", encoding="ascii") as handle:
                oncpu, run_delay, _ = handle.read().split()
            total["oncpu"] += int(oncpu)
            total["run_delay"] += int(run_delay)
        return total


def _wait_sleeping(pid: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
        if state == "S":
            return
        time.sleep(0.01)
    raise AssertionError(f"{pid} did not block")


def bucket_index_bpftrace(value: str, out: str) -> str:
    """bpftrace statements that set ``out`` to the Rezolus bucket index of ``value``."""
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
    """Dense bucket counts added between two frames."""
    old, new = before[key], after[key]
    assert isinstance(old, HistogramValue)
    assert isinstance(new, HistogramValue)
    diff, reset = histogram.delta(histogram.to_dense(new.indices, new.counts), histogram.to_dense(old.indices, old.counts))
    assert not reset
    return diff
