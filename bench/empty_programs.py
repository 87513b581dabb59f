"""Attach EMPTY BPF programs to the tracepoints the agent's samplers use: the floor of any BPF on those hooks.

    .venv/bin/python bench/empty_programs.py [sampler ...]   (default: every BPF sampler)

Prints "Tracing" once attached and stays until SIGINT/SIGTERM.  The benches
run workloads under it to show what attaching anything at all costs, so the
agent's own share (its handlers, maps and atomics) can be read off.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys

from bcc import BPF

from rezolus_agent.registry import available
from rezolus_agent.sampler import BpfSampler


def main() -> int:
    """Attach empty programs on the hooks of the named BPF samplers (default: all) until SIGTERM or ^C."""
    classes = available()
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("samplers", nargs="*", choices=[[], *sorted(classes)], metavar="SAMPLER")
    names = parser.parse_args().samplers or [n for n, c in classes.items() if issubclass(c, BpfSampler)]
    raw: set[str] = set()
    tracepoints: set[str] = set()
    for name in names:
        cls = classes[name]
        assert issubclass(cls, BpfSampler)
        for hook in cls.bpf.hooks:
            (raw if hook.kind == "raw_tracepoint" else tracepoints).add(hook.target)
    parts = [f"int rz_empty_raw_{i}(void *ctx) {{ return 0; }}" for i, _ in enumerate(sorted(raw))]
    parts += [f"int rz_empty_tp_{i}(void *ctx) {{ return 0; }}" for i, _ in enumerate(sorted(tracepoints))]
    bpf = BPF(text="\n".join(parts))
    for i, target in enumerate(sorted(raw)):
        bpf.attach_raw_tracepoint(tp=target, fn_name=f"rz_empty_raw_{i}")
    for i, target in enumerate(sorted(tracepoints)):
        bpf.attach_tracepoint(tp=target, fn_name=f"rz_empty_tp_{i}")
    print("Tracing", sorted(raw), sorted(tracepoints), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt):
        signal.pause()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
