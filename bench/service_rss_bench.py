"""Steady RSS and CPU of hindsight and the recorder following one live agent, for two code trees side by side.

    .venv/bin/python bench/service_rss_bench.py [--seconds 30] [--tree DIR ...]

One ``rezolus-agent`` (this tree, every sampler, 100 ms) feeds, for each tree
given (default: this one), a ``rezolus-hindsight`` at 100 ms over a 15 min
buffer and a ``rezolus-recorder`` at 1 s, all at once; after a warm-up (the
hindsight snapshot warm-up included) RSS is read from ``/proc/PID/status``
(VmRSS, and VmHWM for the peak) and CPU from ``/proc/PID/stat`` over the
window.  Then each hindsight is asked for a snapshot of its whole buffer
(``POST /snapshot``, one after the other) and its RSS is read again once the
answer has arrived: what stays resident after a snapshot.  A tree's code is
run with its ``core/src``, ``recording/src`` and ``services/*/src`` first on
``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import cpu_seconds, free_port, load_line

from rezolus_core.bus import ZmqSubscriber

ROOT = Path(__file__).resolve().parent.parent


def env_for(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    src = [tree / "core/src", tree / "recording/src", *sorted((tree / "services").glob("*/src"))]
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in src if p.is_dir())
    return env


def status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            out[key] = int(rest.split()[0]) * 1024
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--tree", type=Path, action="append")
    args = parser.parse_args()
    trees = args.tree or [ROOT]
    port = free_port()
    agent = subprocess.Popen([sys.executable, "-m", "rezolus_agent.main", "--listen", f"tcp://127.0.0.1:{port}",
                              "--interval", "100ms"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sub = ZmqSubscriber(f"tcp://127.0.0.1:{port}")
    deadline = time.monotonic() + 60
    while not sub.poll(0.5) and time.monotonic() < deadline:
        pass
    sub.close()
    procs: list[tuple[str, Path, subprocess.Popen[bytes]]] = []
    ports: dict[int, int] = {}
    work = Path(tempfile.mkdtemp())
    for n, tree in enumerate(trees):
        env = env_for(tree)
        ports[n] = free_port()
        hs = [sys.executable, "-m", "rezolus_hindsight.main", "--source", f"tcp://127.0.0.1:{port}",
              "--interval", "100ms", "--duration", "15m", "--directory", str(work / f"h{n}"),
              "--output", str(work / f"s{n}"), "--listen", f"127.0.0.1:{ports[n]}"]
        rec = [sys.executable, "-m", "rezolus_recorder.main", "--source", f"tcp://127.0.0.1:{port}",
               "--interval", "1s", str(work / f"r{n}.parquet")]
        for name, cmd in (("hindsight", hs), ("recorder", rec)):
            log = (work / f"{name}{n}.log").open("wb")
            procs.append((name, tree, subprocess.Popen(cmd, env=env, cwd=work, stdout=log, stderr=log)))
    time.sleep(30)  # benchmark warm-up: agent start-up, first frames, hindsight's snapshot warm-up
    before = {p.pid: cpu_seconds(p.pid) for _, _, p in procs}
    t0 = time.monotonic()
    time.sleep(args.seconds)  # benchmark window
    elapsed = time.monotonic() - t0
    print(f"{load_line()}; window {elapsed:.0f} s\n")
    print("| service | code | CPU % of a core | RSS MB | peak RSS MB |")
    print("|---|---|---|---|---|")
    for name, tree, proc in procs:
        if proc.poll() is not None:
            print(f"| {name} | {tree} | exited {proc.returncode}: see {work}/{name}*.log | | |")
            continue
        used = cpu_seconds(proc.pid) - before[proc.pid]
        mem = status(proc.pid)
        print(f"| {name} | {tree} | {100 * used / elapsed:.2f} | {mem['VmRSS'] / 1e6:.1f} | {mem['VmHWM'] / 1e6:.1f} |")
    print("\n| hindsight after one snapshot | code | snapshot wall s | RSS MB | peak RSS MB |")
    print("|---|---|---|---|---|")
    for n, (_, tree, proc) in enumerate(p for p in procs if p[0] == "hindsight"):
        started = time.monotonic()
        request = urllib.request.Request(f"http://127.0.0.1:{ports[n]}/snapshot", method="POST")
        with urllib.request.urlopen(request, timeout=600) as answer:  # noqa: S310 - loopback
            answer.read()
        took = time.monotonic() - started
        mem = status(proc.pid)
        print(f"| hindsight | {tree} | {took:.2f} | {mem['VmRSS'] / 1e6:.1f} | {mem['VmHWM'] / 1e6:.1f} |")
    for _, _, proc in procs:
        proc.terminate()
    for _, _, proc in procs:
        proc.wait(timeout=60)
    agent.terminate()
    agent.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
