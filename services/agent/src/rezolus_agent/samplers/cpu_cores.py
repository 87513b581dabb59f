"""cpu_cores: number of online CPUs.

Reads ``/sys/devices/system/cpu/online``.  Emits ``cpu_cores`` (gauge, cpus).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rezolus_agent.cpus import parse_cpu_list
from rezolus_agent.sampler import ProcSampler, SamplerUnavailable
from rezolus_agent.samplers._procfile import ProcFile

if TYPE_CHECKING:
    from rezolus_agent.series import FrameBuilder


class CpuCores(ProcSampler):
    """Online CPU count."""

    name = "cpu_cores"

    def start(self) -> None:
        """Check the file and register the gauge."""
        self._path = self.ctx.sys / "devices" / "system" / "cpu" / "online"
        if not self._path.is_file():
            raise SamplerUnavailable(f"{self._path} does not exist")
        self._id = self.ctx.registry.gauge("cpu_cores", None, "cpus", "Number of online CPUs.")
        self._file = ProcFile(self._path)

    def sample(self, out: FrameBuilder) -> None:
        """Read and count the online list."""
        out.gauge(self._id, len(parse_cpu_list(self._file.read().decode("ascii"))))

    def close(self) -> None:
        """Release the held file."""
        self._file.close()


SAMPLER = CpuCores
