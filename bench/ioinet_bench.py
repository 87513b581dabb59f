"""Cost of the block IO, network and softirq samplers, measured side by side in one run.

    .venv/bin/python bench/ioinet_bench.py [--quick]

1. ns added per 4 KiB O_DIRECT read on a loop device (backed by a file, direct IO):
   nothing vs the agent's block samplers vs the whole agent vs bcc's bitesize and biopattern;
2. ns added per NET_RX softirq (a process sending 1-byte UDP datagrams to itself on
   loopback, one softirq per datagram): nothing vs the softirq sampler vs the whole
   agent vs bcc's softirqs;
3. kernel memory (memlock) of every map of these samplers, from /proc/self/fdinfo.
Configurations are interleaved round by round and medians are reported, because the
machine is shared.  Prints a markdown report for
docs/performance-history.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rezolus_agent.bpfload import BpfLoader, BpfMaps
from rezolus_agent.cpus import possible_cpus
from rezolus_agent.registry import available
from rezolus_agent.sampler import BpfSampler, SamplerContext
from rezolus_agent.series import SeriesRegistry
from rezolus_core.bus import ZmqSubscriber
from rezolus_core.config import Section

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

BENCH = Path(__file__).resolve().parent
AGENT = Path(sys.executable).parent / "rezolus-agent"
BLOCK = ("blockio_requests", "blockio_latency")
ALL_IOINET = (
    "softirq",
    "blockio_requests",
    "blockio_latency",
    "tcp_traffic",
    "tcp_retransmit",
    "tcp_receive",
    "tcp_connect_latency",
    "tcp_packet_latency",
)


def build(name: str) -> Path:
    out = Path(tempfile.mkdtemp()) / name
    subprocess.run(["gcc", "-O2", "-o", str(out), str(BENCH / f"{name}.c")], check=True)
    return out


@contextlib.contextmanager
def samplers(names: tuple[str, ...]) -> Iterator[dict[str, BpfMaps]]:
    cpus = possible_cpus(Path("/sys"))
    registry = SeriesRegistry("bench", {})
    classes = available()
    started: dict[str, BpfSampler] = {}
    for name in names:
        sampler = classes[name](SamplerContext(registry=registry, options=Section({}, "bench"), cpus=cpus))
        assert isinstance(sampler, BpfSampler), name
        sampler.options()
        started[name] = sampler
    loader = BpfLoader(cpus)
    maps, failures = loader.load(list(started.values()))
    if failures:
        raise RuntimeError(failures)
    for name, sampler in started.items():
        sampler.attach(maps[name])
    try:
        yield maps
    finally:
        for sampler in started.values():
            sampler.close()
        loader.close()


@contextlib.contextmanager
def agent() -> Iterator[None]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        endpoint = f"tcp://127.0.0.1:{sock.getsockname()[1]}"
    proc = subprocess.Popen(
        [str(AGENT), "--listen", endpoint, "--interval", "1s"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    sub = ZmqSubscriber(endpoint)
    deadline = time.monotonic() + 60
    try:
        while not sub.poll(0.05):
            if time.monotonic() > deadline:
                raise RuntimeError("agent produced no frame in 60 s")
        yield
    finally:
        sub.close()
        proc.terminate()
        proc.wait(timeout=30)


@contextlib.contextmanager
def bcc_tool(argv: list[str], ready: str) -> Iterator[None]:
    tool = shutil.which(argv[0]) or f"/usr/sbin/{argv[0]}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([tool, *argv[1:]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    assert proc.stdout is not None
    try:
        while ready not in proc.stdout.readline():
            if proc.poll() is not None:
                raise RuntimeError(f"{argv[0]} failed to start")
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)


def run(binary: Path, *args: str) -> float:
    out = subprocess.run([str(binary), *args], capture_output=True, text=True, check=True)
    return float(out.stdout)


def block_requests() -> int:
    """Requests completed on request-based (blk-mq) disks, from /proc/diskstats."""
    mq = {p.parent.name for p in Path("/sys/block").glob("*/mq")}
    done = 0
    for line in Path("/proc/diskstats").read_text(encoding="ascii").splitlines():
        fields = line.split()
        if fields[2] in mq:
            values = [int(x) for x in fields[3:]]
            done += values[0] + values[4] + (values[11] if len(values) > 11 else 0)
    return done


def softirq_total() -> int:
    lines = Path("/proc/softirqs").read_text(encoding="ascii").splitlines()
    return sum(int(x) for line in lines[1:] if line.strip().startswith("NET_RX:") for x in line.split()[1:])


def prog_stats() -> dict[int, tuple[str, int, int]]:
    """Program id -> (name, run_time_ns, run_cnt) of every loaded BPF program."""
    out = subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True, text=True, check=True).stdout
    return {p["id"]: (p.get("name", ""), p.get("run_time_ns", 0), p.get("run_cnt", 0)) for p in json.loads(out)}


@contextlib.contextmanager
def bpf_stats() -> Iterator[None]:
    """Turn on the kernel's per-program run-time accounting for the benchmark, then restore it."""
    path = Path("/proc/sys/kernel/bpf_stats_enabled")
    before = path.read_text(encoding="ascii").strip()
    path.write_text("1", encoding="ascii")
    try:
        yield
    finally:
        path.write_text(before, encoding="ascii")


def compare(
    configs: dict[str, Callable[[], contextlib.AbstractContextManager[object]]],
    workload: Callable[[], tuple[float, int]],
    rounds: int,
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall-clock ns per operation, and BPF run time per operation of the programs each config loaded."""
    results: dict[str, list[float]] = {name: [] for name in configs}
    bpf_ns: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(rounds):
        for name, attach in configs.items():
            known = set(prog_stats())
            with attach():
                ours = {i: v for i, v in prog_stats().items() if i not in known}
                value, operations = workload()
                after = prog_stats()
            results[name].append(value)
            spent = sum(after[i][1] - v[1] for i, v in ours.items() if i in after)
            bpf_ns[name].append(spent / operations)
    return results, bpf_ns


def table(
    title: str,
    unit: str,
    measured: tuple[dict[str, list[float]], dict[str, list[float]]],
    reference: str,
    per: float = 1.0,
) -> None:
    """Wall-clock medians and BPF run time per operation, each as a ratio to the bcc tool."""
    wall, bpf = measured
    medians = {k: statistics.median(v) for k, v in wall.items()}
    in_bpf = {k: statistics.median(v) / per for k, v in bpf.items()}
    base = medians["nothing"]
    ref_added = (medians[reference] - base) / per
    print(f"\n### {title}\n")
    print(
        f"| attached | wall ns per {unit} (median) | spread (min–max) | wall ns added per event "
        f"| BPF run time per event (ns) | BPF time vs {reference} |"
    )
    print("|---|---|---|---|---|---|")
    for name, value in medians.items():
        added = (value - base) / per
        ratio = "" if name == "nothing" or in_bpf[reference] <= 0 else f"{in_bpf[name] / in_bpf[reference]:.2f}×"
        spread = f"{min(wall[name]):.0f}–{max(wall[name]):.0f}"
        print(f"| {name} | {value:.0f} | {spread} | {added:.0f} | {in_bpf[name]:.0f} | {ratio} |")
    del ref_added


def fdinfo(fd: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/self/fdinfo/{fd}").read_text(encoding="ascii").splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def map_memory() -> None:
    print("\n### Kernel memory of the maps (memlock from /proc/self/fdinfo, this machine's CPU count)\n")
    print("| sampler | map | type | entries | value bytes | memlock (KiB) |")
    print("|---|---|---|---|---|---|")
    total = 0
    kinds = {"1": "hash", "2": "array", "9": "lru_hash"}
    with samplers(ALL_IOINET) as maps:
        for name, sampler_maps in maps.items():
            for map_name, fd in sampler_maps.fds.items():
                info = fdinfo(fd)
                memlock = int(info["memlock"])
                total += memlock
                print(
                    f"| {name} | {map_name} | {kinds.get(info['map_type'], info['map_type'])} "
                    f"| {info['max_entries']} | {info['value_size']} | {memlock / 1024:.0f} |"
                )
    print(f"| **total** | | | | | **{total / 1024:.0f}** |")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer rounds and events")
    args = parser.parse_args()
    rounds, reads, datagrams = (3, 5000, 50000) if args.quick else (7, 20000, 200000)
    dio, udp = build("ioinet_dio"), build("ioinet_udp")
    print("## Block IO, network and softirq samplers\n")
    print(
        f"Measured {time.strftime('%Y-%m-%d')} on this machine ({os.cpu_count()} CPUs, kernel "
        f"{os.uname().release}), {rounds} interleaved rounds, medians; the machine is shared, so "
        "the spread column shows how noisy each wall-clock figure is. BPF run time comes from the kernel's "
        "per-program accounting (kernel.bpf_stats_enabled, on only during the run) summed over the programs "
        "each configuration loaded, divided by the operations; it includes other processes' events in the "
        "same window, which matters most for the whole agent (its syscall and scheduler programs fire for "
        "every process)."
    )
    with bpf_stats(), tempfile.TemporaryDirectory() as tmp:
        backing = Path(tmp) / "bench.img"
        subprocess.run(["fallocate", "-l", str(256 << 20), str(backing)], check=True)
        dev = subprocess.run(
            ["losetup", "--direct-io=on", "--show", "-f", str(backing)], check=True, capture_output=True, text=True
        ).stdout.strip()
        per_read: list[float] = []

        def dio_workload() -> tuple[float, int]:
            before = block_requests()
            value = run(dio, dev, str(reads))
            per_read.append((block_requests() - before) / reads)
            return value, reads

        try:
            io = compare(
                {
                    "nothing": contextlib.nullcontext,
                    "agent block samplers": lambda: samplers(BLOCK),
                    "whole agent": agent,
                    "bitesize": lambda: bcc_tool(["bitesize-bpfcc"], "Tracing"),
                    "biopattern": lambda: bcc_tool(["biopattern-bpfcc"], "TIME"),
                },
                dio_workload,
                rounds,
            )
        finally:
            subprocess.run(["losetup", "-d", dev], check=False)
    print(
        f"\nBlock requests per read (all request-based disks, /proc/diskstats): {statistics.median(per_read):.2f} "
        "(the loop device's; its fallocated backing file has no written blocks, so the disk is not read)."
    )
    table("4 KiB O_DIRECT read on a loop device", "read", io, "biopattern")
    per_datagram: list[float] = []

    def softirq_workload() -> tuple[float, int]:
        before = softirq_total()
        value = run(udp, str(datagrams))
        per_datagram.append((softirq_total() - before) / datagrams)
        return value, datagrams

    with bpf_stats():
        net = compare(
            {
                "nothing": contextlib.nullcontext,
                "softirq sampler": lambda: samplers(("softirq",)),
                "whole agent": agent,
                "softirqs (bcc)": lambda: bcc_tool(["softirqs-bpfcc"], "Tracing"),
            },
            softirq_workload,
            rounds,
        )
    per = statistics.median(per_datagram)
    print(f"\nNET_RX softirqs per datagram: {per:.2f} (from /proc/softirqs).")
    table("loopback UDP send+receive (one NET_RX softirq each)", "datagram", net, "softirqs (bcc)", per)
    map_memory()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
