/* cpu_migrations: raw tracepoint sched:sched_migrate_task.
 * Emits migrations per CPU (away from the task's CPU, onto the destination)
 * and per cgroup of the migrated task.
 *
 * TP_PROTO(struct task_struct *p, int dest_cpu).  The origin is
 * task_cpu(p) and the cgroup is p->cgroups->dfl_cgrp->kn->id (what
 * bpf_get_current_cgroup_id() returns for p), read with
 * bpf_probe_read_kernel at offsets from this kernel's BTF: the tracepoint
 * runs in whichever task moves p, so the current task's cgroup would be
 * the wrong one.
 *
 * cpu_migration:           [cpu][RZ_ROW(2)]: from, to (atomic adds: a CPU
 *                          updates other CPUs' rows).
 * migrations_cgroup_*:    the slot table of rezolus_cgroup.h.
 * cgroup_cpu_migration:    [slot][1], slot MIGRATIONS_MAX_CGROUPS is the
 *                          overflow row (atomic adds).
 */
#if !defined(MIGRATIONS_OFF_CPU) || !defined(MIGRATIONS_OFF_CGROUPS) || !defined(MIGRATIONS_OFF_DFL_CGRP) \
    || !defined(MIGRATIONS_OFF_KN) || !defined(MIGRATIONS_OFF_KN_ID)
#error "cpu_migrations needs its struct offsets from BTF"
#endif
#ifndef MIGRATIONS_MAX_CGROUPS
#define MIGRATIONS_MAX_CGROUPS 1024
#endif
#define MIGRATIONS_ROW RZ_ROW(2)

RZ_ARRAY(cpu_migration, RZ_NR_CPUS * MIGRATIONS_ROW);
RZ_CGROUP_TABLE(migrations, MIGRATIONS_MAX_CGROUPS)
RZ_ARRAY(cgroup_cpu_migration, MIGRATIONS_MAX_CGROUPS + 1);

static __always_inline void cpu_migrations__count(u32 cpu, u32 direction)
{
    if (cpu >= RZ_NR_CPUS)
        return;
    u32 idx = cpu * MIGRATIONS_ROW + direction;
    u64 *count = cpu_migration.lookup(&idx);
    if (count)
        __sync_fetch_and_add(count, 1);
}

static __always_inline void cpu_migrations__migrate(struct bpf_raw_tracepoint_args *ctx)
{
    void *task = (void *)ctx->args[0];
    u32 dest = (u32)ctx->args[1];
    u32 orig = 0;
    if (bpf_probe_read_kernel(&orig, sizeof(orig), task + MIGRATIONS_OFF_CPU) == 0)
        cpu_migrations__count(orig, 0);
    cpu_migrations__count(dest, 1);

    void *cset = 0, *cgrp = 0, *kn = 0;
    u64 cgroup = 0;
    if (bpf_probe_read_kernel(&cset, sizeof(cset), task + MIGRATIONS_OFF_CGROUPS) || !cset)
        return;
    if (bpf_probe_read_kernel(&cgrp, sizeof(cgrp), cset + MIGRATIONS_OFF_DFL_CGRP) || !cgrp)
        return;
    if (bpf_probe_read_kernel(&kn, sizeof(kn), cgrp + MIGRATIONS_OFF_KN) || !kn)
        return;
    if (bpf_probe_read_kernel(&cgroup, sizeof(cgroup), kn + MIGRATIONS_OFF_KN_ID))
        return;
    u32 cidx = migrations_cgroup_slot_of(cgroup);
    u64 *ccount = cgroup_cpu_migration.lookup(&cidx);
    if (ccount)
        __sync_fetch_and_add(ccount, 1);
}

static __always_inline int cpu_migrations__rmdir(void *raw)
{
    struct tracepoint__cgroup__cgroup_rmdir *args = raw;
    if (args->root == 0)
        migrations_cgroup_rmdir(args->id);
    return 0;
}
