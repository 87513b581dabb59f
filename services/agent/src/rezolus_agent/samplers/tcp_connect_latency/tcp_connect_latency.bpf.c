/* tcp_connect_latency: raw tracepoint inet_sock_set_state(sk, oldstate,
 * newstate), TCP sockets only (protocol read at the BTF offset RZ_SK_PROTOCOL).
 * Emits the time an active open spends in SYN_SENT: from the transition
 * CLOSE -> SYN_SENT (inside connect(), before the SYN is sent) to
 * SYN_SENT -> ESTABLISHED (the SYN-ACK processed), in nanoseconds.
 * Failed connects (SYN_SENT -> CLOSE) are dropped, not recorded.
 * Start times are keyed by the socket address in an LRU hash bounded by
 * TCP_CONNECT_MAX_PENDING; only state changes touch it (a few per connection).
 * tcp_connect_latency: [cpu] rows of RZ_HIST_ROW(1): [bucket], then the event counts.
 */
#define TCP_ESTABLISHED_STATE 1
#define TCP_SYN_SENT_STATE 2
#ifndef TCP_CONNECT_MAX_PENDING
#define TCP_CONNECT_MAX_PENDING 8192
#endif

RZ_ARRAY(tcp_connect_latency, RZ_NR_CPUS * RZ_HIST_ROW(1));
BPF_TABLE("lru_hash", u64, u64, tcp_connect_start, TCP_CONNECT_MAX_PENDING);

static __always_inline void tcp_connect_latency__state(struct bpf_raw_tracepoint_args *ctx)
{
    u64 sk = ctx->args[0];
    int oldstate = (int)ctx->args[1];
    int newstate = (int)ctx->args[2];
    if (newstate != TCP_SYN_SENT_STATE && oldstate != TCP_SYN_SENT_STATE)
        return;
    u16 protocol = 0;
    bpf_probe_read_kernel(&protocol, sizeof(protocol), (void *)(sk + RZ_SK_PROTOCOL));
    if (protocol != 6)
        return;
    if (newstate == TCP_SYN_SENT_STATE) {
        u64 now = bpf_ktime_get_ns();
        tcp_connect_start.update(&sk, &now);
        return;
    }
    u64 *start = tcp_connect_start.lookup(&sk);
    if (!start)
        return;
    u64 begun = *start;
    tcp_connect_start.delete(&sk);
    if (newstate != TCP_ESTABLISHED_STATE)
        return;
    u64 now = bpf_ktime_get_ns();
    u64 delta = now > begun ? now - begun : 0;
    u32 row = bpf_get_smp_processor_id() * RZ_HIST_ROW(1);
    u32 idx = row + rz_hist_index(delta);
    u32 eidx = row + RZ_HIST_EVENTS(1);
    rz_hist_add(tcp_connect_latency.lookup(&idx), tcp_connect_latency.lookup(&eidx));
}
