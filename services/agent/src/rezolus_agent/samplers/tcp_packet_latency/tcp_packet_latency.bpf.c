/* tcp_packet_latency: raw tracepoints tcp_probe(sk, skb),
 * tcp_rcv_space_adjust(sk) and tcp_destroy_sock(sk).
 * Emits the time from the arrival of the oldest unread data segment on a
 * socket (tcp_probe with payload, when no earlier arrival is pending) to the
 * application's next read of that socket (tcp_rcv_space_adjust runs in
 * tcp_recvmsg after copying), in ns: the same definition as the original
 * (after bcc's tcppktlat). Payload = skb->len - TCP header length (doff from
 * the header at skb->data; offsets RZ_SKB_LEN, RZ_SKB_DATA from BTF).
 * Pending arrivals are keyed by socket address in an LRU hash bounded by
 * TCP_PACKET_MAX_SOCKETS and dropped when the socket is destroyed, so a
 * reused address never inherits a stale time.
 * tcp_packet_latency: [cpu] rows of RZ_HIST_ROW(1): [bucket], then the event counts.
 */
#ifndef TCP_PACKET_MAX_SOCKETS
#define TCP_PACKET_MAX_SOCKETS 16384
#endif

RZ_ARRAY(tcp_packet_latency, RZ_NR_CPUS * RZ_HIST_ROW(1));
BPF_TABLE("lru_hash", u64, u64, tcp_packet_start, TCP_PACKET_MAX_SOCKETS);

static __always_inline void tcp_packet_latency__probe(struct bpf_raw_tracepoint_args *ctx)
{
    u64 sk = ctx->args[0];
    if (tcp_packet_start.lookup(&sk))
        return;
    u64 skb = ctx->args[1];
    u32 len = 0;
    u64 data = 0;
    u8 doff = 0;
    bpf_probe_read_kernel(&len, sizeof(len), (void *)(skb + RZ_SKB_LEN));
    bpf_probe_read_kernel(&data, sizeof(data), (void *)(skb + RZ_SKB_DATA));
    if (bpf_probe_read_kernel(&doff, sizeof(doff), (void *)(data + 12)) != 0)
        return;
    if (len <= (u32)(doff >> 4) * 4)
        return;
    u64 now = bpf_ktime_get_ns();
    tcp_packet_start.update(&sk, &now);
}

static __always_inline void tcp_packet_latency__read(struct bpf_raw_tracepoint_args *ctx)
{
    u64 sk = ctx->args[0];
    u64 *start = tcp_packet_start.lookup(&sk);
    if (!start)
        return;
    u64 begun = *start;
    tcp_packet_start.delete(&sk);
    u64 now = bpf_ktime_get_ns();
    u64 delta = now > begun ? now - begun : 0;
    u32 row = bpf_get_smp_processor_id() * RZ_HIST_ROW(1);
    u32 idx = row + rz_hist_index(delta);
    u32 eidx = row + RZ_HIST_EVENTS(1);
    rz_hist_add(tcp_packet_latency.lookup(&idx), tcp_packet_latency.lookup(&eidx));
}

static __always_inline void tcp_packet_latency__destroy(struct bpf_raw_tracepoint_args *ctx)
{
    u64 sk = ctx->args[0];
    tcp_packet_start.delete(&sk);
}
