"""How many agents can one central hindsight follow?  Measured on loopback.

    .venv/bin/python bench/fleet_scale.py [--hosts 1,10,25,50] [--seconds 30]

The frames are real: the bench captures the catalog and a frame of the
``rezolus-agent`` running on this host, then a separate publisher process
(so its CPU is not counted) publishes, for each simulated host, a copy under
its own instance id and hostname on its own loopback port, one frame per
second on the wall-clock grid with growing values.  One ``rezolus-hindsight``
follows all of them (``--source`` once per host, interval 1 s).  After a
settling period, the window measures hindsight's CPU (% of one core, from
/proc), its RSS at the end, the bytes per frame of the sealed (compressed)
buffer segments (a frame per second per host makes that x3600 the disk per
host-hour) and the frames the bus lost; then it times one whole-buffer
snapshot (``POST /snapshot``), whose cost grows with rows, i.e. with hosts.
Prints a markdown table for docs/performance-history.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

from rezolus_core.bus import ZmqPublisher, ZmqSubscriber
from rezolus_core.frame import Catalog, Frame, decode, encode_catalog, encode_frame
from rezolus_hindsight import segment

BIN = Path(sys.executable).parent
S = 1_000_000_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def capture(work: Path) -> tuple[Path, Path]:
    """Write the real agent's catalog and one of its frames to files; return their paths."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    agent = subprocess.Popen([str(BIN / "rezolus-agent"), "--listen", endpoint, "--interval", "1s"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sub = ZmqSubscriber(endpoint)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            got = sub.poll(1.0)
            if got:
                catalog, frame = work / "catalog.bin", work / "frame.bin"
                catalog.write_bytes(encode_catalog(got[-1].catalog))
                frame.write_bytes(encode_frame(got[-1].frame))
                return catalog, frame
        raise RuntimeError("the agent sent no frame within 90 s")
    finally:
        sub.close()
        agent.terminate()
        agent.wait(30)


def publish(ports: list[int], catalog_path: Path, frame_path: Path) -> None:
    """Publish one host per port at 1 s until SIGTERM (the publisher process)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    base_catalog, template = decode(catalog_path.read_bytes()), decode(frame_path.read_bytes())
    assert isinstance(base_catalog, Catalog)
    assert isinstance(template, Frame)
    hosts = []
    for k, port in enumerate(ports):
        name = f"fleet-{k:03d}"
        cat = dataclasses.replace(base_catalog, instance=f"{k:032x}", host={**base_catalog.host, "hostname": name})
        publisher = ZmqPublisher(f"tcp://127.0.0.1:{port}", catalog_every_s=5.0)
        publisher.publish_catalog(cat)
        hosts.append((publisher, cat, name))
    print("bound", flush=True)
    first = time.time_ns() // S + 1
    while not stop.is_set():
        now = time.time_ns()
        tick = (now // S + 1) * S
        if stop.wait((tick - now) / 1e9):
            break
        seq = tick // S - first + 1
        grow = np.uint64(seq)
        for k, (publisher, cat, name) in enumerate(hosts):
            frame = dataclasses.replace(
                template, instance=cat.instance, host=name, seq=seq, timestamp_ns=time.time_ns(),
                monotonic_ns=seq * S, interval_ns=S,
                counter_values=template.counter_values + grow * np.uint64(1000 + k),
                hist_counts=template.hist_counts + grow,
            )
            publisher.publish_frame(frame)
    for publisher, _, _ in hosts:
        publisher.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def status(listen: str) -> dict[str, object]:
    with urllib.request.urlopen(f"http://{listen}/status", timeout=30) as reply:
        return json.loads(reply.read())  # type: ignore[no-any-return]


def sealed_bytes_per_frame(directory: Path) -> float:
    """Bytes per frame in the sealed (compressed) segments of every buffer under ``directory``."""
    infos = [segment.read_info(p) for p in directory.rglob("seg-*.rzh")]
    frames = sum(int(i.timestamps.size) for i in infos)
    return sum(i.size for i in infos) / frames if frames else float("nan")


def measure(hosts: int, seconds: float, work: Path, catalog: Path, frame: Path) -> dict[str, float]:
    """Run ``hosts`` publishers and one hindsight; return its costs over the window."""
    ports = [free_port() for _ in range(hosts)]
    publisher = subprocess.Popen(
        [sys.executable, __file__, "publish", str(catalog), str(frame), *map(str, ports)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert publisher.stdout is not None
    if publisher.stdout.readline().strip() != "bound":
        raise RuntimeError(f"publisher failed: {publisher.stderr.read() if publisher.stderr else ''}")
    listen = f"127.0.0.1:{free_port()}"
    data = work / f"hs-{hosts}"
    sources = [arg for port in ports for arg in ("--source", f"tcp://127.0.0.1:{port}")]
    hindsight = subprocess.Popen(
        [str(BIN / "rezolus-hindsight"), *sources, "--interval", "1s", "--duration", "15m",
         "--max-bytes", f"{max(1, hosts) * 64}MiB", "--directory", str(data), "--output", str(work / "out"),
         "--listen", listen],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:  # settle: every host stored a few frames
            try:
                state = status(listen)
                sources_state = state["sources"]
                assert isinstance(sources_state, list)
                if all(s["frames_stored"] >= 3 for s in sources_state):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{hosts} hosts: not every host stored frames within 120 s")
            time.sleep(0.5)
        before_cpu, before = cpu_seconds(hindsight.pid), status(listen)
        started = time.monotonic()
        time.sleep(seconds)  # the measurement window
        after_cpu, after = cpu_seconds(hindsight.pid), status(listen)
        wall = time.monotonic() - started
        snap_started = time.monotonic()
        request = urllib.request.Request(f"http://{listen}/snapshot", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=600) as reply:  # noqa: S310 - loopback
            snap = json.loads(reply.read())
        snap_s = time.monotonic() - snap_started
        return {
            "hosts": hosts,
            "cpu": 100 * (after_cpu - before_cpu) / wall,
            "rss": rss_mib(hindsight.pid),
            "bytes_per_frame": sealed_bytes_per_frame(data),
            "stored": int(after["frames_stored"]) - int(before["frames_stored"]),  # type: ignore[call-overload]
            "expected": hosts * wall,
            "missed": int(after["frames_missed"]) - int(before["frames_missed"]),  # type: ignore[call-overload]
            "wall": wall,
            "snap_rows": int(snap["rows"]),
            "snap_s": snap_s,
        }
    finally:
        for proc in (hindsight, publisher):
            proc.terminate()
        for proc in (hindsight, publisher):
            proc.wait(60)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "publish":
        publish([int(p) for p in sys.argv[4:]], Path(sys.argv[2]), Path(sys.argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="1,10,25,50")
    parser.add_argument("--seconds", type=float, default=40.0, help="window (>= 30 s: a segment seals every 30 s)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fleet-scale-"))
    try:
        catalog, frame = capture(work)
        template = decode(frame.read_bytes())
        assert isinstance(template, Frame)
        series = len(template.counter_ids) + len(template.gauge_ids) + len(template.histograms)
        print(f"frame: {series} series, {frame.stat().st_size} bytes on the bus; load {os.getloadavg()}")
        print("| hosts | CPU % of one core | CPU % per host | RSS MiB | disk MiB per host-hour "
              "| frames stored / due | lost | snapshot rows | snapshot s | ms per row |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for hosts in (int(h) for h in args.hosts.split(",")):
            r = measure(hosts, args.seconds, work, catalog, frame)
            print(f"| {hosts} | {r['cpu']:.1f} | {r['cpu'] / hosts:.2f} | {r['rss']:.0f} | "
                  f"{r['bytes_per_frame'] * 3600 / 2**20:.1f} | {r['stored']} / {r['expected']:.0f} | {r['missed']} "
                  f"| {r['snap_rows']} | {r['snap_s']:.2f} | {1000 * r['snap_s'] / max(1, r['snap_rows']):.2f} |",
                  flush=True)
        print(f"load after: {os.getloadavg()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
