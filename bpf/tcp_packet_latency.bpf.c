/* tcp_packet_latency: tcp:tcp_probe, tcp:tcp_rcv_space_adjust,
 * tcp:tcp_destroy_sock (tracepoint fields only).
 * Emits the time from the arrival of the oldest unread data segment on a
 * socket (tcp_probe with data_len > 0, when no earlier arrival is pending)
 * to the application's next read of that socket (tcp_rcv_space_adjust runs
 * in tcp_recvmsg after copying), in ns: the same definition as the original
 * (after bcc's tcppktlat). Pending arrivals are keyed by socket address in an
 * LRU hash bounded by TCP_PACKET_MAX_SOCKETS and dropped when the socket is
 * destroyed, so a reused address never inherits a stale time.
 * tcp_packet_latency: [cpu][bucket].
 */
#ifndef TCP_PACKET_MAX_SOCKETS
#define TCP_PACKET_MAX_SOCKETS 16384
#endif

RZ_ARRAY(tcp_packet_latency, RZ_NR_CPUS * RZ_HIST_BUCKETS);
BPF_TABLE("lru_hash", u64, u64, tcp_packet_start, TCP_PACKET_MAX_SOCKETS);

static int tcp_packet_latency__probe(void *raw)
{
    struct tracepoint__tcp__tcp_probe *args = raw;
    if (args->data_len == 0)
        return 0;
    u64 sk = (u64)args->skaddr;
    if (tcp_packet_start.lookup(&sk))
        return 0;
    u64 now = bpf_ktime_get_ns();
    tcp_packet_start.update(&sk, &now);
    return 0;
}

static int tcp_packet_latency__read(void *raw)
{
    struct tracepoint__tcp__tcp_rcv_space_adjust *args = raw;
    u64 sk = (u64)args->skaddr;
    u64 *start = tcp_packet_start.lookup(&sk);
    if (!start)
        return 0;
    u64 begun = *start;
    tcp_packet_start.delete(&sk);
    u64 now = bpf_ktime_get_ns();
    u64 delta = now > begun ? now - begun : 0;
    u32 idx = bpf_get_smp_processor_id() * RZ_HIST_BUCKETS + rz_hist_index(delta);
    u64 *bucket = tcp_packet_latency.lookup(&idx);
    if (bucket)
        *bucket += 1;
    return 0;
}

static int tcp_packet_latency__destroy(void *raw)
{
    struct tracepoint__tcp__tcp_destroy_sock *args = raw;
    u64 sk = (u64)args->skaddr;
    tcp_packet_start.delete(&sk);
    return 0;
}
