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
from rezolus_agent.samplers._procfile import ProcFile

if TYPE_CHECKING:
    from rezolus_agent.series import FrameBuilder

STATES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice")


def parse_stat(data: bytes) -> dict[int, list[int]]:
    """CPU number → tick counts in STATES order, from the bytes of a /proc/stat file."""
    cpus: dict[int, list[int]] = {}
    width = len(STATES)
    for line in data.split(b"\n"):
        if line.startswith(b"cpu") and line[3:4].isdigit():
            fields = line.split()
            ticks = [int(x) for x in fields[1 : 1 + width]]
            cpus[int(fields[0][3:])] = ticks + [0] * (width - len(ticks))
    return cpus


def read_stat(path: os.PathLike[str] | str) -> dict[int, list[int]]:
    """CPU number → tick counts in STATES order, from a /proc/stat file."""
    return parse_stat(Path(path).read_bytes())


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
        self._ns_per_tick = np.uint64(1_000_000_000 // os.sysconf("SC_CLK_TCK"))
        self._file = ProcFile(self._path)
        self._ids: dict[int, np.ndarray] = {}
        self._grid: tuple[tuple[int, ...], np.ndarray] = ((), np.zeros((0, len(STATES)), dtype=np.uint32))
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
        """Read /proc/stat once and emit every CPU's states in one block."""
        rows = parse_stat(self._file.read())
        present = tuple(rows)
        if present != self._grid[0]:
            ids = [self._ids.get(cpu) for cpu in present]
            grid = [i if i is not None else self._register(cpu) for cpu, i in zip(present, ids, strict=True)]
            self._grid = (present, np.array(grid, dtype=np.uint32).reshape(len(present), len(STATES)))
        out.counters(self._grid[1], np.array(list(rows.values()), dtype=np.uint64) * self._ns_per_tick)

    def close(self) -> None:
        """Release the held file."""
        self._file.close()


SAMPLER = CpuUsage
