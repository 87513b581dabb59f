"""rezolus_rusage: the agent's own resource usage.

Reads ``getrusage(RUSAGE_SELF)`` and ``/proc/self/statm``.  Emits
``rezolus_cpu_usage{state}`` (counter, nanoseconds; user/system),
``rezolus_memory_usage_resident_set_size`` (gauge, bytes),
``rezolus_memory_page_reclaims`` and ``rezolus_memory_page_faults`` (counters),
``rezolus_blockio_operations{op}`` (counter; read/write) and
``rezolus_context_switch{kind}`` (counter; voluntary/involuntary).
"""

from __future__ import annotations

import os
import resource
from typing import TYPE_CHECKING

from rezolus_agent.sampler import ProcSampler
from rezolus_agent.samplers._procfile import ProcFile

if TYPE_CHECKING:
    from rezolus_agent.series import FrameBuilder


class RezolusRusage(ProcSampler):
    """The agent process's own costs."""

    name = "rezolus_rusage"

    def start(self) -> None:
        """Register the series."""
        reg = self.ctx.registry
        self._user = reg.counter("rezolus_cpu_usage", {"state": "user"}, "nanoseconds", "Agent CPU time.")
        self._system = reg.counter("rezolus_cpu_usage", {"state": "system"}, "nanoseconds", "Agent CPU time.")
        self._rss = reg.gauge("rezolus_memory_usage_resident_set_size", None, "bytes", "Agent resident memory.")
        self._minflt = reg.counter("rezolus_memory_page_reclaims", None, "faults", "Agent minor page faults.")
        self._majflt = reg.counter("rezolus_memory_page_faults", None, "faults", "Agent major page faults.")
        self._inblock = reg.counter("rezolus_blockio_operations", {"op": "read"}, "operations", "Agent block reads.")
        self._oublock = reg.counter("rezolus_blockio_operations", {"op": "write"}, "operations", "Agent block writes.")
        self._nvcsw = reg.counter(
            "rezolus_context_switch", {"kind": "voluntary"}, "switches", "Agent context switches."
        )
        self._nivcsw = reg.counter(
            "rezolus_context_switch", {"kind": "involuntary"}, "switches", "Agent context switches."
        )
        self._page = os.sysconf("SC_PAGESIZE")
        self._statm = ProcFile(self.ctx.proc / "self" / "statm")

    def sample(self, out: FrameBuilder) -> None:
        """Read rusage and statm."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        out.counter(self._user, round(usage.ru_utime * 1e9))
        out.counter(self._system, round(usage.ru_stime * 1e9))
        out.counter(self._minflt, usage.ru_minflt)
        out.counter(self._majflt, usage.ru_majflt)
        out.counter(self._inblock, usage.ru_inblock)
        out.counter(self._oublock, usage.ru_oublock)
        out.counter(self._nvcsw, usage.ru_nvcsw)
        out.counter(self._nivcsw, usage.ru_nivcsw)
        try:
            resident = int(self._statm.read().split()[1]) * self._page
        except (OSError, IndexError, ValueError):
            resident = usage.ru_maxrss * 1024
        out.gauge(self._rss, resident)


SAMPLER = RezolusRusage
