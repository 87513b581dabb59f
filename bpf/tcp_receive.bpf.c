/* tcp_receive: tcp:tcp_probe (fires per segment in tcp_rcv_established).
 * Emits the smoothed RTT (the tracepoint's srtt field, microseconds) and
 * the RTT mean deviation (tcp_sock.mdev_us / 4, read at the offset taken
 * from the kernel's BTF: TCP_SOCK_MDEV_US) per received segment, in ns.
 * Sockets without an RTT estimate yet (srtt 0) are not recorded.
 * tcp_srtt, tcp_jitter: [cpu][bucket].
 */
RZ_ARRAY(tcp_srtt, RZ_NR_CPUS * RZ_HIST_BUCKETS);
RZ_ARRAY(tcp_jitter, RZ_NR_CPUS * RZ_HIST_BUCKETS);

static int tcp_receive__probe(void *raw)
{
    struct tracepoint__tcp__tcp_probe *args = raw;
    u64 srtt = args->srtt;
    if (srtt == 0)
        return 0;
    u32 base = bpf_get_smp_processor_id() * RZ_HIST_BUCKETS;
    u32 idx = base + rz_hist_index(srtt * 1000);
    u64 *bucket = tcp_srtt.lookup(&idx);
    if (bucket)
        *bucket += 1;
    u32 mdev = 0;
    if (bpf_probe_read_kernel(&mdev, sizeof(mdev), (char *)args->skaddr + TCP_SOCK_MDEV_US) != 0)
        return 0;
    idx = base + rz_hist_index((u64)(mdev >> 2) * 1000);
    bucket = tcp_jitter.lookup(&idx);
    if (bucket)
        *bucket += 1;
    return 0;
}
