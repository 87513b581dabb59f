"""Scrape latency and CPU: rezolus-exporter (fed by a live agent) vs prometheus-node-exporter.

Everything runs in one go on this host, on loopback: one rezolus-agent at a
1 s interval; two exporters following it (summaries only, the default; and
summaries plus full g=3 histograms); Debian's prometheus-node-exporter.

For D seconds every target is scraped once per second, as one Prometheus
with a 1 s scrape interval would (targets staggered within the second so
scrapes never overlap), with Prometheus 2.42's Accept and Accept-Encoding
headers over a kept-alive connection.  Latency is client-side, from request
to the last body byte; CPU is each process's utime+stime over the same wall
time, from /proc/PID/stat.

Usage: .venv/bin/python bench/exporter_scrape.py [--seconds 600]
"""

from __future__ import annotations

import argparse
import http.client
import shutil
import statistics
import subprocess
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


class Target:
    """One /metrics endpoint and the process behind it."""

    def __init__(self, name: str, port: int, process: subprocess.Popen[bytes], accept: str = ACCEPT) -> None:
        self.name, self.port, self.process = name, port, process
        self.headers = {**HEADERS, "Accept": accept}
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.latencies: list[float] = []
        self.sizes: list[int] = []

    def scrape(self) -> float:
        """One GET /metrics; return its duration in seconds."""
        started = time.perf_counter()
        self.connection.request("GET", "/metrics", headers=self.headers)
        response = self.connection.getresponse()
        body = response.read()
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


def start(args: list[str]) -> subprocess.Popen[bytes]:
    """Start a quiet child process."""
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


def start_targets(tmp: Path, node_exporter: str, processes: list[subprocess.Popen[bytes]]) -> list[Target]:
    """Start the agent, the exporters and node_exporter; return the scrape targets."""
    (tmp / "full.toml").write_text("[prometheus]\nhistograms = true\n")
    (tmp / "coarse.toml").write_text("[prometheus]\nhistograms = true\nhistogram_grouping_power = 1\n")
    (tmp / "native.toml").write_text("[prometheus]\nnative_histograms = true\n")
    agent_endpoint = f"tcp://127.0.0.1:{free_port()}"
    processes.append(start([str(BIN / "rezolus-agent"), "--listen", agent_endpoint, "--interval", "1s"]))
    targets = []
    modes = (
        ("rezolus-exporter, summaries (default)", []),
        ("rezolus-exporter, + histograms g=3", ["--config", str(tmp / "full.toml")]),
        ("rezolus-exporter, + histograms g=1", ["--config", str(tmp / "coarse.toml")]),
        ("rezolus-exporter, + native histograms (protobuf)", ["--config", str(tmp / "native.toml")]),
    )
    for name, extra in modes:
        port = free_port()
        listen = f"127.0.0.1:{port}"
        exporter = [str(BIN / "rezolus-exporter"), "--listen", listen, "--source", agent_endpoint]
        processes.append(start([*exporter, *extra]))
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
    for second in range(seconds):
        for i, target in enumerate(targets):
            time.sleep(max(0.0, started + second + i * slot - time.monotonic()))
            target.latencies.append(target.scrape())
    time.sleep(max(0.0, started + seconds - time.monotonic()))
    wall = time.monotonic() - started
    return {t.name: (cpu_seconds(t.process.pid) - before[t.name]) / wall for t in targets}, wall


def report(targets: list[Target], usage: dict[str, float], wall: float) -> None:
    """Print the Markdown table."""
    ref_p99 = percentile(targets[-1].latencies, 99)
    print(
        f"host: {load_line()}; "
        f"{len(targets[0].latencies)} scrapes each at 1/s over {wall:.0f} s"
    )
    print("| target | body (gzip) | p50 ms | p99 ms | p99 ratio | CPU % of a core | RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for target in targets:
        p50 = statistics.median(target.latencies) * 1000
        p99 = percentile(target.latencies, 99) * 1000
        size = statistics.median(target.sizes) / 1024
        cpu = usage[target.name] * 100
        rss = rss_mib(target.process.pid)
        ratio = p99 / 1000 / ref_p99
        row = f"| {target.name} | {size:.1f} KiB | {p50:.2f} | {p99:.2f} | {ratio:.2f}"
        print(f"{row} | {cpu:.2f} | {rss:.0f} |")


def main() -> int:
    """Run the measurement and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=600)
    args = parser.parse_args()
    node_exporter = shutil.which("prometheus-node-exporter")
    if node_exporter is None:
        print("prometheus-node-exporter is not installed (apt-get install prometheus-node-exporter)")
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="exporter-bench-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        targets = start_targets(tmp, node_exporter, processes)
        time.sleep(16)  # let the summary window fill once, so quantiles are real numbers
        usage, wall = measure(targets, args.seconds)
        report(targets, usage, wall)
        for target in targets:
            top = " ".join(f"{t * 1000:.1f}" for t in sorted(target.latencies)[-5:])
            print(f"{target.name}: five slowest scrapes (ms) {top}")
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
