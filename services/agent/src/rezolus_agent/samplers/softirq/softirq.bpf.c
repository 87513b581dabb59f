/* softirq: irq:softirq_entry and irq:softirq_exit (raw tracepoints; args[0] is
 * the vector number, a plain value).
 * Emits per-CPU counts and time (ns, entry -> exit) per softirq vector.
 *
 * softirq: [cpu] rows of SOFTIRQ_ROW u64:
 *   [0, 10)  entries per vector (counted at entry, as /proc/softirqs does)
 *   [10, 20) nanoseconds per vector
 *   [20]     entry timestamp of the running vector, 0 when none
 *   [21]     vector number of the running softirq
 * Softirqs do not nest on one CPU, so one start slot per CPU is exact; the
 * row belongs to its CPU, so plain increments are safe. Time includes hard
 * interrupts that arrive while the softirq runs (as bcc's softirqs does).
 */
#define SOFTIRQ_VECTORS 10
#define SOFTIRQ_ROW RZ_ROW(2 * SOFTIRQ_VECTORS + 2)

RZ_ARRAY(softirq, RZ_NR_CPUS * SOFTIRQ_ROW);

static __always_inline void softirq__entry(struct bpf_raw_tracepoint_args *ctx)
{
    u32 vec = (u32)ctx->args[0];
    if (vec >= SOFTIRQ_VECTORS)
        return;
    u32 base = bpf_get_smp_processor_id() * SOFTIRQ_ROW;
    u32 idx = base + vec;
    u64 *count = softirq.lookup(&idx);
    if (count)
        *count += 1;
    idx = base + 2 * SOFTIRQ_VECTORS;
    u64 *start = softirq.lookup(&idx);
    if (start)
        *start = bpf_ktime_get_ns();
    idx = base + 2 * SOFTIRQ_VECTORS + 1;
    u64 *running = softirq.lookup(&idx);
    if (running)
        *running = vec;
}

static __always_inline void softirq__exit(struct bpf_raw_tracepoint_args *ctx)
{
    u32 vec = (u32)ctx->args[0];
    u32 base = bpf_get_smp_processor_id() * SOFTIRQ_ROW;
    u32 idx = base + 2 * SOFTIRQ_VECTORS;
    u64 *start = softirq.lookup(&idx);
    if (!start || *start == 0)
        return;
    u64 begun = *start;
    *start = 0;
    idx = base + 2 * SOFTIRQ_VECTORS + 1;
    u64 *running = softirq.lookup(&idx);
    if (!running || *running != vec || vec >= SOFTIRQ_VECTORS)
        return;
    u64 now = bpf_ktime_get_ns();
    idx = base + SOFTIRQ_VECTORS + vec;
    u64 *time = softirq.lookup(&idx);
    if (time && now > begun)
        *time += now - begun;
}
