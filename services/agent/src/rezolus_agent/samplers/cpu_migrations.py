"""cpu_migrations: tasks moved between CPUs, per CPU and per cgroup.

Attaches to the raw tracepoint ``sched:sched_migrate_task`` (``bpf/cpu_migrations.bpf.c``);
the origin CPU and the migrated task's cgroup are read at offsets from this
kernel's BTF.  Emits ``cpu_migration{direction=from|to,id}`` (counter,
migrations) and ``cgroup_cpu_migration{name}`` for up to ``max_cgroups`` cgroups.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rezolus_agent import btf
from rezolus_agent.cgroups import CgroupSeries
from rezolus_agent.sampler import BpfSpec, Hook, Sampler, SamplerUnavailable

if TYPE_CHECKING:
    from rezolus_agent.bpfload import BpfMaps
    from rezolus_agent.series import FrameBuilder, SeriesRegistry

DIRECTIONS = ("from", "to")
CGROUP_ROW = 8
FIELDS = {
    "MIGRATIONS_OFF_CGROUPS": "task_struct.cgroups",
    "MIGRATIONS_OFF_DFL_CGRP": "css_set.dfl_cgrp",
    "MIGRATIONS_OFF_KN": "cgroup.kn",
    "MIGRATIONS_OFF_KN_ID": "kernfs_node.id",
}


def task_cpu_field(kernel: btf.Btf) -> str:
    """Where task_cpu() reads: thread_info.cpu when thread_info is in the task, else task_struct.cpu."""
    for path in ("task_struct.thread_info.cpu", "task_struct.cpu"):
        try:
            kernel.offset(path)
        except btf.BtfError:
            continue
        return path
    raise btf.BtfError("task_struct has neither thread_info.cpu nor cpu")


def _cgroup_series(reg: SeriesRegistry, labels: dict[str, str]) -> list[int]:
    return [reg.counter("cgroup_cpu_migration", labels, "migrations", "Migrations of tasks of a cgroup between CPUs.")]


class CpuMigrations(Sampler):
    """Counts sched_migrate_task by origin and destination CPU, and by the task's cgroup."""

    name = "cpu_migrations"
    bpf = BpfSpec(
        source="cpu_migrations.bpf.c",
        hooks=(Hook("raw_tracepoint", "sched_migrate_task", "cpu_migrations__migrate"),),
        maps=("cpu_migration", "cpu_migrations_cgroup_slot", "cgroup_cpu_migration"),
    )

    def options(self) -> None:
        """``max_cgroups``: how many cgroups get their own series (default 1024)."""
        self.max_cgroups = self.ctx.options.integer("max_cgroups", 1024, minimum=1, maximum=65536)

    def cflags(self) -> tuple[str, ...]:
        """Struct offsets from BTF, and the per-cgroup map size."""
        try:
            kernel = btf.kernel()
            flags = btf.offsets({**FIELDS, "MIGRATIONS_OFF_CPU": task_cpu_field(kernel)})
        except btf.BtfError as exc:
            self.btf_error = str(exc)
            flags = ()
        return (*flags, f"-DMIGRATIONS_MAX_CGROUPS={self.max_cgroups}")

    def start(self, maps: BpfMaps | None) -> None:
        """Register per-CPU series and the per-cgroup slot table."""
        if maps is None:
            raise SamplerUnavailable(getattr(self, "btf_error", "BPF is not available"))
        reg = self.ctx.registry
        cpus = self.ctx.cpus
        self._counts = maps.array("cpu_migration").reshape(cpus, -1)[:, : len(DIRECTIONS)]
        self._ids = np.array(
            [
                [reg.counter("cpu_migration", {"direction": d, "id": str(cpu)}, "migrations",
                             "Tasks migrated away from (from) or onto (to) a CPU.") for d in DIRECTIONS]
                for cpu in range(cpus)
            ],
            dtype=np.uint32,
        )
        self._cgroups = CgroupSeries.create(
            self, hash_fd=maps.fds["cpu_migrations_cgroup_slot"], rows=maps.array("cgroup_cpu_migration"),
            width=CGROUP_ROW, capacity=self.max_cgroups, make=_cgroup_series,
        )

    def sample(self, out: FrameBuilder) -> None:
        """Emit every CPU's from/to counts and the tracked cgroups."""
        out.counters(self._ids, self._counts)
        if self._cgroups is not None:
            self._cgroups.sample(out)


SAMPLER = CpuMigrations
