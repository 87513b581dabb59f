"""cpu_perf: CPU cycles and instructions per CPU from the hardware PMU.

Opens a perf event group {cycles, instructions} (PERF_TYPE_HARDWARE) on every
online CPU, counting user and kernel.  Emits ``cpu_cycles{id}`` (counter,
cycles) and ``cpu_instructions{id}`` (counter, instructions); IPC is
rate(instructions) / rate(cycles).  When the PMU multiplexes the group, each
interval's increase is scaled by time enabled / time running.  Without a
hardware PMU (e.g. most VMs) the sampler is unavailable with the kernel's
reason.
The perf opener is ``ctx.extra["perf_open"]`` when set (tests inject a fake
reader there), else the real ``_perf.open_group``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rezolus_agent.cpus import online_cpus
from rezolus_agent.sampler import ProcSampler, SamplerUnavailable
from rezolus_agent.samplers import _perf

if TYPE_CHECKING:
    from collections.abc import Callable

    from rezolus_agent.series import FrameBuilder

EVENTS = (
    ("cpu_cycles", "cycles", _perf.PERF_COUNT_HW_CPU_CYCLES),
    ("cpu_instructions", "instructions", _perf.PERF_COUNT_HW_INSTRUCTIONS),
)


class CpuPerf(ProcSampler):
    """Per-CPU hardware cycle and instruction counts."""

    name = "cpu_perf"

    def start(self) -> None:
        """Open one group per online CPU and register the series."""
        opener: Callable[[int, list[tuple[int, int]]], _perf.Group] = self.ctx.extra.get(  # type: ignore[assignment]
            "perf_open", _perf.open_group
        )
        codes = [(_perf.PERF_TYPE_HARDWARE, config) for _, _, config in EVENTS]
        self._groups: list[tuple[int, _perf.Group, _perf.Scaled]] = []
        for cpu in online_cpus(self.ctx.sys) or list(range(self.ctx.cpus)):
            try:
                group = opener(cpu, codes)
            except OSError as exc:
                self.close()
                raise SamplerUnavailable(
                    f"no usable hardware PMU: perf_event_open(cycles, instructions) on CPU {cpu} failed: {exc.strerror}"
                ) from exc
            self._groups.append((cpu, group, _perf.Scaled(len(codes))))
        reg = self.ctx.registry
        self._ids = np.array(
            [
                [
                    reg.counter(name, {"id": str(cpu)}, unit, f"{unit.capitalize()} on a CPU.")
                    for name, unit, _ in EVENTS
                ]
                for cpu, _, _ in self._groups
            ],
            dtype=np.uint32,
        )
        for _, group, scaled in self._groups:
            scaled.update(group.read())

    def sample(self, out: FrameBuilder) -> None:
        """Read every CPU's group and emit the running (scaled) totals."""
        values = [scaled.update(group.read()) for _, group, scaled in self._groups]
        out.counters(self._ids, np.array(values, dtype=np.uint64))

    def close(self) -> None:
        """Close every perf fd."""
        for _, group, _ in getattr(self, "_groups", []):
            group.close()
        self._groups = []


SAMPLER = CpuPerf
