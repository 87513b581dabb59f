/* blockio_latency: raw tracepoints block_rq_issue(rq) and
 * block_rq_complete(rq, error, nr_bytes). Emits issue -> completion latency
 * per op, in nanoseconds.
 *
 * Issue times live in a 2-way set-associative table of BLOCKIO_SLOTS u64
 * slots (no hash map: no locks, no allocation). The set (slots s and s^1) is
 * a multiplicative hash of the request pointer; a slot holds (24-bit tag of
 * the pointer << 40) | (issue time mod 2^40), written and read as ONE u64, so
 * a reader never sees half of another request's entry. An issue rewrites the
 * request's own entry if it has one (re-issue after requeue), else takes a
 * free way, else evicts the first way. A completion is timed only from a
 * slot holding its own tag; the slot is then cleared.
 * Limits, by construction:
 * - a request evicted by later issues before it completes (both ways of its
 *   set busy) is not timed (lost, never mis-timed); with BLOCKIO_SLOTS far
 *   above the requests in flight this is rare; two CPUs issuing into the same
 *   free way at the same instant can also lose one;
 * - a timing could be given to the wrong request only if two requests in
 *   flight share both slot and tag (pointers equal in bits 3..26 and in the
 *   slot hash), about 2^-37 per pair of concurrent requests;
 * - latencies of 2^40 ns (18 min) or more are not representable;
 * - a requeued request is timed from its last issue; a request completed in
 *   parts is timed at its first part; the data-less completion that ends a
 *   flush sequence has no issue of its own and is not timed (its flush
 *   request is).
 * The op is read from request.cmd_flags at the BTF offset (see
 * blockio_requests).
 * blockio_latency: [cpu] rows of RZ_HIST_ROW(4): [op][bucket], then the event counts.
 */
#define BLOCKIO_LATENCY_OPS 4
#ifndef BLOCKIO_SLOTS_LOG2
#define BLOCKIO_SLOTS_LOG2 14
#endif
#define BLOCKIO_SLOTS (1U << BLOCKIO_SLOTS_LOG2)
#define BLOCKIO_TIME_MASK ((1ULL << 40) - 1)

RZ_ARRAY(blockio_latency, RZ_NR_CPUS * RZ_HIST_ROW(BLOCKIO_LATENCY_OPS));
RZ_ARRAY(blockio_latency_start, BLOCKIO_SLOTS);

static __always_inline u32 blockio_latency__slot(u64 rq)
{
    return (u32)(((rq >> 3) * 0x9E3779B97F4A7C15ULL) >> (64 - BLOCKIO_SLOTS_LOG2));
}

static __always_inline u64 blockio_latency__tag(u64 rq)
{
    return ((rq >> 3) & 0xFFFFFFULL) << 40;
}

static __always_inline void blockio_latency__issue(struct bpf_raw_tracepoint_args *ctx)
{
    u64 rq = ctx->args[0];
    u64 tag = blockio_latency__tag(rq);
    u32 slot = blockio_latency__slot(rq);
    u32 other = slot ^ 1;
    u64 *first = blockio_latency_start.lookup(&slot);
    u64 *second = blockio_latency_start.lookup(&other);
    if (!first || !second)
        return;
    u64 entry = tag | (bpf_ktime_get_ns() & BLOCKIO_TIME_MASK);
    /* this request's own entry (a re-issue), else a free way, else evict the first way */
    if (*first != 0 && (*first & ~BLOCKIO_TIME_MASK) == tag)
        *first = entry;
    else if (*second != 0 && (*second & ~BLOCKIO_TIME_MASK) == tag)
        *second = entry;
    else if (*first == 0)
        *first = entry;
    else if (*second == 0)
        *second = entry;
    else
        *first = entry;
}

static __always_inline void blockio_latency__complete(struct bpf_raw_tracepoint_args *ctx)
{
    u64 rq = ctx->args[0];
    u64 tag = blockio_latency__tag(rq);
    u32 slot = blockio_latency__slot(rq);
    u64 *entry = blockio_latency_start.lookup(&slot);
    if (!entry)
        return;
    if (*entry == 0 || (*entry & ~BLOCKIO_TIME_MASK) != tag) {
        slot ^= 1;
        entry = blockio_latency_start.lookup(&slot);
        if (!entry || *entry == 0 || (*entry & ~BLOCKIO_TIME_MASK) != tag)
            return;
    }
    u64 seen = *entry;
    *entry = 0;
    u32 flags = 0;
    bpf_probe_read_kernel(&flags, sizeof(flags), (char *)rq + BLOCKIO_RQ_CMD_FLAGS);
    u32 kop = flags & BLOCKIO_REQ_OP_MASK;
    u32 op;
    if (kop == BLOCKIO_REQ_OP_READ)
        op = 0;
    else if (kop == BLOCKIO_REQ_OP_WRITE)
        op = 1;
    else if (kop == BLOCKIO_REQ_OP_FLUSH)
        op = 2;
    else if (kop == BLOCKIO_REQ_OP_DISCARD)
        op = 3;
    else
        return;
    u64 delta = (bpf_ktime_get_ns() - seen) & BLOCKIO_TIME_MASK;
    u32 row = bpf_get_smp_processor_id() * RZ_HIST_ROW(BLOCKIO_LATENCY_OPS);
    u32 idx = row + op * RZ_HIST_BUCKETS + rz_hist_index(delta);
    u32 eidx = row + RZ_HIST_EVENTS(BLOCKIO_LATENCY_OPS) + op;
    rz_hist_add(blockio_latency.lookup(&idx), blockio_latency.lookup(&eidx));
}
