"""blockio_requests: completed block requests, bytes and sizes by operation.

Attaches to the raw tracepoint ``block_rq_complete`` (``bpf/blockio_requests.bpf.c``);
the op is read from ``struct request`` at an offset taken from the kernel's BTF.
Emits ``blockio_operations{op}`` (counter,
operations), ``blockio_bytes{op}`` (counter, bytes) and ``blockio_size{op}``
(histogram, bytes per completion) for op = read, write, flush, discard.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rezolus_agent.sampler import BpfSpec, Hook, Sampler, SamplerUnavailable
from rezolus_agent.samplers._blockio import OPS, request_cflags
from rezolus_core.histogram import layout

if TYPE_CHECKING:
    from rezolus_agent.bpfload import BpfMaps
    from rezolus_agent.series import FrameBuilder

ROW = 8


class BlockioRequests(Sampler):
    """Block request completions by op."""

    name = "blockio_requests"
    bpf = BpfSpec(
        source="blockio_requests.bpf.c",
        hooks=(Hook("raw_tracepoint", "block_rq_complete", "blockio_requests__complete"),),
        maps=("blockio_requests", "blockio_size"),
    )

    def cflags(self) -> tuple[str, ...]:
        """Offsets and op numbers of ``struct request`` from the kernel's BTF."""
        return request_cflags()

    def start(self, maps: BpfMaps | None) -> None:
        """Register counters and size histograms per op."""
        if maps is None:
            raise SamplerUnavailable("BPF is not available")
        cpus = self.ctx.cpus
        self._counts = maps.array("blockio_requests").reshape(cpus, ROW)
        self._sizes = maps.array("blockio_size").reshape(cpus, len(OPS), layout().buckets)
        reg = self.ctx.registry
        ops = [reg.counter("blockio_operations", {"op": op}, "operations", "Block requests completed.") for op in OPS]
        sizes = [reg.counter("blockio_bytes", {"op": op}, "bytes", "Bytes of completed block requests.") for op in OPS]
        self._ids = np.array(ops + sizes, dtype=np.uint32)
        self._size_ids = [
            reg.histogram("blockio_size", {"op": op}, "bytes", "Bytes per block request completion.") for op in OPS
        ]

    def sample(self, out: FrameBuilder) -> None:
        """Sum the per-CPU rows."""
        out.counters(self._ids, self._counts.sum(axis=0, dtype=np.uint64))
        totals = self._sizes.sum(axis=0, dtype=np.uint64)
        for sid, row in zip(self._size_ids, totals, strict=True):
            out.histogram(sid, row)


SAMPLER = BlockioRequests
