/* tcp_receive: raw tracepoint tcp_probe(sk, skb) (once per skb processed by
 * tcp_rcv_established). Emits the smoothed RTT (tcp_sock.srtt_us / 8) and
 * the RTT mean deviation (tcp_sock.mdev_us / 4) per processed skb, in ns
 * with microsecond resolution; both read at BTF offsets (RZ_TCP_SRTT_US,
 * RZ_TCP_MDEV_US). Sockets without an RTT estimate yet (srtt 0) are skipped.
 * tcp_srtt, tcp_jitter: [cpu] rows of RZ_HIST_ROW(1): [bucket], then the event counts.
 */
RZ_ARRAY(tcp_srtt, RZ_NR_CPUS * RZ_HIST_ROW(1));
RZ_ARRAY(tcp_jitter, RZ_NR_CPUS * RZ_HIST_ROW(1));

static __always_inline void tcp_receive__probe(struct bpf_raw_tracepoint_args *ctx)
{
    u64 sk = ctx->args[0];
    u32 srtt = 0, mdev = 0;
    if (bpf_probe_read_kernel(&srtt, sizeof(srtt), (void *)(sk + RZ_TCP_SRTT_US)) != 0)
        return;
    srtt >>= 3;
    if (srtt == 0)
        return;
    u32 base = bpf_get_smp_processor_id() * RZ_HIST_ROW(1);
    u32 eidx = base + RZ_HIST_EVENTS(1);
    u32 idx = base + rz_hist_index((u64)srtt * 1000);
    rz_hist_add(tcp_srtt.lookup(&idx), tcp_srtt.lookup(&eidx));
    if (bpf_probe_read_kernel(&mdev, sizeof(mdev), (void *)(sk + RZ_TCP_MDEV_US)) != 0)
        return;
    idx = base + rz_hist_index((u64)(mdev >> 2) * 1000);
    rz_hist_add(tcp_jitter.lookup(&idx), tcp_jitter.lookup(&eidx));
}
