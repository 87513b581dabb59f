/* tcp_retransmit: raw tracepoints tcp_retransmit_skb(sk, skb, err) and
 * tcp_retransmit_synack(sk, req).
 * Emits retransmissions: every successful tcp_retransmit_skb (err == 0) and
 * every SYN-ACK retransmission. One event is one retransmitted skb, which is
 * one segment unless the skb is a GSO/TSO super-packet.
 * tcp_retransmit: [cpu] rows of RZ_ROW(1).
 */
RZ_ARRAY(tcp_retransmit, RZ_NR_CPUS * RZ_ROW(1));

static __always_inline void tcp_retransmit__count(void)
{
    u32 idx = bpf_get_smp_processor_id() * RZ_ROW(1);
    u64 *count = tcp_retransmit.lookup(&idx);
    if (count)
        *count += 1;
}

static __always_inline void tcp_retransmit__skb(struct bpf_raw_tracepoint_args *ctx)
{
    if ((int)ctx->args[2] == 0)
        tcp_retransmit__count();
}

static __always_inline void tcp_retransmit__synack(struct bpf_raw_tracepoint_args *ctx)
{
    tcp_retransmit__count();
}
