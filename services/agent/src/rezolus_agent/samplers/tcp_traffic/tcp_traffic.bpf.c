/* tcp_traffic: raw tracepoints sock_send_length(sk, ret, flags),
 * sock_recv_length(sk, ret, flags) and tcp_probe(sk, skb).
 * Emits TCP bytes moved by send/receive calls (and bytes per call), and
 * segments processed by established sockets.
 *
 * sock_*_length fire once per sendmsg/recvmsg with the return value; only
 * AF_INET/AF_INET6 sockets with protocol 6 (TCP) and positive returns count,
 * and MSG_PEEK receives are skipped (the data stays queued). Family and
 * protocol are read from the socket at BTF offsets (RZ_SK_FAMILY,
 * RZ_SK_PROTOCOL). tcp_probe fires once per skb processed by
 * tcp_rcv_established.
 * tcp_traffic: [cpu] rows of RZ_ROW(3): bytes rx, bytes tx, segments rx.
 * tcp_size:    [cpu] rows of RZ_HIST_ROW(2): [direction 0 rx, 1 tx][bucket],
 *              bytes per call, then the event counts.
 */
#define TCP_TRAFFIC_ROW RZ_ROW(3)
#define TCP_TRAFFIC_MSG_PEEK 2

RZ_ARRAY(tcp_traffic, RZ_NR_CPUS * TCP_TRAFFIC_ROW);
RZ_ARRAY(tcp_size, RZ_NR_CPUS * RZ_HIST_ROW(2));

static __always_inline int tcp_traffic__is_tcp(u64 sk)
{
    u16 family = 0, protocol = 0;
    bpf_probe_read_kernel(&family, sizeof(family), (void *)(sk + RZ_SK_FAMILY));
    bpf_probe_read_kernel(&protocol, sizeof(protocol), (void *)(sk + RZ_SK_PROTOCOL));
    return (family == 2 || family == 10) && protocol == 6;
}

static __always_inline void tcp_traffic__add(u32 direction, u64 bytes)
{
    u32 cpu = bpf_get_smp_processor_id();
    u32 idx = cpu * TCP_TRAFFIC_ROW + direction;
    u64 *total = tcp_traffic.lookup(&idx);
    if (total)
        *total += bytes;
    u32 row = cpu * RZ_HIST_ROW(2);
    idx = row + direction * RZ_HIST_BUCKETS + rz_hist_index(bytes);
    u32 eidx = row + RZ_HIST_EVENTS(2) + direction;
    rz_hist_add(tcp_size.lookup(&idx), tcp_size.lookup(&eidx));
}

static __always_inline void tcp_traffic__send(struct bpf_raw_tracepoint_args *ctx)
{
    int ret = (int)ctx->args[1];
    if (ret > 0 && tcp_traffic__is_tcp(ctx->args[0]))
        tcp_traffic__add(1, (u64)ret);
}

static __always_inline void tcp_traffic__recv(struct bpf_raw_tracepoint_args *ctx)
{
    int ret = (int)ctx->args[1];
    int flags = (int)ctx->args[2];
    if (ret > 0 && !(flags & TCP_TRAFFIC_MSG_PEEK) && tcp_traffic__is_tcp(ctx->args[0]))
        tcp_traffic__add(0, (u64)ret);
}

static __always_inline void tcp_traffic__probe(struct bpf_raw_tracepoint_args *ctx)
{
    u32 idx = bpf_get_smp_processor_id() * TCP_TRAFFIC_ROW + 2;
    u64 *segments = tcp_traffic.lookup(&idx);
    if (segments)
        *segments += 1;
}
