"""Scrape latency and CPU: rezolus-exporter (fed by a live agent) vs prometheus-node-exporter.

Everything runs in one go on this host, on loopback: one rezolus-agent at a
1 s interval; four exporters following it (summaries only, the default;
plus full histograms at g=3 and g=1; plus native histograms, scraped in
protobuf); Debian's prometheus-node-exporter.

For D seconds every target is scraped once per second, as one Prometheus
with a 1 s scrape interval would, with Prometheus 2.42's Accept and
Accept-Encoding headers over a kept-alive connection.  Each second the
targets are scraped one after the other in a shuffled order, each at a
random moment of its own slot of the second (scrapes never overlap), so
every target meets the agent's frames at every phase of the interval: one
fixed phase for a whole run would make an exporter's tail depend on whether
its scrapes happen to coincide with its frame processing.  Latency is client-side, from request
to the last body byte; CPU is each process's utime+stime over the same wall
time, from /proc/PID/stat.

Before the measured D seconds, each target's first scrape with these headers
is timed on its own (an exporter builds a format's templates then: a cost
once per process and format, reported in its own column), then every target
is scraped the same way for WARM_UP_S seconds, not counted, as a running
Prometheus would have (it also lets the summary window fill once).

With ``--baseline-src DIR`` (a checkout of another version, e.g. made with
``git worktree add /tmp/before main`` or ``git archive``), the g=3 and native
exporters also run from ``DIR/services/exporter/src`` ("before" rows), so old
and new code are measured in the same run next to node_exporter.

Usage: .venv/bin/python bench/exporter_scrape.py [--seconds 600 | --quick] [--baseline-src DIR]
"""

from __future__ import annotations

import argparse
import http.client
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import BIN, cpu_seconds, free_port, load_line, rss_mib

ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
HEADERS = {"Accept": ACCEPT, "Accept-Encoding": "gzip", "User-Agent": "Prometheus/2.42.0"}
# What Prometheus 2.42 sends with --enable-feature=native-histograms.
PROTOBUF_ACCEPT = (
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)
TIMEOUT_S = 10.0
WARM_UP_S = 16


class Target:
    """One /metrics endpoint and the process behind it."""

    def __init__(self, name: str, port: int, process: subprocess.Popen[bytes], accept: str = ACCEPT) -> None:
        self.name, self.port, self.process = name, port, process
        self.headers = {**HEADERS, "Accept": accept}
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
        self.timeouts = 0
        self.first = math.nan
        self.latencies: list[float] = []
        self.sizes: list[int] = []

    def scrape(self) -> float:
        """One GET /metrics; return its duration in seconds (the timeout for one that timed out)."""
        started = time.perf_counter()
        try:
            self.connection.request("GET", "/metrics", headers=self.headers)
            response = self.connection.getresponse()
            body = response.read()
        except TimeoutError:
            self.timeouts += 1
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT_S)
            return TIMEOUT_S
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"{self.name}: HTTP {response.status}")
        self.sizes.append(len(body))
        return elapsed

    def wait_ready(self, needle: bytes, timeout: float = 120.0) -> None:
        """Poll until /metrics contains ``needle`` (uncompressed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                connection.request("GET", "/metrics")
                if needle in connection.getresponse().read():
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not serve {needle!r} within {timeout}s")


def start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a quiet child process."""
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


def start_targets(
    tmp: Path, node_exporter: str, processes: list[subprocess.Popen[bytes]], baseline: Path | None
) -> list[Target]:
    """Start the agent, the exporters (and the baseline's) and node_exporter; return the scrape targets."""
    (tmp / "full.toml").write_text("[prometheus]\nhistograms = true\n")
    (tmp / "coarse.toml").write_text("[prometheus]\nhistograms = true\nhistogram_grouping_power = 1\n")
    (tmp / "native.toml").write_text("[prometheus]\nnative_histograms = true\n")
    agent_endpoint = f"tcp://127.0.0.1:{free_port()}"
    processes.append(start([str(BIN / "rezolus-agent"), "--listen", agent_endpoint, "--interval", "1s"]))
    targets = []
    modes: tuple[tuple[str, list[str]], ...] = (
        ("rezolus-exporter, summaries (default)", []),
        ("rezolus-exporter, + histograms g=3", ["--config", str(tmp / "full.toml")]),
        ("rezolus-exporter, + histograms g=1", ["--config", str(tmp / "coarse.toml")]),
        ("rezolus-exporter, + native histograms (protobuf)", ["--config", str(tmp / "native.toml")]),
    )
    runs: list[tuple[str, list[str], Path | None]] = [(name, extra, None) for name, extra in modes]
    if baseline is not None:
        runs += [(f"before: {name}", extra, baseline) for name, extra in modes if "g=3" in name or "native" in name]
    for name, extra, src in runs:
        port = free_port()
        listen = f"127.0.0.1:{port}"
        exporter = [str(BIN / "rezolus-exporter"), "--listen", listen, "--source", agent_endpoint]
        env = None
        if src is not None:
            exporter[:1] = [sys.executable, "-m", "rezolus_exporter.main"]
            env = {**os.environ, "PYTHONPATH": str(src / "services" / "exporter" / "src")}
        processes.append(start([*exporter, *extra], env))
        accept = PROTOBUF_ACCEPT if "native" in name else ACCEPT
        targets.append(Target(name, port, processes[-1], accept))
    port = free_port()
    processes.append(start([node_exporter, f"--web.listen-address=127.0.0.1:{port}"]))
    targets.append(Target("prometheus-node-exporter 1.5", port, processes[-1]))
    for target in targets[:-1]:
        target.wait_ready(b"syscall_latency_seconds{")
    targets[-1].wait_ready(b"node_cpu_seconds_total")
    return targets


def measure(targets: list[Target], seconds: int) -> tuple[dict[str, float], float]:
    """Scrape every target once per second; return CPU share per target and the wall time."""
    before = {t.name: cpu_seconds(t.process.pid) for t in targets}
    started = time.monotonic()
    slot = 1.0 / len(targets)
    rng = random.Random(16)
    for second in range(seconds):
        order = rng.sample(targets, len(targets))
        for i, target in enumerate(order):
            at = started + second + (i + rng.uniform(0.0, 0.5)) * slot
            time.sleep(max(0.0, at - time.monotonic()))
            target.latencies.append(target.scrape())
    time.sleep(max(0.0, started + seconds - time.monotonic()))
    wall = time.monotonic() - started
    return {t.name: (cpu_seconds(t.process.pid) - before[t.name]) / wall for t in targets}, wall


def report(targets: list[Target], usage: dict[str, float], wall: float, load_before: str) -> None:
    """Print the Markdown table."""
    ref_p99 = percentile(targets[-1].latencies, 99)
    print(
        f"host: {load_before} at the start, {load_line()} at the end; "
        f"{len(targets[0].latencies)} scrapes each at 1/s over {wall:.0f} s"
    )
    print("| target | body (gzip) | first scrape ms | p50 ms | p99 ms | p99 ratio | CPU % of a core | RSS MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for target in targets:
        p50 = statistics.median(target.latencies) * 1000
        p99 = percentile(target.latencies, 99) * 1000
        size = statistics.median(target.sizes) / 1024
        cpu = usage[target.name] * 100
        rss = rss_mib(target.process.pid)
        ratio = p99 / 1000 / ref_p99
        row = f"| {target.name} | {size:.1f} KiB | {target.first * 1000:.1f} | {p50:.2f} | {p99:.2f} | {ratio:.2f}"
        print(f"{row} | {cpu:.2f} | {rss:.0f} |")


def main() -> int:
    """Run the measurement and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--quick", action="store_true", help="60 s instead of --seconds")
    parser.add_argument("--baseline-src", type=Path, help="also run the g=3 and native exporters from this checkout")
    args = parser.parse_args()
    seconds = 60 if args.quick else args.seconds
    node_exporter = shutil.which("prometheus-node-exporter")
    if node_exporter is None:
        print("prometheus-node-exporter is not installed (apt-get install prometheus-node-exporter)")
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="exporter-bench-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        targets = start_targets(tmp, node_exporter, processes, args.baseline_src)
        for target in targets:
            target.first = target.scrape()
        measure(targets, WARM_UP_S)
        for target in targets:
            target.latencies.clear()
            target.sizes.clear()
        load_before = load_line()
        usage, wall = measure(targets, seconds)
        report(targets, usage, wall, load_before)
        for target in targets:
            top = " ".join(f"{t * 1000:.1f}" for t in sorted(target.latencies)[-5:])
            timed_out = f"timed out ({TIMEOUT_S:.0f} s, warm-up included): {target.timeouts}"
            print(f"{target.name}: five slowest scrapes (ms) {top}; {timed_out}")
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
