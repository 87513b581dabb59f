"""syscall_counts: syscalls by family, per host and per cgroup.

Attaches to the raw tracepoint ``raw_syscalls:sys_enter`` (``syscall_counts.bpf.c``).
Emits ``syscall{op}`` (counter, syscalls) and ``cgroup_syscall{op,name}``
(counter, syscalls; docker cgroups also carry ``container``/``container_name``)
for up to ``max_cgroups`` (option, default 1024) cgroup v2 groups at once,
each counted from its first syscall (the kernel assigns its slot); the rest
go to ``name="(overflow)"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rezolus_agent.cgroup_table import table_maps
from rezolus_agent.sampler import BpfSampler, BpfSpec, MapSize, cgroup_hooks, raw
from rezolus_agent.syscalls import FAMILIES, fill_family_table
from rezolus_agent.wiring import CgroupTable, Counters, each

if TYPE_CHECKING:
    from rezolus_agent.bpfload import BpfMaps


class SyscallCounts(BpfSampler):
    """Counts every syscall under its family, host-wide and per cgroup."""

    name = "syscall_counts"
    bpf = BpfSpec(
        hooks=(raw("sys_enter", "syscall_counts__sys_enter"), *cgroup_hooks("syscall_counts__rmdir")),
        maps=("syscall_family", "syscall_counts", *table_maps("syscall"), "cgroup_syscall"),
        metrics=(
            Counters("syscall_counts", each("syscall", "syscalls", "System calls entered, by family.", "op", FAMILIES)),
            CgroupTable("syscall", "cgroup_syscall", width=len(FAMILIES), per_cpu=True, series=each(
                "cgroup_syscall", "syscalls", "System calls entered by tasks of a cgroup, by family.", "op", FAMILIES)),
        ),
        sizes=(MapSize("max_cgroups", 1024, "SYSCALL_MAX_CGROUPS", minimum=1, maximum=65536),),
    )

    def attach(self, maps: BpfMaps) -> None:
        """Fill the syscall → family table, then wire the metrics."""
        fill_family_table(maps.array("syscall_family"))
        super().attach(maps)


SAMPLER = SyscallCounts
