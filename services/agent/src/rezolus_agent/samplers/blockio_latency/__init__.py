"""blockio_latency: block request latency from issue to completion, by operation.

Attaches to the raw tracepoints ``block_rq_issue`` and ``block_rq_complete``
(``blockio_latency.bpf.c``); the op is read from ``struct request`` at a BTF
offset.  Emits ``blockio_latency{op}`` (histogram, nanoseconds) for op = read,
write, flush, discard.  Requests are matched by their ``struct request``
pointer through a 2-way set-associative table of issue times; the BPF source
lists the limits.  Option ``slots``: issue-time slots, a power of two
(default 16384).
"""

from __future__ import annotations

from rezolus_agent.sampler import BpfSampler, BpfSpec, raw
from rezolus_agent.samplers._blockio import OPS, request_cflags
from rezolus_agent.wiring import Histograms, each


class BlockioLatency(BpfSampler):
    """Histograms of block request latency per op."""

    name = "blockio_latency"
    bpf = BpfSpec(
        hooks=(
            raw("block_rq_issue", "blockio_latency__issue"),
            raw("block_rq_complete", "blockio_latency__complete"),
        ),
        maps=("blockio_latency", "blockio_latency_start"),
        metrics=(
            Histograms("blockio_latency", each(
                "blockio_latency", "nanoseconds", "Block request latency, issue to completion.", "op", OPS)),
        ),
        btf=request_cflags,
    )

    def options(self) -> None:
        """``slots``: issue-time slots, a power of two (see the BPF source for why)."""
        super().options()
        self.slots = self.ctx.options.integer("slots", 16384, minimum=64, maximum=1 << 20)
        if self.slots & (self.slots - 1):
            raise self.ctx.options.error("slots", f"{self.slots} is not a power of two")

    def cflags(self) -> tuple[str, ...]:
        """``struct request`` offsets from the kernel's BTF, and the slot count as a power of two."""
        return (*super().cflags(), f"-DBLOCKIO_SLOTS_LOG2={self.slots.bit_length() - 1}")


SAMPLER = BlockioLatency
