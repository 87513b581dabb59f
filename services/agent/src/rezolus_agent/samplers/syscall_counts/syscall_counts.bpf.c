/* syscall_counts: raw_syscalls:sys_enter (raw tracepoint).
 * Emits per-CPU counts by syscall family and per-cgroup counts by family.
 *
 * syscall_family:  syscall number -> family index, written by the agent.
 * syscall_counts:  [cpu][family] rows of RZ_ROW(16) u64.
 * syscall_cgroup_*: the slot table of rezolus_cgroup.h (slots assigned in
 *                  the kernel on a cgroup's first syscall).  The slot is
 *                  cached in the task's storage with its cgroup id and used
 *                  while the slot's owner is still that id (one array read
 *                  instead of a hash lookup per syscall; the hash only when
 *                  the task is new or changed cgroup).  With syscall_latency
 *                  loaded too (RZ_WITH_syscall_latency, set by the loader),
 *                  this handler also writes its entry stamp.
 * cgroup_syscall:  [cpu][slot][family], slot SYSCALL_MAX_CGROUPS is the
 *                  overflow row.  Per CPU, so a syscall is a plain increment:
 *                  with shared rows every syscall of a cgroup busy on several
 *                  CPUs (the root cgroup, a big container) bounced one cache
 *                  line between them with a locked add.
 */
#define SYSCALL_FAMILIES 16
#define SYSCALL_MAX 1024
#define SYSCALL_COUNTS_ROW RZ_ROW(SYSCALL_FAMILIES)
#ifndef SYSCALL_MAX_CGROUPS
#define SYSCALL_MAX_CGROUPS 1024
#endif

#include "rezolus_syscall.h"

RZ_ARRAY(syscall_family, SYSCALL_MAX);
RZ_ARRAY(syscall_counts, RZ_NR_CPUS * SYSCALL_COUNTS_ROW);
RZ_CGROUP_TABLE(syscall, SYSCALL_MAX_CGROUPS)
RZ_ARRAY(cgroup_syscall, RZ_NR_CPUS * (SYSCALL_MAX_CGROUPS + 1) * SYSCALL_FAMILIES);

static __always_inline void syscall_counts__sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
    u32 nr = (u32)ctx->args[1];
    u32 family = 0;
    if (nr < SYSCALL_MAX) {
        u64 *f = syscall_family.lookup(&nr);
        if (f && *f < SYSCALL_FAMILIES)
            family = (u32)*f;
    }
    u32 cpu = bpf_get_smp_processor_id();
    u32 idx = cpu * SYSCALL_COUNTS_ROW + family;
    u64 *count = syscall_counts.lookup(&idx);
    if (count)
        *count += 1;

    u64 cgroup = bpf_get_current_cgroup_id();
    struct task_struct *task = bpf_get_current_task_btf();
    struct rz_syscall_task *t = rz_syscall_task.task_storage_get(task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
    u32 slot;
    if (t && t->cgroup == cgroup && syscall_cgroup_owns(t->slot, cgroup)) {
        slot = t->slot;
    } else {
        slot = syscall_cgroup_slot_of(cgroup);
        if (t) {
            t->slot = slot;
            t->cgroup = cgroup;
        }
    }
    u32 cidx = (cpu * (SYSCALL_MAX_CGROUPS + 1) + slot) * SYSCALL_FAMILIES + family;
    u64 *ccount = cgroup_syscall.lookup(&cidx);
    if (ccount)
        *ccount += 1;
#ifdef RZ_WITH_syscall_latency
    /* syscall_latency's entry stamp, written here so a syscall costs one
     * task-storage get (its own sys_enter handler is empty when both run). */
    if (t) {
        t->family = family;
        t->ts = bpf_ktime_get_ns();
    }
#endif
}

static __always_inline int syscall_counts__rmdir(void *raw)
{
    struct tracepoint__cgroup__cgroup_rmdir *args = raw;
    if (args->root == 0)
        syscall_cgroup_rmdir(args->id);
    return 0;
}
