/* syscall_latency: raw_syscalls:sys_enter and sys_exit (raw tracepoints).
 * Emits a latency histogram (ns, enter -> exit) per syscall family.
 *
 * The start time lives in task-local storage (shared with syscall_counts), so it follows the thread
 * across blocking and migration and is freed with the task (no pid reuse).
 * syscall_latency: [cpu] rows of RZ_HIST_ROW(families): [family][bucket], one
 *                  496-bucket histogram per family, then the event counts.
 * The family table is shared with syscall_counts when both are enabled.
 */
#define SYSCALL_LATENCY_FAMILIES 16
#define SYSCALL_LATENCY_MAX 1024

#include "rezolus_syscall.h"

RZ_ARRAY(syscall_latency_family, SYSCALL_LATENCY_MAX);
RZ_ARRAY(syscall_latency, RZ_NR_CPUS * RZ_HIST_ROW(SYSCALL_LATENCY_FAMILIES));

static __always_inline void syscall_latency__sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
#ifndef RZ_WITH_syscall_counts /* else syscall_counts' sys_enter writes the stamp */
    struct task_struct *task = bpf_get_current_task_btf();
    struct rz_syscall_task *s = rz_syscall_task.task_storage_get(task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (!s)
        return;
    u32 nr = (u32)ctx->args[1];
    u32 family = 0;
    if (nr < SYSCALL_LATENCY_MAX) {
        u64 *f = syscall_latency_family.lookup(&nr);
        if (f && *f < SYSCALL_LATENCY_FAMILIES)
            family = (u32)*f;
    }
    s->family = family;
    s->ts = bpf_ktime_get_ns();
#endif
}

static __always_inline void syscall_latency__sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
    struct task_struct *task = bpf_get_current_task_btf();
    struct rz_syscall_task *s = rz_syscall_task.task_storage_get(task, 0, 0);
    if (!s || s->ts == 0)
        return;
    u64 now = bpf_ktime_get_ns();
    u64 delta = now > s->ts ? now - s->ts : 0;
    u32 family = s->family < SYSCALL_LATENCY_FAMILIES ? s->family : 0;
    s->ts = 0;
    u32 row = bpf_get_smp_processor_id() * RZ_HIST_ROW(SYSCALL_LATENCY_FAMILIES);
    u32 idx = row + family * RZ_HIST_BUCKETS + rz_hist_index(delta);
    u32 eidx = row + RZ_HIST_EVENTS(SYSCALL_LATENCY_FAMILIES) + family;
    rz_hist_add(syscall_latency.lookup(&idx), syscall_latency.lookup(&eidx));
}
