/* blockio_latency: raw tracepoints block_rq_issue(rq) and
 * block_rq_complete(rq, error, nr_bytes). Emits issue -> completion latency
 * per op, in nanoseconds.
 *
 * The request pointer keys the start time (an LRU hash bounded by
 * BLOCKIO_MAX_INFLIGHT, so requests that never complete cannot fill it).
 * Merges happen before issue; a requeued request that is issued again is
 * timed from its last issue; a request completed in parts is timed at its
 * first part; the data-less completion that ends a flush sequence has no
 * issue of its own and is not timed (its flush request is). The op is read
 * from request.cmd_flags at the BTF offset (see blockio_requests).
 * blockio_latency: [cpu][op][bucket].
 */
#define BLOCKIO_LATENCY_OPS 4
#ifndef BLOCKIO_MAX_INFLIGHT
#define BLOCKIO_MAX_INFLIGHT 8192
#endif

RZ_ARRAY(blockio_latency, RZ_NR_CPUS * BLOCKIO_LATENCY_OPS * RZ_HIST_BUCKETS);
BPF_TABLE("lru_hash", u64, u64, blockio_latency_start, BLOCKIO_MAX_INFLIGHT);

static __always_inline void blockio_latency__issue(struct bpf_raw_tracepoint_args *ctx)
{
    u64 rq = ctx->args[0];
    u64 now = bpf_ktime_get_ns();
    blockio_latency_start.update(&rq, &now);
}

static __always_inline void blockio_latency__complete(struct bpf_raw_tracepoint_args *ctx)
{
    u64 rq = ctx->args[0];
    u64 *start = blockio_latency_start.lookup(&rq);
    if (!start)
        return;
    u64 begun = *start;
    blockio_latency_start.delete(&rq);
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
    u64 now = bpf_ktime_get_ns();
    u64 delta = now > begun ? now - begun : 0;
    u32 idx = (bpf_get_smp_processor_id() * BLOCKIO_LATENCY_OPS + op) * RZ_HIST_BUCKETS
              + rz_hist_index(delta);
    u64 *bucket = blockio_latency.lookup(&idx);
    if (bucket)
        *bucket += 1;
}
