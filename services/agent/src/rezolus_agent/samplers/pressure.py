"""pressure: host-wide pressure stall information (PSI).

Reads ``/proc/pressure/{cpu,memory,io}`` and emits
``pressure_stall_time{resource,kind=some|full}`` (counters, nanoseconds; the
kernel's ``total=`` field, in µs).  ``some`` is time at least one task stalled
on the resource, ``full`` time all non-idle tasks did at once.  Unavailable,
with the reason, when the kernel has no PSI (``CONFIG_PSI`` off or ``psi=0``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rezolus_agent import cgfiles
from rezolus_agent.sampler import ProcSampler, SamplerUnavailable
from rezolus_agent.samplers._procfile import ProcFile
from rezolus_agent.samplers.cgroup_resources import psi_status
from rezolus_core import log

if TYPE_CHECKING:
    from rezolus_agent.series import FrameBuilder

RESOURCES = ("cpu", "memory", "io")


class Pressure(ProcSampler):
    """Host-wide stall time per resource from /proc/pressure."""

    name = "pressure"

    def start(self) -> None:
        """Register the series the kernel reports."""
        why_not = psi_status(self.ctx.proc)
        if why_not:
            raise SamplerUnavailable(why_not)
        reg = self.ctx.registry
        self._files = {r: (ProcFile(self.ctx.proc / "pressure" / r), cgfiles.pressure(r)) for r in RESOURCES}
        self._ids: dict[str, int] = {}
        self._warned: set[str] = set()
        for resource, kind in ((r, k) for r in RESOURCES for k in ("some", "full")):
            self._ids[f"{resource}_{kind}"] = reg.counter(
                "pressure_stall_time", {"resource": resource, "kind": kind}, "nanoseconds",
                "Time tasks stalled on a resource (PSI total; some = at least one, full = all non-idle).")

    def sample(self, out: FrameBuilder) -> None:
        """Read each file; a resource whose file is unreadable or garbled is left out of this frame."""
        for file, parse in self._files.values():
            try:
                values = parse(file.read())
            except (OSError, ValueError) as exc:
                cause = f"{file.path.name}: {exc}"
                if cause not in self._warned:
                    self._warned.add(cause)
                    log.get().warning("pressure file skipped", sampler=self.name, cause=cause)
                continue
            for key, value in values.items():
                out.counter(self._ids[key], value)

    def close(self) -> None:
        """Release the held files."""
        for file, _ in self._files.values():
            file.close()


SAMPLER = Pressure
