"""What the block samplers need from the kernel's BTF: where ``struct request`` keeps its op.

The raw tracepoints ``block_rq_issue`` and ``block_rq_complete`` pass the
request pointer (and, on completion, the bytes completed); the op is the low
bits of ``request.cmd_flags``.  Offsets and op numbers come from BTF, so they
are right for the running kernel whatever headers are installed.
"""

from __future__ import annotations

import functools

from rezolus_agent.samplers._btf import BtfError, lookup

OPS = ("read", "write", "flush", "discard")
_ENUMS = ("REQ_OP_READ", "REQ_OP_WRITE", "REQ_OP_FLUSH", "REQ_OP_DISCARD", "__REQ_FAILFAST_DEV")


@functools.cache
def request_cflags() -> tuple[str, ...]:
    """-D flags: cmd_flags offset, op mask and the kernel's numbers for the four ops."""
    offsets, values = lookup({"request": ("cmd_flags",)}, _ENUMS)
    op_bits = values["__REQ_FAILFAST_DEV"]
    if not 0 < op_bits <= 16:
        raise BtfError(f"unexpected request op width {op_bits} bits")
    flags = [
        f"-DBLOCKIO_RQ_CMD_FLAGS={offsets['request']['cmd_flags']}",
        f"-DBLOCKIO_REQ_OP_MASK={(1 << op_bits) - 1}",
    ]
    flags += [f"-DBLOCKIO_{name}={values[name]}" for name in _ENUMS[:4]]
    return tuple(flags)
