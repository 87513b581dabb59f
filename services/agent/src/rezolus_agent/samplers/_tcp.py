"""Shared pieces of the TCP samplers: BTF offsets for their raw tracepoints, per-CPU histograms.

The TCP samplers attach to raw tracepoints (cheaper than perf tracepoints, and
never skipped when another tracing program or a BPF map syscall is active on
the CPU).  Raw tracepoints pass ``struct sock *`` / ``struct sk_buff *``;
the few members read from them are located through the running kernel's BTF.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

from rezolus_agent.samplers._btf import lookup
from rezolus_core.histogram import layout

if TYPE_CHECKING:
    from rezolus_agent.bpfload import BpfMaps
    from rezolus_agent.series import FrameBuilder, SeriesRegistry


class HostHistogram:
    """A ``[cpu][bucket]`` map emitted as one histogram series."""

    def __init__(self, maps: BpfMaps, cpus: int, registry: SeriesRegistry, name: str, description: str) -> None:
        self._rows = maps.array(name).reshape(cpus, layout().buckets)
        self._id = registry.histogram(name, None, "nanoseconds", description)

    def emit(self, out: FrameBuilder) -> None:
        """Sum the CPUs' rows."""
        out.histogram(self._id, self._rows.sum(axis=0, dtype=np.uint64))


_STRUCTS = {
    "sock": ("__sk_common", "sk_protocol"),
    "sock_common": ("skc_family",),
    "tcp_sock": ("srtt_us", "mdev_us"),
    "sk_buff": ("len", "data"),
}


@functools.cache
def tcp_cflags() -> tuple[str, ...]:
    """-D flags with the offsets the TCP raw-tracepoint handlers read, from the kernel's BTF.

    Raises BtfError (a BpfError: the loader reports the sampler unavailable) when one is missing.
    """
    found, _ = lookup(_STRUCTS)
    return (
        f"-DRZ_SK_FAMILY={found['sock']['__sk_common'] + found['sock_common']['skc_family']}",
        f"-DRZ_SK_PROTOCOL={found['sock']['sk_protocol']}",
        f"-DRZ_TCP_SRTT_US={found['tcp_sock']['srtt_us']}",
        f"-DRZ_TCP_MDEV_US={found['tcp_sock']['mdev_us']}",
        f"-DRZ_SKB_LEN={found['sk_buff']['len']}",
        f"-DRZ_SKB_DATA={found['sk_buff']['data']}",
    )
