/* scheduler_runqueue: raw tracepoints sched_switch, sched_wakeup, sched_wakeup_new.
 * Emits per-CPU histograms of runqueue latency, running time and off-CPU
 * time, per-CPU voluntary/involuntary switch counts, and per-cgroup switch
 * counts, on-CPU time and runqueue wait.
 *
 * A raw tracepoint's task_struct arguments are plain numbers to the
 * verifier, so only the current task (prev, at sched_switch) can have task
 * storage.  Everything is therefore recorded when a task LEAVES the CPU:
 * - the CPU's row remembers when, and which task, it switched in last, so
 *   running = now - switch-in, and off-CPU = switch-in - the task's previous
 *   switch-out (kept in the task's storage);
 * - runqueue latency = switch-in - the time the task became runnable: its
 *   previous switch-out if it was preempted (still runnable), else its last
 *   wake-up.  Wake-ups stamp a 2-way set-associative table keyed by a hash
 *   of the task pointer: one u64 per stamp (a 20-bit tag of the hash and the
 *   low 44 bits of the time, 4.9 h of range), written with one plain store,
 *   so a wake-up costs a clock read and two array reads, no hash-map update
 *   (an LRU hash update cost about three times that here).  A new stamp
 *   replaces the task's own, else an empty way, else the older one.  The
 *   switch that puts a task on the CPU takes its stamp out of the table into
 *   the CPU's row: a wake-up that reaches the task while it still runs (it
 *   set itself to sleep and the event came before it reached schedule())
 *   then stamps the table anew instead of overwriting the stamp of the wait
 *   that just ended.  A stamp counts only if its tag matches and its time
 *   lies between the previous switch-out and the switch-in, so a wake-up of
 *   a running task, a stale entry or a reused pointer is never mistaken for
 *   this wait.  A stamp is lost only when a third task lands in a bucket
 *   while two are waiting (that task's wait is then left out).
 * Task storage is freed with the task, so pid reuse cannot mix tasks, and
 * the only per-switch writes are that storage and the CPU's own rows.
 * The idle task (pid 0) is not a task for these metrics.
 *
 * scheduler_cpu:        [cpu][RZ_ROW(3)]: switch-in ns, task pointer, that
 *                       task's wake-up stamp taken at the switch-in (0: none).
 * scheduler_counters:   [cpu][RZ_ROW(2)]: involuntary, voluntary.
 * scheduler_hist:       [cpu] rows of RZ_HIST_ROW(3): [3][496] runqueue
 *                       latency, running, off-CPU, then the event counts.
 * scheduler_wakeup:     [SCHEDULER_MAX_WAKING] u64 stamps, 2 ways per bucket.
 * scheduler_cgroup_*:   the slot table of rezolus_cgroup.h (slots assigned
 *                       in the kernel on a cgroup's first switch).  The slot
 *                       is cached in the task's storage with its cgroup id
 *                       and used while the slot's owner is still that id.
 * cgroup_scheduler:     [cpu][slot][4]: involuntary, voluntary, on-CPU ns,
 *                       runqueue wait ns (per CPU: plain adds, no cache line
 *                       shared between CPUs for a cgroup busy on several).
 * cgroup_scheduler_hist: [slot][2][RZ_CG_HIST_BUCKETS]: runqueue latency,
 *                       off-CPU time (grouping power 2, atomic adds).
 * Slot SCHEDULER_MAX_CGROUPS of both is the overflow row.
 */
#ifndef SCHEDULER_MAX_CGROUPS
#define SCHEDULER_MAX_CGROUPS 1024
#endif
#ifndef SCHEDULER_MAX_WAKING
#define SCHEDULER_MAX_WAKING 8192
#endif
#define SCHEDULER_CPU_ROW RZ_ROW(3)
#define SCHEDULER_COUNTERS_ROW RZ_ROW(2)
#define SCHEDULER_CGROUP_ROW 4
#define SCHEDULER_CGROUP_HISTS 2
#define SCHEDULER_HISTS 3

struct scheduler_task {
    u64 out_ts;
    u64 cgroup;
    u32 slot;
    u32 runnable;
};

RZ_ARRAY(scheduler_cpu, RZ_NR_CPUS * SCHEDULER_CPU_ROW);
RZ_ARRAY(scheduler_counters, RZ_NR_CPUS * SCHEDULER_COUNTERS_ROW);
RZ_ARRAY(scheduler_hist, RZ_NR_CPUS * RZ_HIST_ROW(SCHEDULER_HISTS));
RZ_CGROUP_TABLE(scheduler, SCHEDULER_MAX_CGROUPS)
RZ_ARRAY(cgroup_scheduler, RZ_NR_CPUS * (SCHEDULER_MAX_CGROUPS + 1) * SCHEDULER_CGROUP_ROW);
RZ_ARRAY(cgroup_scheduler_hist, (SCHEDULER_MAX_CGROUPS + 1) * SCHEDULER_CGROUP_HISTS * RZ_CG_HIST_BUCKETS);
#define SCHEDULER_WAKE_BUCKETS (SCHEDULER_MAX_WAKING / 2)
#define SCHEDULER_TS_BITS 44
#define SCHEDULER_TS_MASK ((1ULL << SCHEDULER_TS_BITS) - 1)
BPF_ARRAY(scheduler_wakeup, u64, 2 * SCHEDULER_WAKE_BUCKETS);
BPF_TASK_STORAGE(scheduler_task, struct scheduler_task);

static __always_inline void scheduler_runqueue__hist(u32 cpu, u32 which, u64 value)
{
    u32 row = cpu * RZ_HIST_ROW(SCHEDULER_HISTS);
    u32 idx = row + which * RZ_HIST_BUCKETS + rz_hist_index(value);
    u32 eidx = row + RZ_HIST_EVENTS(SCHEDULER_HISTS) + which;
    rz_hist_add(scheduler_hist.lookup(&idx), scheduler_hist.lookup(&eidx));
}

static __always_inline void scheduler_runqueue__cgroup_hist(u32 slot, u32 which, u64 value)
{
    u32 idx = (slot * SCHEDULER_CGROUP_HISTS + which) * RZ_CG_HIST_BUCKETS
              + rz_hist_index_g(value, RZ_CG_HIST_GROUPING_POWER);
    u64 *count = cgroup_scheduler_hist.lookup(&idx);
    if (count)
        __sync_fetch_and_add(count, 1);
}

/* The two ways of a task's bucket, and its tag (never 0, so 0 is an empty way). */
static __always_inline u32 scheduler_wake_bucket(u64 task, u64 *tag)
{
    u64 h = task * 0x9E3779B97F4A7C15ULL;
    *tag = ((h >> 12) & 0xFFFFF) | 1;
    return (u32)((h >> 32) % SCHEDULER_WAKE_BUCKETS) * 2;
}

/* The task's latest wake-up time (at most ``now``), taken out of the table; 0 if it has none. */
static __always_inline u64 scheduler_take_stamp(u64 task, u64 now)
{
    u64 tag;
    u32 i0 = scheduler_wake_bucket(task, &tag);
    u32 i1 = i0 + 1;
    u64 *e = scheduler_wakeup.lookup(&i0);
    if (!e)
        return 0;
    if ((*e >> SCHEDULER_TS_BITS) != tag) {
        e = scheduler_wakeup.lookup(&i1);
        if (!e || (*e >> SCHEDULER_TS_BITS) != tag)
            return 0;
    }
    u64 woken = (now & ~SCHEDULER_TS_MASK) | (*e & SCHEDULER_TS_MASK);
    if (woken > now)
        woken -= 1ULL << SCHEDULER_TS_BITS;
    *e = 0;
    return woken;
}

static __always_inline void scheduler_runqueue__switch(struct bpf_raw_tracepoint_args *ctx)
{
    /* TP_PROTO(bool preempt, struct task_struct *prev, struct task_struct *next,
     *          unsigned int prev_state) */
    u64 now = bpf_ktime_get_ns();
    u32 cpu = bpf_get_smp_processor_id();
    u32 base = cpu * SCHEDULER_CPU_ROW;
    u32 ptr_idx = base + 1;
    u32 woken_idx = base + 2;
    u64 *in_ts = scheduler_cpu.lookup(&base);
    u64 *in_task = scheduler_cpu.lookup(&ptr_idx);
    u64 *in_woken = scheduler_cpu.lookup(&woken_idx);
    if (!in_ts || !in_task || !in_woken)
        return;
    int same = *in_task == ctx->args[1];
    u64 switched_in = same ? *in_ts : 0;
    u64 woken = same ? *in_woken : 0;
    *in_ts = now;
    *in_task = ctx->args[2];
    *in_woken = scheduler_take_stamp(ctx->args[2], now);

    if ((u32)bpf_get_current_pid_tgid() == 0)
        return;

    /* The kernel counts nvcsw when a task that is not being preempted gives
     * up the CPU in a sleeping state; everything else is nivcsw. */
    u32 kind = (!(ctx->args[0] & 1) && (u32)ctx->args[3] != 0) ? 1 : 0;
    u32 cidx = cpu * SCHEDULER_COUNTERS_ROW + kind;
    u64 *count = scheduler_counters.lookup(&cidx);
    if (count)
        *count += 1;

    struct task_struct *task = bpf_get_current_task_btf();
    struct scheduler_task *s =
        scheduler_task.task_storage_get(task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
    u64 running = 0, waited = 0, offcpu = 0;
    int has_wait = 0, has_off = 0;
    if (switched_in && now >= switched_in) {
        running = now - switched_in;
        scheduler_runqueue__hist(cpu, 1, running);
    }
    if (s) {
        if (s->out_ts && switched_in >= s->out_ts) {
            u64 queued = 0;
            if (s->runnable)
                queued = s->out_ts;
            else if (woken > s->out_ts && woken <= switched_in)
                queued = woken;
            if (queued) {
                waited = switched_in - queued;
                has_wait = 1;
                scheduler_runqueue__hist(cpu, 0, waited);
            }
            offcpu = switched_in - s->out_ts;
            has_off = 1;
            scheduler_runqueue__hist(cpu, 2, offcpu);
        }
        s->out_ts = now;
        s->runnable = kind == 0;
    }

    u64 cgroup = bpf_get_current_cgroup_id();
    u32 slot;
    if (s && s->cgroup == cgroup && scheduler_cgroup_owns(s->slot, cgroup)) {
        slot = s->slot;
    } else {
        slot = scheduler_cgroup_slot_of(cgroup);
        if (s) {
            s->slot = slot;
            s->cgroup = cgroup;
        }
    }
    if (slot <= SCHEDULER_MAX_CGROUPS) {
        u32 row = (cpu * (SCHEDULER_MAX_CGROUPS + 1) + slot) * SCHEDULER_CGROUP_ROW;
        u32 kidx = row + kind;
        u64 *ccount = cgroup_scheduler.lookup(&kidx);
        if (ccount)
            *ccount += 1;
        if (running) {
            u32 ridx = row + 2;
            u64 *oncpu = cgroup_scheduler.lookup(&ridx);
            if (oncpu)
                *oncpu += running;
        }
        if (waited) {
            u32 widx = row + 3;
            u64 *wait = cgroup_scheduler.lookup(&widx);
            if (wait)
                *wait += waited;
        }
        if (has_wait)
            scheduler_runqueue__cgroup_hist(slot, 0, waited);
        if (has_off)
            scheduler_runqueue__cgroup_hist(slot, 1, offcpu);
    }
}

static __always_inline int scheduler_runqueue__rmdir(void *raw)
{
    struct tracepoint__cgroup__cgroup_rmdir *args = raw;
    if (args->root == 0)
        scheduler_cgroup_rmdir(args->id);
    return 0;
}

static __always_inline void scheduler_runqueue__wakeup(struct bpf_raw_tracepoint_args *ctx)
{
    /* TP_PROTO(struct task_struct *p), for sched_wakeup and sched_wakeup_new */
    u64 tag;
    u32 i0 = scheduler_wake_bucket(ctx->args[0], &tag);
    u32 i1 = i0 + 1;
    u64 *e0 = scheduler_wakeup.lookup(&i0);
    u64 *e1 = scheduler_wakeup.lookup(&i1);
    if (!e0 || !e1)
        return;
    u64 now = bpf_ktime_get_ns();
    u64 stamp = (tag << SCHEDULER_TS_BITS) | (now & SCHEDULER_TS_MASK);
    u64 v0 = *e0, v1 = *e1;
    if ((v0 >> SCHEDULER_TS_BITS) == tag || v0 == 0)
        *e0 = stamp;
    else if ((v1 >> SCHEDULER_TS_BITS) == tag || v1 == 0)
        *e1 = stamp;
    else if (((now - v0) & SCHEDULER_TS_MASK) >= ((now - v1) & SCHEDULER_TS_MASK))
        *e0 = stamp; /* the older stamp goes */
    else
        *e1 = stamp;
}
