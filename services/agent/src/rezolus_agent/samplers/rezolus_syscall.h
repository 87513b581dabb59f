/* Per-task syscall state, shared by syscall_counts and syscall_latency: one
 * task storage per task whichever of them runs (both sources include this;
 * the guard declares it once when they are compiled together).
 */
#ifndef REZOLUS_SYSCALL_H
#define REZOLUS_SYSCALL_H
struct rz_syscall_task {
    u64 ts;      /* syscall_latency: entry time of the syscall in progress (0 = none) */
    u64 cgroup;  /* syscall_counts: the cgroup id the slot below was looked up for */
    u32 family;  /* syscall_latency: family of the syscall in progress */
    u32 slot;    /* syscall_counts: cached slot, valid while its owner is still cgroup */
};
BPF_TASK_STORAGE(rz_syscall_task, struct rz_syscall_task);
#endif
