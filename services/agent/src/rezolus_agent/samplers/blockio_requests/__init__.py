"""blockio_requests: completed block requests, bytes and sizes by operation.

Attaches to the raw tracepoint ``block_rq_complete`` (``blockio_requests.bpf.c``);
the op is read from ``struct request`` at an offset taken from the kernel's BTF.
Emits ``blockio_operations{op}`` (counter, operations), ``blockio_bytes{op}``
(counter, bytes) and ``blockio_size{op}`` (histogram, bytes per completion)
for op = read, write, flush, discard.
"""

from __future__ import annotations

from rezolus_agent.sampler import BpfSampler, BpfSpec, raw
from rezolus_agent.samplers._blockio import OPS, request_cflags
from rezolus_agent.wiring import Counters, Histograms, each


class BlockioRequests(BpfSampler):
    """Block request completions by op."""

    name = "blockio_requests"
    bpf = BpfSpec(
        hooks=(raw("block_rq_complete", "blockio_requests__complete"),),
        maps=("blockio_requests", "blockio_size"),
        metrics=(
            Counters("blockio_requests", (
                *each("blockio_operations", "operations", "Block requests completed.", "op", OPS),
                *each("blockio_bytes", "bytes", "Bytes of completed block requests.", "op", OPS),
            )),
            Histograms("blockio_size", each("blockio_size", "bytes", "Bytes per block request completion.", "op", OPS)),
        ),
        btf=request_cflags,
    )


SAMPLER = BlockioRequests
