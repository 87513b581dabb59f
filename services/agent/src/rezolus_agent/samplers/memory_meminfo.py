"""memory_meminfo: system memory gauges.

Reads ``/proc/meminfo``.  Emits ``memory_total``, ``memory_free``,
``memory_available``, ``memory_buffers``, ``memory_cached`` (gauges, bytes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rezolus_agent.sampler import ProcSampler, SamplerUnavailable

if TYPE_CHECKING:
    from pathlib import Path

    from rezolus_agent.series import FrameBuilder

FIELDS = {
    "MemTotal": ("memory_total", "Total usable memory."),
    "MemFree": ("memory_free", "Memory not used for anything."),
    "MemAvailable": ("memory_available", "Memory available for new work without swapping."),
    "Buffers": ("memory_buffers", "Memory in block device buffers."),
    "Cached": ("memory_cached", "Memory in the page cache."),
}


def read_meminfo(path: Path) -> dict[str, int]:
    """Field → bytes for every ``kB`` field of a meminfo file."""
    values: dict[str, int] = {}
    for line in path.read_text(encoding="ascii").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return values


class MemoryMeminfo(ProcSampler):
    """Memory totals from /proc/meminfo."""

    name = "memory_meminfo"

    def start(self) -> None:
        """Register gauges for the fields this kernel has."""
        self._path = self.ctx.proc / "meminfo"
        try:
            present = read_meminfo(self._path)
        except OSError as exc:
            raise SamplerUnavailable(f"cannot read {self._path}: {exc.strerror}") from exc
        reg = self.ctx.registry
        self._ids = {
            key: reg.gauge(name, None, "bytes", text) for key, (name, text) in FIELDS.items() if key in present
        }

    def sample(self, out: FrameBuilder) -> None:
        """Read the file once and emit each gauge."""
        values = read_meminfo(self._path)
        for key, sid in self._ids.items():
            if key in values:
                out.gauge(sid, values[key])


SAMPLER = MemoryMeminfo
