"""cpu_migrations: tasks moved between CPUs, per CPU and per cgroup.

Attaches to the raw tracepoint ``sched:sched_migrate_task`` (``cpu_migrations.bpf.c``);
the origin CPU and the migrated task's cgroup are read at offsets from this
kernel's BTF.  Emits ``cpu_migration{direction=from|to,id}`` (counter,
migrations) and ``cgroup_cpu_migration{name}`` for up to ``max_cgroups``
(option, default 1024) cgroups at once, counted from their first migration
(the rest under ``name="(overflow)"``).
"""

from __future__ import annotations

from rezolus_agent import btf
from rezolus_agent.cgroup_table import table_maps
from rezolus_agent.sampler import BpfSampler, BpfSpec, MapSize, cgroup_hooks, raw
from rezolus_agent.wiring import CgroupTable, Counters, each, one

DIRECTIONS = ("from", "to")
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


def migration_cflags() -> tuple[str, ...]:
    """Offsets of the task's CPU and of the path to its cgroup v2 id."""
    return btf.offsets({**FIELDS, "MIGRATIONS_OFF_CPU": task_cpu_field(btf.kernel())})


class CpuMigrations(BpfSampler):
    """Counts sched_migrate_task by origin and destination CPU, and by the task's cgroup."""

    name = "cpu_migrations"
    bpf = BpfSpec(
        hooks=(raw("sched_migrate_task", "cpu_migrations__migrate"), *cgroup_hooks("cpu_migrations__rmdir")),
        maps=("cpu_migration", *table_maps("migrations"), "cgroup_cpu_migration"),
        metrics=(
            Counters("cpu_migration", each("cpu_migration", "migrations",
                                           "Tasks migrated away from (from) or onto (to) a CPU.", "direction",
                                           DIRECTIONS), per_cpu=True),
            CgroupTable("migrations", "cgroup_cpu_migration", width=1, series=one(
                "cgroup_cpu_migration", "migrations", "Migrations of tasks of a cgroup between CPUs.")),
        ),
        sizes=(MapSize("max_cgroups", 1024, "MIGRATIONS_MAX_CGROUPS", minimum=1, maximum=65536),),
        btf=migration_cflags,
    )


SAMPLER = CpuMigrations
