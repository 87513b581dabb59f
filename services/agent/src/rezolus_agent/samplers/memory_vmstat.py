"""memory_vmstat: NUMA allocation counters.

Reads ``/proc/vmstat``.  Emits ``memory_numa_hit``, ``memory_numa_miss``,
``memory_numa_foreign``, ``memory_numa_interleave``, ``memory_numa_local``,
``memory_numa_other`` (counters, pages) for the fields the kernel has.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rezolus_agent.sampler import ProcSampler, SamplerUnavailable

if TYPE_CHECKING:
    from pathlib import Path

    from rezolus_agent.series import FrameBuilder

FIELDS = ("numa_hit", "numa_miss", "numa_foreign", "numa_interleave", "numa_local", "numa_other")


def read_vmstat(path: Path) -> dict[str, int]:
    """Every ``name value`` pair of a vmstat file."""
    values: dict[str, int] = {}
    for line in path.read_text(encoding="ascii").splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            values[key] = int(value)
    return values


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

    def sample(self, out: FrameBuilder) -> None:
        """Read the file once and emit each counter."""
        values = read_vmstat(self._path)
        for key, sid in self._ids.items():
            out.counter(sid, values.get(key, 0))


SAMPLER = MemoryVmstat
