"""memory_vmstat: NUMA allocation counters.

Reads ``/proc/vmstat``.  Emits ``memory_numa_hit``, ``memory_numa_miss``,
``memory_numa_foreign``, ``memory_numa_interleave``, ``memory_numa_local``,
``memory_numa_other`` (counters, pages) for the fields the kernel has.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rezolus_agent.sampler import ProcSampler, SamplerUnavailable
from rezolus_agent.samplers._procfile import ProcFile

if TYPE_CHECKING:
    from pathlib import Path

    from rezolus_agent.series import FrameBuilder

FIELDS = ("numa_hit", "numa_miss", "numa_foreign", "numa_interleave", "numa_local", "numa_other")


def parse_vmstat(data: bytes, wanted: tuple[str, ...] | None = None) -> dict[str, int]:
    """Every ``name value`` pair of the bytes of a vmstat file (only ``wanted`` names when given)."""
    values: dict[str, int] = {}
    keep = None if wanted is None else {w.encode("ascii") for w in wanted}
    for line in data.split(b"\n"):
        key, _, value = line.partition(b" ")
        if (keep is None or key in keep) and value.strip().isdigit():
            values[key.decode("ascii")] = int(value)
    return values


def read_vmstat(path: Path) -> dict[str, int]:
    """Every ``name value`` pair of a vmstat file."""
    return parse_vmstat(path.read_bytes())


class MemoryVmstat(ProcSampler):
    """NUMA counters from /proc/vmstat."""

    name = "memory_vmstat"

    def start(self) -> None:
        """Register counters for the NUMA fields present."""
        self._path = self.ctx.proc / "vmstat"
        try:
            present = read_vmstat(self._path)
        except OSError as exc:
            raise SamplerUnavailable(f"cannot read {self._path}: {exc.strerror}") from exc
        reg = self.ctx.registry
        self._ids = {
            f: reg.counter(f"memory_{f}", None, "pages", f"Pages allocated with outcome {f} (vmstat).")
            for f in FIELDS
            if f in present
        }
        if not self._ids:
            raise SamplerUnavailable("this kernel reports no NUMA counters in vmstat")
        self._file = ProcFile(self._path)
        self._wanted = tuple(self._ids)

    def sample(self, out: FrameBuilder) -> None:
        """Read the file once and emit each counter."""
        values = parse_vmstat(self._file.read(), self._wanted)
        for key, sid in self._ids.items():
            out.counter(sid, values.get(key, 0))

    def close(self) -> None:
        """Release the held file."""
        self._file.close()


SAMPLER = MemoryVmstat
