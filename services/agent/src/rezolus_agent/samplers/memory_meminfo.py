"""memory_meminfo: system memory gauges.

Reads ``/proc/meminfo``.  Emits ``memory_total``, ``memory_free``,
``memory_available``, ``memory_buffers``, ``memory_cached`` (gauges, bytes).

Read at most once per ``interval`` (default 1s; frames in between repeat the
last values): the kernel regenerates the whole file on every read (it sums
per-CPU counters and walks the memory zones), which costs more than parsing
it, and memory levels are read at second granularity.  Set ``interval`` to the
agent's interval to read it every frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rezolus_agent.sampler import ProcSampler, SamplerUnavailable
from rezolus_agent.samplers._cadence import Cadence
from rezolus_agent.samplers._procfile import ProcFile

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


def parse_meminfo(data: bytes) -> dict[str, int]:
    """Field → bytes for every numeric field of the bytes of a meminfo file (``kB`` fields scaled)."""
    values: dict[str, int] = {}
    for line in data.split(b"\n"):
        key, _, rest = line.partition(b":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key.decode("ascii")] = int(parts[0]) * (1024 if parts[1:] == [b"kB"] else 1)
    return values


def read_meminfo(path: Path) -> dict[str, int]:
    """Field → bytes for every ``kB`` field of a meminfo file."""
    return parse_meminfo(path.read_bytes())


class MemoryMeminfo(ProcSampler):
    """Memory totals from /proc/meminfo."""

    name = "memory_meminfo"

    def options(self) -> None:
        """``interval``: how often /proc/meminfo is read (default 1s)."""
        self.read_interval_ns = self.ctx.options.duration("interval", "1s", minimum_ns=10_000_000)

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
        self._file = ProcFile(self._path)
        self._cadence = Cadence(self.read_interval_ns)
        self._values: dict[str, int] = {}

    def sample(self, out: FrameBuilder) -> None:
        """Read the file once and emit each gauge."""
        if self._cadence.due():
            self._values = parse_meminfo(self._file.read())
        values = self._values
        for key, sid in self._ids.items():
            if key in values:
                out.gauge(sid, values[key])

    def close(self) -> None:
        """Release the held file."""
        self._file.close()


SAMPLER = MemoryMeminfo
