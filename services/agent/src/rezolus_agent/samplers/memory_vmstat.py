"""memory_vmstat: NUMA allocation counters.

Reads ``/proc/vmstat``.  Emits ``memory_numa_hit``, ``memory_numa_miss``,
``memory_numa_foreign``, ``memory_numa_interleave``, ``memory_numa_local``,
``memory_numa_other`` (counters, pages) for the fields the kernel has.

Read at most once per ``interval`` (default 1s; frames in between repeat the
last values): the kernel generates every line of the file (and folds the
per-CPU NUMA event counters) on each read, and NUMA allocation outcomes are
rates read over seconds.  Set ``interval`` to the agent's interval to read it
every frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rezolus_agent.sampler import ProcSampler, SamplerUnavailable
from rezolus_agent.samplers._cadence import Cadence
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

    def options(self) -> None:
        """``interval``: how often /proc/vmstat is read (default 1s)."""
        self.read_interval_ns = self.ctx.options.duration("interval", "1s", minimum_ns=10_000_000)

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
        self._cadence = Cadence(self.read_interval_ns)
        self._values: dict[str, int] = {}

    def sample(self, out: FrameBuilder) -> None:
        """Read the file once and emit each counter."""
        if self._cadence.due():
            self._values = parse_vmstat(self._file.read(), self._wanted)
        values = self._values
        for key, sid in self._ids.items():
            out.counter(sid, values.get(key, 0))

    def close(self) -> None:
        """Release the held file."""
        self._file.close()


SAMPLER = MemoryVmstat
