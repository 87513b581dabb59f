/* blockio_requests: raw tracepoint block_rq_complete(rq, error, nr_bytes).
 * Emits completed requests, bytes and bytes per completion by op.
 *
 * nr_bytes is a plain argument; the op is request.cmd_flags & REQ_OP_MASK,
 * read at the offset the loader takes from the kernel's BTF
 * (BLOCKIO_RQ_CMD_FLAGS and the BLOCKIO_REQ_OP_* numbers).
 * Raw tracepoints are not skipped when another BPF program or a BPF map
 * syscall is active on the CPU (perf tracepoints are), so no completion is
 * missed. Ops other than read/write/flush/discard are not counted.
 * Like /proc/diskstats, the data-less write that carries a pre-flush counts
 * as a write of 0 bytes and the flush itself as a flush.
 * A request the driver completes in parts counts once per part (rare).
 * blockio_requests: [cpu] rows of RZ_ROW(8): ops[4], bytes[4].
 * blockio_size:     [cpu] rows of RZ_HIST_ROW(4): [op][bucket], bytes per
 *                   completion, then the event counts.
 */
#define BLOCKIO_OPS 4
#define BLOCKIO_REQUESTS_ROW RZ_ROW(2 * BLOCKIO_OPS)

RZ_ARRAY(blockio_requests, RZ_NR_CPUS * BLOCKIO_REQUESTS_ROW);
RZ_ARRAY(blockio_size, RZ_NR_CPUS * RZ_HIST_ROW(BLOCKIO_OPS));

/* 0 read, 1 write, 2 flush, 3 discard, -1 not counted */
static __always_inline int blockio_requests__op(void *rq)
{
    u32 flags = 0;
    bpf_probe_read_kernel(&flags, sizeof(flags), (char *)rq + BLOCKIO_RQ_CMD_FLAGS);
    u32 op = flags & BLOCKIO_REQ_OP_MASK;
    if (op == BLOCKIO_REQ_OP_READ)
        return 0;
    if (op == BLOCKIO_REQ_OP_WRITE)
        return 1;
    if (op == BLOCKIO_REQ_OP_FLUSH)
        return 2;
    if (op == BLOCKIO_REQ_OP_DISCARD)
        return 3;
    return -1;
}

static __always_inline void blockio_requests__complete(struct bpf_raw_tracepoint_args *ctx)
{
    int op = blockio_requests__op((void *)ctx->args[0]);
    if (op < 0)
        return;
    u64 bytes = (u32)ctx->args[2];
    u32 cpu = bpf_get_smp_processor_id();
    u32 idx = cpu * BLOCKIO_REQUESTS_ROW + (u32)op;
    u64 *ops = blockio_requests.lookup(&idx);
    if (ops)
        *ops += 1;
    idx += BLOCKIO_OPS;
    u64 *total = blockio_requests.lookup(&idx);
    if (total)
        *total += bytes;
    u32 row = cpu * RZ_HIST_ROW(BLOCKIO_OPS);
    idx = row + (u32)op * RZ_HIST_BUCKETS + rz_hist_index(bytes);
    u32 eidx = row + RZ_HIST_EVENTS(BLOCKIO_OPS) + (u32)op;
    rz_hist_add(blockio_size.lookup(&idx), blockio_size.lookup(&eidx));
}
