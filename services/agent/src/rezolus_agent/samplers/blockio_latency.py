"""blockio_latency: block request latency from issue to completion, by operation.

Attaches to the raw tracepoints ``block_rq_issue`` and ``block_rq_complete``
(``bpf/blockio_latency.bpf.c``); the op is read from ``struct request`` at a BTF offset.  Emits ``blockio_latency{op}``
(histogram, nanoseconds) for op = read, write, flush, discard.  Requests are
matched by their ``struct request`` pointer through a 2-way set-associative
table of issue times; the BPF source lists the limits.
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


class BlockioLatency(Sampler):
    """Histograms of block request latency per op."""

    name = "blockio_latency"
    bpf = BpfSpec(
        source="blockio_latency.bpf.c",
        hooks=(
            Hook("raw_tracepoint", "block_rq_issue", "blockio_latency__issue"),
            Hook("raw_tracepoint", "block_rq_complete", "blockio_latency__complete"),
        ),
        maps=("blockio_latency", "blockio_latency_start"),
    )

    def options(self) -> None:
        """``slots``: issue-time slots, a power of two (default 16384; see the BPF source for why)."""
        self.slots = self.ctx.options.integer("slots", 16384, minimum=64, maximum=1 << 20)
        if self.slots & (self.slots - 1):
            raise self.ctx.options.error("slots", f"{self.slots} is not a power of two")

    def cflags(self) -> tuple[str, ...]:
        """Slot count; ``struct request`` offsets from the kernel's BTF."""
        return (*request_cflags(), f"-DBLOCKIO_SLOTS_LOG2={self.slots.bit_length() - 1}")

    def start(self, maps: BpfMaps | None) -> None:
        """Register one histogram per op."""
        if maps is None:
            raise SamplerUnavailable("BPF is not available")
        self._hist = maps.array("blockio_latency").reshape(self.ctx.cpus, len(OPS), layout().buckets)
        reg = self.ctx.registry
        self._ids = [
            reg.histogram(
                "blockio_latency",
                {"op": op},
                "nanoseconds",
                "Block request latency, issue to completion.",
            )
            for op in OPS
        ]

    def sample(self, out: FrameBuilder) -> None:
        """Sum the per-CPU histograms."""
        totals = self._hist.sum(axis=0, dtype=np.uint64)
        for sid, row in zip(self._ids, totals, strict=True):
            out.histogram(sid, row)


SAMPLER = BlockioLatency
