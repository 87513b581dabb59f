"""Agent cost benchmarks, measured side by side in one run.

    .venv/bin/python bench/agent_bench.py [--quick] [--syscalls] [--before-agent PATH]

1. CPU ns added per getppid: nothing attached vs empty programs on the
   syscall hooks and on all the agent's hooks (the floors) vs the agent
   (BPF run statistics off, the default, and on) vs bcc's `syscount -L`
   (interleaved rounds; medians, and the median of each round's ratio, which
   is steadier when other jobs attach BPF programs or turn statistics on
   between rounds); ``--syscalls`` stops after this part; ``--before-agent``
   adds another tree's agent (e.g. main's ``.venv/bin/rezolus-agent``) to the
   same rounds, for before and after under the same load;
2. agent CPU (% of one core) and RSS at 1 s and 100 ms intervals;
3. time from start to first frame; frame size; encode/decode cost per frame.
Prints a markdown report for docs/performance-history.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
import timeit
from pathlib import Path
from typing import TYPE_CHECKING

from _common import BENCH, agent_config, cpu_seconds, load_line, start_agent, start_empty, start_syscount, stop

from rezolus_core.bus import ZmqSubscriber
from rezolus_core.frame import decode, encode_catalog, encode_frame

if TYPE_CHECKING:
    from collections.abc import Callable


def build_getppid() -> Path:
    out = Path(tempfile.mkdtemp()) / "getppid"
    subprocess.run(["gcc", "-O2", "-o", str(out), str(BENCH / "getppid.c")], check=True)
    return out


def host_bpf_state() -> str:
    """Other BPF programs loaded on the host and whether someone holds the kernel's run statistics on.

    Both raise every condition's cost (the statistics add two clock reads to
    every program run on the host), so a report says what was there.
    """
    def snapshot() -> dict[int, tuple[str, int]]:
        out = subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True, text=True, check=True).stdout
        return {p["id"]: (p.get("type", "?"), int(p.get("run_time_ns", 0))) for p in json.loads(out)}

    first = snapshot()
    time.sleep(0.5)  # benchmark probe: let programs run so their statistics can move
    second = snapshot()
    tracing = sum(1 for kind, _ in second.values() if kind in ("raw_tracepoint", "tracepoint", "tracing", "kprobe"))
    moved = any(ns > first.get(pid, ("", ns))[1] for pid, (_, ns) in second.items())
    held = int(Path("/proc/sys/kernel/bpf_stats_enabled").read_text())
    return (f"{tracing} tracing BPF programs loaded by other processes; kernel BPF run statistics "
            f"{'ON (held by another process or the sysctl)' if moved or held else 'off'}")


def ns_per_call(binary: Path, calls: int) -> float:
    out = subprocess.run([str(binary), str(calls)], capture_output=True, text=True, check=True)
    return float(out.stdout)


SYSCALL_SAMPLERS = ["syscall_counts", "syscall_latency"]


Rows = dict[str, list[float]]


def overhead(binary: Path, rounds: int, calls: int,
             before: Path | None = None) -> tuple[dict[str, float], dict[str, float], Rows]:
    """Medians per condition, median of per-round ratios to syscount's added ns, and every round."""
    syscall_only = agent_config(SYSCALL_SAMPLERS, bpf_stats=False)
    earlier: dict[str, Callable[[], subprocess.Popen[bytes]]] = {} if before is None else {
        "before: agent, syscall samplers only": lambda: start_agent("1s", syscall_only, before)[0],
        "before: agent, all samplers (BPF stats off)": lambda: start_agent("1s", agent_config(bpf_stats=False),
                                                                           before)[0],
    }
    conditions = {
        **earlier,
        "empty programs (syscall hooks)": lambda: start_empty(SYSCALL_SAMPLERS),
        "empty programs (all agent hooks)": lambda: start_empty([]),
        "latency floor: task-storage stamp + two clock reads": lambda: start_empty(["--latency-floor"]),
        "agent, syscall samplers only": lambda: start_agent("1s", syscall_only)[0],
        "agent, all samplers (BPF stats off, the default)": lambda: start_agent("1s", agent_config(bpf_stats=False))[0],
        "agent, all samplers, BPF stats on": lambda: start_agent("1s", agent_config(bpf_stats=True))[0],
        "syscount -L": start_syscount,
    }
    results: dict[str, list[float]] = {"nothing": [], **{k: [] for k in conditions}}
    for _ in range(rounds):
        results["nothing"].append(ns_per_call(binary, calls))
        for label, start in conditions.items():
            proc = start()
            results[label].append(ns_per_call(binary, calls))
            proc.send_signal(2)
            proc.wait(timeout=30)
    ratios: dict[str, float] = {}
    for label, values in results.items():
        per_round = [(v - b) / (s - b) for v, b, s in zip(values, results["nothing"], results["syscount -L"],
                                                          strict=True) if s > b]
        ratios[label] = statistics.median(per_round) if per_round else float("nan")
    return {k: statistics.median(v) for k, v in results.items()}, ratios, results


def proc_cpu_rss(pid: int) -> tuple[float, int]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = cpu_seconds(pid)
    rss = int(fields[21]) * os.sysconf("SC_PAGESIZE")
    return cpu, rss


def agent_cost(interval: str, seconds: float) -> tuple[float, int, float]:
    proc, _, first = start_agent(interval)
    time.sleep(2)  # benchmark warm-up: let start-up work finish before measuring
    cpu0, _ = proc_cpu_rss(proc.pid)
    t0 = time.monotonic()
    time.sleep(seconds)  # benchmark window
    cpu1, rss = proc_cpu_rss(proc.pid)
    elapsed = time.monotonic() - t0
    stop(proc)
    return 100 * (cpu1 - cpu0) / elapsed, rss, first


def codec_cost() -> tuple[int, int, float, float]:
    proc, endpoint, _ = start_agent("100ms")
    sub = ZmqSubscriber(endpoint)
    got = []
    while len(got) < 3:
        got.extend(sub.poll(1.0))
    delivery = got[-1]
    sub.close()
    stop(proc)
    payload = encode_frame(delivery.frame)
    n = 2000
    encode_us = timeit.timeit(lambda: encode_frame(delivery.frame), number=n) / n * 1e6
    decode_us = timeit.timeit(lambda: decode(payload), number=n) / n * 1e6
    return len(payload), len(encode_catalog(delivery.catalog)), encode_us, decode_us


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer rounds, shorter windows")
    parser.add_argument("--syscalls", action="store_true", help="only the per-syscall cost (part 1)")
    parser.add_argument("--before-agent", type=Path, help="another tree's rezolus-agent, measured in the same rounds")
    args = parser.parse_args()
    rounds, calls, window = (3, 1_000_000, 10.0) if args.quick else (5, 3_000_000, 30.0)
    binary = build_getppid()
    load0 = load_line()
    state0 = host_bpf_state()
    if args.before_agent is not None and not args.before_agent.is_file():
        parser.error(f"--before-agent {args.before_agent}: no such file")
    ov, ratios, rows = overhead(binary, rounds, calls, args.before_agent)
    base = ov["nothing"]
    print("## Agent\n")
    print(
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} UTC on this machine ({os.cpu_count()} CPUs, kernel "
        f"{os.uname().release}); {load0} at start, {load_line()} "
        f"at the end of part 1; {rounds} interleaved rounds of {calls} getppid, CPU time of the loop. "
        f"Before the run: {state0}; after part 1: {host_bpf_state()}.\n"
    )
    print("| getppid | CPU ns per call | added ns | vs syscount -L (medians) | median of per-round ratios |")
    print("|---|---|---|---|---|")
    for name, value in ov.items():
        added = value - base
        ratio = "" if name == "nothing" else f"{added / (ov['syscount -L'] - base):.2f}×"
        per_round = "" if name == "nothing" else f"{ratios[name]:.2f}×"
        print(f"| {name} | {value:.0f} | {added:.0f} | {ratio} | {per_round} |")
    print("\nAll rounds (ns per call): " + "; ".join(f"{k}: {', '.join(f'{v:.0f}' for v in vs)}"
                                                   for k, vs in rows.items()))
    if args.syscalls:
        return 0
    print("\n| interval | agent CPU (% of one core) | RSS (MB) | start to first frame (s) |")
    print("|---|---|---|---|")
    for interval in ("1s", "100ms"):
        cpu, rss, first = agent_cost(interval, window)
        print(f"| {interval} | {cpu:.2f} | {rss / 1e6:.1f} | {first:.2f} |")
    size, catalog_size, enc, dec = codec_cost()
    print(f"\nFrame: {size} bytes (catalog {catalog_size} bytes); encode {enc:.0f} µs, decode {dec:.0f} µs per frame.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
