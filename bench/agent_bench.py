"""Agent cost benchmarks, measured side by side in one run.

    .venv/bin/python bench/agent_bench.py [--quick]

1. ns added per getppid: nothing attached vs empty programs on the agent's
   hooks (the floor) vs the agent (BPF run statistics on and off) vs bcc's
   `syscount -L` (interleaved rounds, medians);
2. agent CPU (% of one core) and RSS at 1 s and 100 ms intervals;
3. time from start to first frame; frame size; encode/decode cost per frame.
Prints a markdown report for docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
import timeit
from pathlib import Path

from _common import BENCH, agent_config, cpu_seconds, start_agent, start_empty, start_syscount, stop

from rezolus_core.bus import ZmqSubscriber
from rezolus_core.frame import decode, encode_catalog, encode_frame


def build_getppid() -> Path:
    out = Path(tempfile.mkdtemp()) / "getppid"
    subprocess.run(["gcc", "-O2", "-o", str(out), str(BENCH / "getppid.c")], check=True)
    return out


def ns_per_call(binary: Path, calls: int) -> float:
    out = subprocess.run([str(binary), str(calls)], capture_output=True, text=True, check=True)
    return float(out.stdout)


def overhead(binary: Path, rounds: int, calls: int) -> dict[str, float]:
    syscall_only = agent_config(["syscall_counts", "syscall_latency"], bpf_stats=True)
    conditions = {
        "empty programs (all agent hooks)": lambda: start_empty([]),
        "agent, syscall samplers only": lambda: start_agent("1s", syscall_only)[0],
        "agent, all samplers, BPF stats off": lambda: start_agent("1s", agent_config(bpf_stats=False))[0],
        "agent, all samplers": lambda: start_agent("1s", agent_config(bpf_stats=True))[0],
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
    return {k: statistics.median(v) for k, v in results.items()}


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
    args = parser.parse_args()
    rounds, calls, window = (3, 1_000_000, 10.0) if args.quick else (5, 3_000_000, 30.0)
    binary = build_getppid()
    ov = overhead(binary, rounds, calls)
    base = ov["nothing"]
    print("## Agent\n")
    print(
        f"Measured {time.strftime('%Y-%m-%d')} on this machine ({os.cpu_count()} CPUs, kernel {os.uname().release}).\n"
    )
    print("| getppid | ns per call | added ns | vs syscount -L |")
    print("|---|---|---|---|")
    for name, value in ov.items():
        added = value - base
        ratio = "" if name == "nothing" else f"{added / (ov['syscount -L'] - base):.2f}×"
        print(f"| {name} | {value:.0f} | {added:.0f} | {ratio} |")
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
