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

from rezolus_agent.cpus import online_cpus
from rezolus_agent.sampler import SamplerUnavailable
from rezolus_agent.samplers import _perf

EVENTS = (
    ("cpu_cycles", "cycles", _perf.PERF_COUNT_HW_CPU_CYCLES),
    ("cpu_instructions", "instructions", _perf.PERF_COUNT_HW_INSTRUCTIONS),
)


class CpuPerf(_perf.GroupSampler):
    """Per-CPU hardware cycle and instruction counts."""

    name = "cpu_perf"

    def start(self) -> None:
        """Open one group per online CPU and register the series."""
        opener = self.opener()
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
        self.register([(name, unit, f"{unit.capitalize()} on a CPU.") for name, unit, _ in EVENTS])


SAMPLER = CpuPerf
