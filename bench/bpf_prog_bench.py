"""Time spent INSIDE the BPF programs per event, from the kernel's own run statistics, side by side in one run.

    .venv/bin/python bench/bpf_prog_bench.py [--quick] [--tools syscall,syscount]

(``PYTHONPATH=<old tree>/services/agent/src`` in front runs an older agent.)

The wall/CPU-time benches (agent_bench.py, sched_bench.py) include the
dispatch of every program and whatever else the shared host does; this one
reads each program's ``run_cnt``/``run_time_ns`` (``/proc/PID/fdinfo`` of
the fds the tool holds, while this process holds ``BPF_ENABLE_STATS``), so
it shows what our handlers cost per run and is little moved by load (a
program runs with migration disabled; only cache and memory contention
reach it).  Programs fire for every process's events, so the figure is the
mean per run over all of them during the workload.

Workloads: a getppid loop (sys_enter + sys_exit per call) and `perf bench
sched pipe` on CPU 0 (switches, wake-ups, 4 syscalls per message).
Tools: the agent with only its syscall samplers, with only its scheduler
samplers, with every sampler, bcc's `syscount -L` and `runqlat`.
Prints markdown for docs/performance-history.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import agent_bench  # noqa: E402 - sibling bench module
import sched_bench  # noqa: E402 - sibling bench module
from _common import agent_config, start_agent, start_syscount, start_tool  # noqa: E402 - sibling bench module

from rezolus_agent import bpfsys  # noqa: E402

SYSCALL = ("syscall_counts", "syscall_latency")


def held_progs(pid: int) -> dict[int, tuple[int, int]]:
    """Prog id -> (run_cnt, run_time_ns) of every BPF program fd a process holds."""
    found: dict[int, tuple[int, int]] = {}
    for info in Path(f"/proc/{pid}/fdinfo").iterdir():
        try:
            text = info.read_text()
        except OSError:
            continue
        prog = re.search(r"^prog_id:\s+(\d+)", text, re.MULTILINE)
        if not prog:
            continue
        cnt = re.search(r"^run_cnt:\s+(\d+)", text, re.MULTILINE)
        ns = re.search(r"^run_time_ns:\s+(\d+)", text, re.MULTILINE)
        if cnt and ns:  # a program fd (a link fd names its program but has no statistics)
            found[int(prog.group(1))] = (int(cnt.group(1)), int(ns.group(1)))
    return found


def prog_names() -> dict[int, str]:
    out = subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True, text=True, check=True).stdout
    return {p["id"]: p.get("name", "?") for p in json.loads(out)}


def per_run(pid: int, workload: callable) -> dict[str, tuple[float, int]]:  # type: ignore[valid-type]
    """Name -> (ns per run, runs) of each program of ``pid`` over one run of ``workload``."""
    before = held_progs(pid)
    workload()
    after = held_progs(pid)
    names = prog_names()
    result: dict[str, tuple[float, int]] = {}
    for pid_, (cnt, ns) in after.items():
        c0, n0 = before.get(pid_, (0, 0))
        runs = cnt - c0
        if runs > 0:
            name = names.get(pid_, str(pid_))
            result[name] = ((ns - n0) / runs, runs)
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer rounds and events")
    parser.add_argument("--tools", default="", help="only tools whose label contains one of these (comma-separated)")
    args = parser.parse_args()
    rounds, calls, messages = (3, 1_000_000, 100_000) if args.quick else (5, 3_000_000, 300_000)
    binary = agent_bench.build_getppid()
    stats = bpfsys.enable_stats()
    tools = {
        "agent, syscall samplers": lambda: start_agent("1s", agent_config(list(SYSCALL), bpf_stats=False))[0],
        "agent, scheduler samplers": lambda: start_agent("1s", agent_config(sched_bench.SCHED, bpf_stats=False))[0],
        "agent, all samplers": lambda: start_agent("1s", agent_config(bpf_stats=False))[0],
        "syscount -L (bcc)": start_syscount,
        "runqlat (bcc)": lambda: start_tool(["runqlat-bpfcc", "3600", "1"]),
    }
    wanted = [w for w in args.tools.split(",") if w]
    tools = {k: v for k, v in tools.items() if not wanted or any(w in k for w in wanted)}
    workloads = {
        "getppid": lambda: agent_bench.ns_per_call(binary, calls),
        "sched pipe": lambda: sched_bench.ns_per_switch(messages),
    }
    samples: dict[tuple[str, str, str], list[float]] = {}
    totals: dict[tuple[str, str], list[float]] = {}
    load = [Path("/proc/loadavg").read_text().split()[0]]
    try:
        for _ in range(rounds):
            for tool, start in tools.items():
                proc = start()
                try:
                    for wname, work in workloads.items():
                        got = per_run(proc.pid, work)
                        for prog, (ns, _runs) in got.items():
                            samples.setdefault((tool, wname, prog), []).append(ns)
                        busy = max((runs for _, runs in got.values()), default=0)
                        totals.setdefault((tool, wname), []).append(
                            sum(ns for ns, runs in got.values() if runs >= busy // 10))
                finally:
                    proc.send_signal(signal.SIGINT)
                    proc.wait(timeout=30)
            load.append(Path("/proc/loadavg").read_text().split()[0])
    finally:
        os.close(stats)
    print("## BPF programs, time inside per run (kernel run statistics)\n")
    print(f"Measured {time.strftime('%Y-%m-%d %H:%M')} UTC, {os.cpu_count()} CPUs, kernel {os.uname().release}; "
          f"medians of {rounds} rounds; load average during the run: {', '.join(load)}.\n")
    print("| tool | workload | program | ns per run |")
    print("|---|---|---|---|")
    for (tool, wname, prog), values in sorted(samples.items()):
        print(f"| {tool} | {wname} | {prog} | {statistics.median(values):.0f} |")
    print("\nSum of ns per run over the tool's busy programs (those that ran at least a tenth as often as the "
          "busiest: one event of each busy hook):\n")
    print("| tool | workload | ns |")
    print("|---|---|---|")
    for (tool, wname), values in totals.items():
        print(f"| {tool} | {wname} | {statistics.median(values):.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
