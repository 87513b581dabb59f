/* syscall_counts: raw_syscalls:sys_enter (raw tracepoint).
 * Emits per-CPU counts by syscall family and per-cgroup counts by family.
 *
 * syscall_family:  syscall number -> family index, written by the agent.
 * syscall_counts:  [cpu][family] rows of RZ_ROW(16) u64.
 * cgroup_slot:     cgroup v2 id -> slot, maintained by the agent; unknown
 *                  cgroups are not counted per cgroup.
 * cgroup_syscall:  [slot][family], shared by CPUs (atomic adds).
 */
#define SYSCALL_FAMILIES 16
#define SYSCALL_MAX 1024
#define SYSCALL_COUNTS_ROW RZ_ROW(SYSCALL_FAMILIES)
#ifndef SYSCALL_MAX_CGROUPS
#define SYSCALL_MAX_CGROUPS 1024
#endif

RZ_ARRAY(syscall_family, SYSCALL_MAX);
RZ_ARRAY(syscall_counts, RZ_NR_CPUS * SYSCALL_COUNTS_ROW);
BPF_HASH(syscall_cgroup_slot, u64, u32, SYSCALL_MAX_CGROUPS);
RZ_ARRAY(cgroup_syscall, SYSCALL_MAX_CGROUPS * SYSCALL_FAMILIES);

static __always_inline void syscall_counts__sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
    u32 nr = (u32)ctx->args[1];
    u32 family = 0;
    if (nr < SYSCALL_MAX) {
        u64 *f = syscall_family.lookup(&nr);
        if (f && *f < SYSCALL_FAMILIES)
            family = (u32)*f;
    }
    u32 idx = bpf_get_smp_processor_id() * SYSCALL_COUNTS_ROW + family;
    u64 *count = syscall_counts.lookup(&idx);
    if (count)
        *count += 1;

    u64 cgroup = bpf_get_current_cgroup_id();
    u32 *slot = syscall_cgroup_slot.lookup(&cgroup);
    if (slot && *slot < SYSCALL_MAX_CGROUPS) {
        u32 cidx = *slot * SYSCALL_FAMILIES + family;
        u64 *ccount = cgroup_syscall.lookup(&cidx);
        if (ccount)
            __sync_fetch_and_add(ccount, 1);
    }
}
