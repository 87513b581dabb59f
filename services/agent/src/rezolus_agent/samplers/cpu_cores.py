"""cpu_cores: number of online CPUs.

Reads ``/sys/devices/system/cpu/online``.  Emits ``cpu_cores`` (gauge, cpus).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rezolus_agent.sampler import Sampler, SamplerUnavailable

if TYPE_CHECKING:
    from rezolus_agent.bpfload import BpfMaps
    from rezolus_agent.series import FrameBuilder


def count_cpu_list(text: str) -> int:
    """Number of CPUs in a kernel CPU list such as ``0-3,5,7-8``."""
    total = 0
    for part in text.strip().split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        total += (int(high) - int(low) + 1) if high else 1
    return total


class CpuCores(Sampler):
    """Online CPU count."""

    name = "cpu_cores"

    def start(self, maps: BpfMaps | None) -> None:  # noqa: ARG002 - sysfs sampler
        """Check the file and register the gauge."""
        self._path = self.ctx.sys / "devices" / "system" / "cpu" / "online"
        if not self._path.is_file():
            raise SamplerUnavailable(f"{self._path} does not exist")
        self._id = self.ctx.registry.gauge("cpu_cores", None, "cpus", "Number of online CPUs.")

    def sample(self, out: FrameBuilder) -> None:
        """Read and count the online list."""
        out.gauge(self._id, count_cpu_list(self._path.read_text(encoding="ascii")))


SAMPLER = CpuCores
