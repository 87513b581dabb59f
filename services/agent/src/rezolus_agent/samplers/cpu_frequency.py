"""cpu_frequency: TSC, APERF and MPERF cycle counts per CPU from the msr PMU.

Opens perf events of the dynamic ``msr`` PMU (type and event codes from
``/sys/bus/event_source/devices/msr``) on every online CPU, counting.
Emits ``cpu_tsc{id}``, ``cpu_aperf{id}``, ``cpu_mperf{id}`` (counters,
cycles) for the events the CPU has; running frequency is
rate(tsc) · rate(aperf) / rate(mperf).  Events the PMU lacks are named in the
sampler's status (``rezolus-agent --check``) and not emitted.
Read at most once per ``interval`` (default 1s; frames in between repeat the
last totals): reading a counter of another CPU interrupts that CPU (an IPI,
about 30 µs of the agent's time each), so a read every frame costs about
1 % of a core at 10 ms on 2 CPUs and grows with the number of CPUs,
while frequency is read as a rate over seconds.  Set ``interval`` to the
agent's interval to read every frame.
The perf opener is ``ctx.extra["perf_open"]`` when set (tests inject a fake
reader there), else the real ``_perf.open_group``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rezolus_agent.cpus import online_cpus
from rezolus_agent.sampler import SamplerUnavailable
from rezolus_agent.samplers import _perf
from rezolus_agent.samplers._cadence import Cadence

if TYPE_CHECKING:
    from rezolus_agent.series import FrameBuilder

EVENTS = ("tsc", "aperf", "mperf")


class CpuFrequency(_perf.GroupSampler):
    """Per-CPU msr cycle counters."""

    name = "cpu_frequency"

    def options(self) -> None:
        """``interval``: how often the counters are read (default 1s)."""
        self.read_interval_ns = self.ctx.options.duration("interval", "1s", minimum_ns=10_000_000)

    def start(self) -> None:
        """Find the msr events, open one group per online CPU, register the series."""
        opener = self.opener()
        found = {e: _perf.pmu_event(self.ctx.sys, "msr", e) for e in EVENTS}
        self._events = [e for e in EVENTS if found[e] is not None]
        if not self._events:
            raise SamplerUnavailable("no msr PMU with tsc/aperf/mperf events in /sys/bus/event_source/devices")
        missing = [e for e in EVENTS if found[e] is None]
        if missing:
            self.degraded = (
                f"{', '.join('cpu_' + m for m in missing)} unavailable: the msr PMU has no "
                f"{'/'.join(missing)} event (the CPU or hypervisor does not expose them)"
            )
        codes = [found[e] for e in self._events]
        self._groups: list[tuple[int, _perf.Group, _perf.Scaled]] = []
        try:
            for cpu in online_cpus(self.ctx.sys) or list(range(self.ctx.cpus)):
                group = opener(cpu, codes)  # type: ignore[arg-type]
                self._groups.append((cpu, group, _perf.Scaled(len(codes))))
        except OSError as exc:
            self.close()
            raise SamplerUnavailable(f"perf_event_open(msr) failed: {exc.strerror}") from exc
        self.register([(f"cpu_{e}", "cycles", f"{e.upper()} cycles counted on a CPU.") for e in self._events])
        self._cadence = Cadence(self.read_interval_ns)

    def sample(self, out: FrameBuilder) -> None:
        """Read every CPU's counters when due; otherwise emit the last totals again."""
        if self._cadence.due():
            self._totals = self.read_totals()
        out.counters(self._ids, self._totals)


SAMPLER = CpuFrequency
