"""cpu_usage: CPU time per CPU and state.

Reads ``/proc/stat`` (the ``cpuN`` lines, in USER_HZ ticks).
Emits ``cpu_usage{state,id}`` (counter, nanoseconds) for the states user, nice,
system, idle, iowait, irq, softirq, steal, guest, guest_nice.  As in the kernel,
``user`` and ``nice`` include guest time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rezolus_agent.sampler import ProcSampler, SamplerUnavailable

if TYPE_CHECKING:
    from rezolus_agent.series import FrameBuilder

STATES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice")


def read_stat(path: os.PathLike[str] | str) -> dict[int, list[int]]:
    """CPU number → tick counts in STATES order, from a /proc/stat file."""
    cpus: dict[int, list[int]] = {}
    with Path(path).open(encoding="ascii") as handle:
        for line in handle:
            if line.startswith("cpu") and line[3].isdigit():
                fields = line.split()
                ticks = [int(x) for x in fields[1 : 1 + len(STATES)]]
                cpus[int(fields[0][3:])] = ticks + [0] * (len(STATES) - len(ticks))
    return cpus


class CpuUsage(ProcSampler):
    """Per-CPU time by state from /proc/stat."""

    name = "cpu_usage"

    def start(self) -> None:
        """Check the file and register series for the CPUs present."""
        self._path = self.ctx.proc / "stat"
        try:
            cpus = read_stat(self._path)
        except OSError as exc:
            raise SamplerUnavailable(f"cannot read {self._path}: {exc.strerror}") from exc
        self._ns_per_tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
        self._ids: dict[int, np.ndarray] = {}
        for cpu in cpus:
            self._register(cpu)

    def _register(self, cpu: int) -> np.ndarray:
        reg = self.ctx.registry
        ids = np.array(
            [
                reg.counter(
                    "cpu_usage", {"state": s, "id": str(cpu)}, "nanoseconds", "CPU time spent in a state, per CPU."
                )
                for s in STATES
            ],
            dtype=np.uint32,
        )
        self._ids[cpu] = ids
        return ids

    def sample(self, out: FrameBuilder) -> None:
        """Read /proc/stat once and emit every CPU's states."""
        for cpu, ticks in read_stat(self._path).items():
            ids = self._ids.get(cpu)
            if ids is None:
                ids = self._register(cpu)
            out.counters(ids, np.asarray(ticks, dtype=np.uint64) * np.uint64(self._ns_per_tick))


SAMPLER = CpuUsage
