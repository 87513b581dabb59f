"""What the TCP samplers read from the kernel's BTF: socket and skb member offsets.

The TCP samplers attach to raw tracepoints (cheaper than perf tracepoints, and
never skipped when another tracing program or a BPF map syscall is active on
the CPU).  Raw tracepoints pass ``struct sock *`` / ``struct sk_buff *``;
the few members read from them are located through the running kernel's BTF.
"""

from __future__ import annotations

from rezolus_agent import btf

FIELDS = {
    "RZ_SK_FAMILY": "sock.__sk_common.skc_family",
    "RZ_SK_PROTOCOL": "sock.sk_protocol",
    "RZ_TCP_SRTT_US": "tcp_sock.srtt_us",
    "RZ_TCP_MDEV_US": "tcp_sock.mdev_us",
    "RZ_SKB_LEN": "sk_buff.len",
    "RZ_SKB_DATA": "sk_buff.data",
}


def tcp_cflags() -> tuple[str, ...]:
    """-D flags with the offsets the TCP raw-tracepoint handlers read (BtfError when one is missing)."""
    return btf.offsets(FIELDS)
