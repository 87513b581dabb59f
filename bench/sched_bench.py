"""Scheduler sampler cost, measured side by side in one run.

    .venv/bin/python bench/sched_bench.py [--quick]   (about 12 minutes; --quick about 3)

Workload: `perf bench sched pipe` (two processes passing a token through a
pipe) pinned to one CPU, so every message is one context switch and one
wake-up.  Conditions, interleaved round by round (medians): nothing attached,
the agent with only the scheduler samplers (scheduler_runqueue,
cpu_migrations, cpu_tlb_flush), the agent with every default sampler, and
bcc's runqlat.  Also prints the kernel memory of the scheduler samplers' maps
(bpftool map show, for the maps the agent holds).  Prints markdown for
docs/performance-history.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import agent_config, load_line, start_agent, start_empty, start_syscount, start_tool

SCHED = ("scheduler_runqueue", "cpu_migrations", "cpu_tlb_flush")
MAP_PREFIXES = ("scheduler_", "cgroup_schedule", "cpu_migration", "cgroup_cpu_mig", "cpu_tlb_flush", "migrations_",
                "rz_cgroup")


def ns_per_switch(loops: int) -> float:
    """CPU time of `perf bench sched pipe` on CPU 0 per switch (each loop is two switches).

    CPU time of the workload's own processes (which is where BPF programs on
    sched_switch and sched_wakeup run), not wall time: other jobs on CPU 0
    would otherwise dominate the figure.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(["taskset", "-c", "0", "perf", "bench", "sched", "pipe", "-l", str(loops)],
                   capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu * 1e9 / (2 * loops)


def held_map_ids(pid: int) -> set[int]:
    """Ids of the BPF maps a process holds fds for (from /proc/<pid>/fdinfo)."""
    ids = set()
    for info in Path(f"/proc/{pid}/fdinfo").iterdir():
        try:
            text = info.read_text()
        except OSError:
            continue
        match = re.search(r"^map_id:\s+(\d+)", text, re.MULTILINE)
        if match:
            ids.add(int(match.group(1)))
    return ids


def map_memory(pid: int) -> list[tuple[str, str, int, int]]:
    """(name, type, max_entries, bytes_memlock) of the scheduler maps held by a process."""
    shown = json.loads(subprocess.run(["bpftool", "map", "show", "-j"], capture_output=True, text=True,
                                      check=True).stdout)
    held = held_map_ids(pid)
    # Maps the agent reads are held by fd; the others (per-task state, wake-up
    # stamps) only by the programs.  All come from one compile and share its BTF.
    btf_ids = {e.get("btf_id") for e in shown if e["id"] in held}
    found = []
    for entry in shown:
        name = entry.get("name", "")
        if entry.get("btf_id") in btf_ids and name.startswith(MAP_PREFIXES):
            found.append((name, entry["type"], entry.get("max_entries", 0), int(entry.get("bytes_memlock", 0))))
    return sorted(found)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer rounds and messages")
    args = parser.parse_args()
    rounds, messages = (3, 100_000) if args.quick else (15, 300_000)
    configs: dict[str, str | None] = {
        "agent (scheduler_runqueue only)": agent_config(("scheduler_runqueue",)),
        "agent (scheduler samplers)": agent_config(SCHED),
        "agent (all samplers, BPF stats off: the default)": None,
        "agent (all samplers, BPF stats on)": agent_config(bpf_stats=True),
    }
    both = "runqlat + syscount -L (bcc)"
    results: dict[str, list[float]] = {
        "nothing": [], "empty programs (scheduler hooks)": [], "empty programs (all agent hooks)": [],
        **{k: [] for k in configs}, "runqlat (bcc)": [], both: [],
    }
    memory: list[tuple[str, str, int, int]] = []
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import agent_bench  # noqa: PLC0415 - sibling bench module

    state0, load0 = agent_bench.host_bpf_state(), load_line()
    for _ in range(rounds):
        results["nothing"].append(ns_per_switch(messages))
        for label, samplers in (("empty programs (scheduler hooks)", SCHED), ("empty programs (all agent hooks)", ())):
            empty = start_empty(samplers)
            results[label].append(ns_per_switch(messages))
            empty.send_signal(signal.SIGINT)
            empty.wait(timeout=30)
        for label, config in configs.items():
            agent = start_agent("1s", config)[0]
            results[label].append(ns_per_switch(messages))
            if label == "agent (scheduler samplers)" and not memory:
                memory = map_memory(agent.pid)
            agent.terminate()
            agent.wait(timeout=30)
        tool = start_tool(["runqlat-bpfcc", "3600", "1"])
        results["runqlat (bcc)"].append(ns_per_switch(messages))
        other = start_syscount()
        results[both].append(ns_per_switch(messages))
        for proc in (tool, other):
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
    med = {k: statistics.median(v) for k, v in results.items()}
    base = med["nothing"]
    ref, ref_both = med["runqlat (bcc)"] - base, med[both] - base
    print("## Scheduler samplers\n")
    print(f"Measured {time.strftime('%Y-%m-%d')} on this machine ({os.cpu_count()} CPUs, kernel "
          f"{os.uname().release}), shared with other jobs; medians of {rounds} interleaved rounds of "
          f"`perf bench sched pipe -l {messages}` pinned to CPU 0: one context switch and one wake-up "
          "per message; CPU time (user + system) of the two workload processes per switch, which "
          "includes the BPF programs run on their switches, wake-ups and syscalls (read/write). "
          f"{load0.capitalize()} at start, {load_line()} at the end; before the "
          f"run: {state0}; after: {agent_bench.host_bpf_state()}.\n")
    def per_round(name: str, reference: str) -> str:
        got = [(v - b) / (r - b) for v, b, r in zip(results[name], results["nothing"], results[reference],
                                                    strict=True) if r > b]
        return f"{statistics.median(got):.2f}×" if got else "n/a"

    print("| condition | CPU ns per switch (median) | added ns | vs runqlat | vs runqlat + syscount -L |"
          " per-round ratios (median): vs runqlat, vs both |")
    print("|---|---|---|---|---|---|")
    for name, value in med.items():
        added = value - base
        ratios = ("", "") if name == "nothing" else (f"{added / ref:.2f}×", f"{added / ref_both:.2f}×")
        rounds_col = "" if name == "nothing" else f"{per_round(name, 'runqlat (bcc)')}, {per_round(name, both)}"
        print(f"| {name} | {value:.0f} | {added:.0f} | {ratios[0]} | {ratios[1]} | {rounds_col} |")
    print("\nAll rounds (ns per switch): " + "; ".join(
        f"{k}: {', '.join(f'{v:.0f}' for v in vs)}" for k, vs in results.items()))
    print("\n| map (bpftool name) | type | entries | kernel memory (bytes) |")
    print("|---|---|---|---|")
    for name, kind, entries, memlock in memory:
        print(f"| {name} | {kind} | {entries} | {memlock} |")
    print(f"| total | | | {sum(m[3] for m in memory)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
