"""Attach EMPTY BPF programs to the tracepoints the agent's samplers use: the floor of any BPF on those hooks.

    .venv/bin/python bench/empty_programs.py [sampler ...]   (default: every BPF sampler)
    .venv/bin/python bench/empty_programs.py --latency-floor

Prints "Tracing" once attached and stays until SIGINT/SIGTERM.  The benches
run workloads under it to show what attaching anything at all costs, so the
agent's own share (its handlers, maps and atomics) can be read off.

``--latency-floor`` attaches, instead, the least any per-thread syscall
latency histogram needs on raw_syscalls:sys_enter/sys_exit: a task-storage
stamp from a clock read at entry, a second clock read and one array store
at exit (no counting, no cgroup, no bucket index).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys

from bcc import BPF

from rezolus_agent.registry import available
from rezolus_agent.sampler import BpfSampler

LATENCY_FLOOR = """
BPF_ARRAY(rz_floor_delta, u64, 64);
BPF_TASK_STORAGE(rz_floor_task, u64);
int rz_floor_enter(struct bpf_raw_tracepoint_args *ctx) {
    struct task_struct *task = bpf_get_current_task_btf();
    u64 *ts = rz_floor_task.task_storage_get(task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (ts)
        *ts = bpf_ktime_get_ns();
    return 0;
}
int rz_floor_exit(struct bpf_raw_tracepoint_args *ctx) {
    struct task_struct *task = bpf_get_current_task_btf();
    u64 *ts = rz_floor_task.task_storage_get(task, 0, 0);
    if (!ts || *ts == 0)
        return 0;
    u32 cpu = bpf_get_smp_processor_id() & 63;
    u64 *delta = rz_floor_delta.lookup(&cpu);
    if (delta)
        *delta = bpf_ktime_get_ns() - *ts;
    *ts = 0;
    return 0;
}
"""


def wait_for_signal(message: str) -> None:
    """Print ``message`` (starting with "Tracing") and return on SIGTERM or ^C."""
    print(message, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt):
        signal.pause()


def main() -> int:
    """Attach empty programs on the hooks of the named BPF samplers (default: all) until SIGTERM or ^C."""
    classes = available()
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("samplers", nargs="*", choices=[[], *sorted(classes)], metavar="SAMPLER")
    parser.add_argument("--latency-floor", action="store_true",
                        help="the least a syscall latency histogram needs, on sys_enter/sys_exit only")
    args = parser.parse_args()
    if args.latency_floor:
        floor = BPF(text=LATENCY_FLOOR)
        floor.attach_raw_tracepoint(tp="sys_enter", fn_name="rz_floor_enter")
        floor.attach_raw_tracepoint(tp="sys_exit", fn_name="rz_floor_exit")
        wait_for_signal("Tracing latency floor on ['sys_enter', 'sys_exit']")
        return 0
    names = args.samplers or [n for n, c in classes.items() if issubclass(c, BpfSampler)]
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
    wait_for_signal(f"Tracing {sorted(raw)} {sorted(tracepoints)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
