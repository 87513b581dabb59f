"""What one helper or map operation costs inside a BPF program on this kernel (run statistics, one run).

    .venv/bin/python bench/bpf_helpers_bench.py [--calls 2000000]

Attaches one tiny program per operation to raw_syscalls:sys_enter (each its
own object: bcc attaches one program per raw tracepoint and object), holds
BPF_ENABLE_STATS, makes getppid calls and prints each program's mean
run_time_ns per run.  The empty program's figure is what the statistics
themselves measure around any program; the others' excess over it is the
operation.  Explains where the per-event nanoseconds of the samplers go
(docs/performance.md, "The per-event BPF paths, and where the nanoseconds
go").
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

from bcc import BPF

sys.path.insert(0, str(Path(__file__).resolve().parent))
import agent_bench

from rezolus_agent import bpfsys

OPS = {
    "warm-up (not reported: the first program on the hook meets the cold caches)": "return 0;",
    "empty": "return 0;",
    "bpf_get_smp_processor_id": "u32 c = bpf_get_smp_processor_id(); return c == 100000;",
    "array lookup + plain add": "u32 k = 3; u64 *v = arr.lookup(&k); if (v) *v += 1; return 0;",
    "array lookup + atomic add": "u32 k = 3; u64 *v = arr.lookup(&k); if (v) __sync_fetch_and_add(v, 1); return 0;",
    "bpf_get_current_pid_tgid": "u64 t = bpf_get_current_pid_tgid(); return t == 1;",
    "bpf_get_current_cgroup_id": "u64 t = bpf_get_current_cgroup_id(); return t == 1;",
    "task storage get (create)": "struct task_struct *t = bpf_get_current_task_btf(); "
                                 "u64 *v = ts.task_storage_get(t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE); "
                                 "if (v) *v += 1; return 0;",
    "hash lookup, u64 key (cgroup id)": "u64 k = bpf_get_current_cgroup_id(); u32 *v = h.lookup(&k); return v ? 1 : 0;",
    "LRU hash update, u64 key": "u64 k = bpf_get_current_pid_tgid(); u64 n = 1; lru.update(&k, &n); return 0;",
    "bpf_ktime_get_ns": "u64 t = bpf_ktime_get_ns(); return t == 1;",
    "two bpf_ktime_get_ns (entry and exit stamps)": "u64 t = bpf_ktime_get_ns(); u64 u = bpf_ktime_get_ns(); "
                                                    "return t == u;",
    "bpf_get_current_task_btf (a helper call, not inlined)": "struct task_struct *t = bpf_get_current_task_btf(); "
                                                             "return t == 0;",
    "task storage get (no create)": "struct task_struct *t = bpf_get_current_task_btf(); "
                                    "u64 *v = ts.task_storage_get(t, 0, 0); if (v) *v += 1; return 0;",
}
HEAD = ('BPF_ARRAY(arr, u64, 16);\nBPF_HASH(h, u64, u32, 2048);\nBPF_TABLE("lru_hash", u64, u64, lru, 8192);\n'
        "BPF_TASK_STORAGE(ts, u64);\n")


def stats() -> dict[int, tuple[int, int]]:
    found = {}
    for info in Path("/proc/self/fdinfo").iterdir():
        try:
            text = info.read_text()
        except OSError:
            continue
        prog = re.search(r"^prog_id:\s+(\d+)", text, re.MULTILINE)
        cnt = re.search(r"^run_cnt:\s+(\d+)", text, re.MULTILINE)
        ns = re.search(r"^run_time_ns:\s+(\d+)", text, re.MULTILINE)
        if prog and cnt and ns:
            found[int(prog.group(1))] = (int(cnt.group(1)), int(ns.group(1)))
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2_000_000)
    args = parser.parse_args()
    binary = agent_bench.build_getppid()
    hold = bpfsys.enable_stats()
    objects = []
    ids: dict[int, str] = {}
    for i, (label, body) in enumerate(OPS.items()):
        before = set(stats())
        bpf = BPF(text=HEAD + f"int op_{i}(struct bpf_raw_tracepoint_args *ctx) {{ {body} }}")
        bpf.attach_raw_tracepoint(tp="sys_enter", fn_name=f"op_{i}")
        objects.append(bpf)
        ids.update(dict.fromkeys(set(stats()) - before, label))
    first = stats()
    subprocess.run([str(binary), str(args.calls)], check=True, capture_output=True)
    last = stats()
    os.close(hold)
    print(f"load average {Path('/proc/loadavg').read_text().split()[0]}; {agent_bench.host_bpf_state()}\n")
    print("| operation in a raw_syscalls:sys_enter program | ns per run | over the empty program |")
    print("|---|---|---|")
    per = {}
    for pid, label in ids.items():
        runs = last[pid][0] - first[pid][0]
        per[label] = (last[pid][1] - first[pid][1]) / runs if runs else float("nan")
    for label in list(OPS)[1:]:
        print(f"| {label} | {per[label]:.0f} | {per[label] - per['empty']:+.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
