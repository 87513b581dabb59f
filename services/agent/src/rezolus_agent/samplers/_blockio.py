"""What the block samplers need from the kernel's BTF: where ``struct request`` keeps its op.

The raw tracepoints ``block_rq_issue`` and ``block_rq_complete`` pass the
request pointer (and, on completion, the bytes completed); the op is the low
bits of ``request.cmd_flags``.  Offsets and op numbers come from BTF, so they
are right for the running kernel whatever headers are installed.
"""

from __future__ import annotations

from rezolus_agent import btf

OPS = ("read", "write", "flush", "discard")
_OP_ENUMS = ("REQ_OP_READ", "REQ_OP_WRITE", "REQ_OP_FLUSH", "REQ_OP_DISCARD")


def request_cflags() -> tuple[str, ...]:
    """-D flags: cmd_flags offset, op mask and the kernel's numbers for the four ops."""
    kernel = btf.kernel()
    op_bits = kernel.enum_value("__REQ_FAILFAST_DEV")
    if not 0 < op_bits <= 16:
        raise btf.BtfError(f"unexpected request op width {op_bits} bits")
    return (
        f"-DBLOCKIO_RQ_CMD_FLAGS={kernel.offset('request.cmd_flags')}",
        f"-DBLOCKIO_REQ_OP_MASK={(1 << op_bits) - 1}",
        *(f"-DBLOCKIO_{name}={kernel.enum_value(name)}" for name in _OP_ENUMS),
    )
