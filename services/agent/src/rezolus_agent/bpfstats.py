"""The agent's own BPF cost: run count and run time of each loaded program, from the kernel.

Invariants:
- Run-time statistics are on only while the agent holds a ``BPF_ENABLE_STATS``
  fd: the kernel counts holders, so when the agent stops (normally, on
  SIGTERM or killed outright) ``kernel.bpf_stats_enabled`` is back to what it
  was, and a sysctl setting made by an operator is never overwritten.
- Values are the kernel's cumulative ``run_cnt``/``run_time_ns`` of each
  program fd the agent holds, read from ``/proc/self/fdinfo`` (no bpftool):
  each fdinfo file is opened once and re-read with one ``pread``, at most once
  per ``REFRESH_S`` (50 ms): every frame at intervals of 50 ms and more; at
  shorter intervals frames repeat the last read, so a 10 ms agent does not
  make thousands of reads a second to time itself.
- Hooks of several samplers on one tracepoint are one program, so its series
  carry ``sampler`` = those samplers joined by ``+`` and ``hook`` = the
  tracepoint; a sampler alone on its hooks has exact series of its own.
- If statistics cannot be enabled, no series are published (zeros would lie).
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import numpy as np

from rezolus_agent import bpfsys

if TYPE_CHECKING:
    from rezolus_agent.bpfload import Program
    from rezolus_agent.series import FrameBuilder, SeriesRegistry


REFRESH_S = 0.05


class BpfStats:
    """Series of every loaded program's kernel run statistics."""

    def __init__(self, registry: SeriesRegistry, programs: list[Program]) -> None:
        self.programs = list(programs)
        self._fd = bpfsys.enable_stats() if self.programs else -1
        ids = []
        for program in self.programs:
            labels = {"sampler": "+".join(program.samplers), "hook": program.hook}
            ids.append((
                registry.counter("rezolus_bpf_run_count", labels, "runs",
                                 "Times the kernel ran this BPF program of the agent."),
                registry.counter("rezolus_bpf_run_time", labels, "nanoseconds",
                                 "Time the kernel spent running this BPF program of the agent."),
            ))
        self._ids = np.array(ids, dtype=np.uint32).reshape(-1)
        self._infos = [bpfsys.open_prog_info(p.fd) for p in self.programs]
        self._values: list[int] = []
        self._read_at = -REFRESH_S

    def sample(self, out: FrameBuilder) -> None:
        """Add each program's cumulative run count and run time."""
        if not self.programs:
            return
        now = time.monotonic()
        if now - self._read_at >= REFRESH_S:
            self._values = [v for info in self._infos for v in bpfsys.prog_stats(info)]
            self._read_at = now
        out.counters(self._ids, self._values)

    def close(self) -> None:
        """Give up the statistics (the kernel restores its previous setting when no holder is left)."""
        for info in self._infos:
            os.close(info)
        self._infos = []
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
