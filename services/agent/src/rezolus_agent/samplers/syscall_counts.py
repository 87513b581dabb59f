"""syscall_counts: syscalls by family, per host and per cgroup.

Attaches to the raw tracepoint ``raw_syscalls:sys_enter`` (``bpf/syscall_counts.bpf.c``).
Emits ``syscall{op}`` (counter, syscalls) and ``cgroup_syscall{op,name}``
(counter, syscalls; docker cgroups also carry ``container``/``container_name``)
for up to ``max_cgroups`` live cgroup v2 groups.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rezolus_agent.cgroups import CgroupIndex, CgroupSeries, cgroup2_mount
from rezolus_agent.sampler import BpfSpec, Hook, Sampler, SamplerUnavailable
from rezolus_agent.syscalls import FAMILIES, family_table

if TYPE_CHECKING:
    from rezolus_agent.bpfload import BpfMaps
    from rezolus_agent.series import FrameBuilder, SeriesRegistry

ROW = 16


def cgroup_index(sampler: Sampler) -> CgroupIndex | None:
    """The agent-wide cgroup index (created on first use), or None without cgroup v2."""
    index = sampler.ctx.extra.get("cgroup_index")
    if index is None:
        mount = cgroup2_mount(sampler.ctx.proc)
        if mount is None:
            return None
        index = CgroupIndex(mount)
        sampler.ctx.extra["cgroup_index"] = index
    assert isinstance(index, CgroupIndex)  # noqa: S101 - only this module stores it
    return index


def _cgroup_series(reg: SeriesRegistry, labels: dict[str, str]) -> list[int]:
    return [
        reg.counter("cgroup_syscall", {**labels, "op": f}, "syscalls",
                    "System calls entered by tasks of a cgroup, by family.")
        for f in FAMILIES
    ]


class SyscallCounts(Sampler):
    """Counts every syscall under its family, host-wide and per cgroup."""

    name = "syscall_counts"
    bpf = BpfSpec(
        source="syscall_counts.bpf.c",
        hooks=(Hook("raw_tracepoint", "sys_enter", "syscall_counts__sys_enter"),),
        maps=("syscall_family", "syscall_counts", "syscall_cgroup_slot", "cgroup_syscall"),
    )

    def options(self) -> None:
        """``max_cgroups``: how many cgroups get their own series (default 1024)."""
        self.max_cgroups = self.ctx.options.integer("max_cgroups", 1024, minimum=1, maximum=65536)

    def cflags(self) -> tuple[str, ...]:
        """Size the per-cgroup maps from the configuration."""
        return (f"-DSYSCALL_MAX_CGROUPS={self.max_cgroups}",)

    def start(self, maps: BpfMaps | None) -> None:
        """Fill the family table and register the per-family series."""
        if maps is None:
            raise SamplerUnavailable("BPF is not available")
        reg = self.ctx.registry
        try:
            families = np.asarray(family_table(), dtype=np.uint64)
        except FileNotFoundError as exc:
            raise SamplerUnavailable(str(exc)) from exc
        maps.array("syscall_family")[: families.size] = families
        self._counts = maps.array("syscall_counts").reshape(self.ctx.cpus, -1)[:, :ROW]
        self._ids = np.array(
            [reg.counter("syscall", {"op": f}, "syscalls", "System calls entered, by family.") for f in FAMILIES],
            dtype=np.uint32,
        )
        self._cgroups = CgroupSeries.create(
            self, hash_fd=maps.fds["syscall_cgroup_slot"], rows=maps.array("cgroup_syscall"), width=ROW,
            capacity=self.max_cgroups, make=_cgroup_series,
        )

    def sample(self, out: FrameBuilder) -> None:
        """Sum per-CPU rows; emit per-cgroup rows for the tracked cgroups."""
        out.counters(self._ids, self._counts.sum(axis=0, dtype=np.uint64))
        if self._cgroups is not None:
            self._cgroups.sample(out)


SAMPLER = SyscallCounts
