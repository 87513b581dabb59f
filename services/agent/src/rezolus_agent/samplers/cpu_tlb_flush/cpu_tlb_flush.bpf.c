/* cpu_tlb_flush: raw tracepoint tlb:tlb_flush, TP_PROTO(int reason, unsigned long pages).
 * Emits TLB flushes per CPU (the CPU that flushes) by reason.
 *
 * reason is enum tlb_flush_reason: 0 task switch, 1 remote shootdown,
 * 2 local shootdown, 3 local MM shootdown, 4 remote IPI send, 5 remote
 * flush that reached the wrong CPU (newer kernels); anything larger is
 * counted in the last column so no event is lost.
 * cpu_tlb_flush: [cpu][RZ_ROW(TLB_REASONS)].
 */
#define TLB_REASONS 7
#define TLB_ROW RZ_ROW(TLB_REASONS)

RZ_ARRAY(cpu_tlb_flush, RZ_NR_CPUS * TLB_ROW);

static __always_inline void cpu_tlb_flush__flush(struct bpf_raw_tracepoint_args *ctx)
{
    u32 reason = (u32)ctx->args[0];
    if (reason >= TLB_REASONS)
        reason = TLB_REASONS - 1;
    u32 idx = bpf_get_smp_processor_id() * TLB_ROW + reason;
    u64 *count = cpu_tlb_flush.lookup(&idx);
    if (count)
        *count += 1;
}
