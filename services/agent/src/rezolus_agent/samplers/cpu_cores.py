"""cpu_cores: number of online CPUs.

Reads ``/sys/devices/system/cpu/online``.  Emits ``cpu_cores`` (gauge, cpus).
Read at most once per ``interval`` (default 1s; frames in between repeat the
last count): the count changes only when a CPU is hot-plugged, and a read
costs a syscall and a parse every frame for nothing.  Set ``interval`` to the
agent's interval to read it every frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rezolus_agent.cpus import parse_cpu_list
from rezolus_agent.sampler import ProcSampler, SamplerUnavailable
from rezolus_agent.samplers._cadence import Cadence
from rezolus_agent.samplers._procfile import ProcFile

if TYPE_CHECKING:
    from rezolus_agent.series import FrameBuilder


class CpuCores(ProcSampler):
    """Online CPU count."""

    name = "cpu_cores"

    def options(self) -> None:
        """``interval``: how often the online list is read (default 1s)."""
        self.read_interval_ns = self.ctx.options.duration("interval", "1s", minimum_ns=10_000_000)

    def start(self) -> None:
        """Check the file and register the gauge."""
        self._path = self.ctx.sys / "devices" / "system" / "cpu" / "online"
        if not self._path.is_file():
            raise SamplerUnavailable(f"{self._path} does not exist")
        self._id = self.ctx.registry.gauge("cpu_cores", None, "cpus", "Number of online CPUs.")
        self._file = ProcFile(self._path)
        self._cadence = Cadence(self.read_interval_ns)
        self._count = 0

    def sample(self, out: FrameBuilder) -> None:
        """Read and count the online list."""
        if self._cadence.due():
            self._count = len(parse_cpu_list(self._file.read().decode("ascii")))
        out.gauge(self._id, self._count)

    def close(self) -> None:
        """Release the held file."""
        self._file.close()


SAMPLER = CpuCores
