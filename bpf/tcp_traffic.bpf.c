/* tcp_traffic: sock:sock_send_length, sock:sock_recv_length, tcp:tcp_probe
 * (tracepoint fields only).
 * Emits TCP bytes moved by send/receive calls (and bytes per call), and
 * segments received by established sockets.
 *
 * sock_*_length fire once per sendmsg/recvmsg on a socket with the return
 * value; only protocol 6 (TCP) and positive returns count, and MSG_PEEK
 * receives are skipped (the data stays queued). tcp_probe fires once per
 * segment processed by tcp_rcv_established.
 * tcp_traffic: [cpu] rows of RZ_ROW(3): bytes rx, bytes tx, segments rx.
 * tcp_size:    [cpu][direction 0 rx, 1 tx][bucket], bytes per call.
 */
#define TCP_TRAFFIC_ROW RZ_ROW(3)
#define TCP_TRAFFIC_MSG_PEEK 2

RZ_ARRAY(tcp_traffic, RZ_NR_CPUS * TCP_TRAFFIC_ROW);
RZ_ARRAY(tcp_size, RZ_NR_CPUS * 2 * RZ_HIST_BUCKETS);

static __always_inline void tcp_traffic__add(u32 direction, int ret)
{
    u32 cpu = bpf_get_smp_processor_id();
    u32 idx = cpu * TCP_TRAFFIC_ROW + direction;
    u64 *bytes = tcp_traffic.lookup(&idx);
    if (bytes)
        *bytes += (u64)ret;
    idx = (cpu * 2 + direction) * RZ_HIST_BUCKETS + rz_hist_index((u64)ret);
    u64 *bucket = tcp_size.lookup(&idx);
    if (bucket)
        *bucket += 1;
}

static int tcp_traffic__send(void *raw)
{
    struct tracepoint__sock__sock_send_length *args = raw;
    if (args->protocol == 6 && args->ret > 0)
        tcp_traffic__add(1, args->ret);
    return 0;
}

static int tcp_traffic__recv(void *raw)
{
    struct tracepoint__sock__sock_recv_length *args = raw;
    if (args->protocol == 6 && args->ret > 0 && !(args->flags & TCP_TRAFFIC_MSG_PEEK))
        tcp_traffic__add(0, args->ret);
    return 0;
}

static int tcp_traffic__probe(void *raw)
{
    u32 idx = bpf_get_smp_processor_id() * TCP_TRAFFIC_ROW + 2;
    u64 *segments = tcp_traffic.lookup(&idx);
    if (segments)
        *segments += 1;
    return 0;
}
