"""Where a hindsight snapshot's CPU goes, for code trees side by side (issue #19).

    .venv/bin/python bench/snapshot_phases_bench.py [--rows N] [--pairs N] [--live-buckets] [--frames FILE] \
        --tree DIR --tree .

Captures 20 frames of the live agent at 100 ms once (or reuses those kept in
``--frames FILE``, capturing them there if it does not exist), then for each pair runs
every tree in turn, each in a fresh process with that tree's code first on
``PYTHONPATH``: it fills a buffer with ``--rows`` stamped frames (copies of
the last frame with growing values; with ``--live-buckets`` the 20 frames in
turn, so bucket arrays change from frame to frame as they do live), then
measures the main thread's CPU per row (``thread_time``, best of 3) of
reading the records, the catalog pass, decoding and adding the rows (row
groups discarded) and building the arrow tables (row groups taken, parquet
not written); then one ``snapshot.write``: CPU, main-thread CPU, wall, and
the file's SHA-256 (equal across trees when their output is byte-identical).
Prints the load average; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from store_bench import capture, env_for

CHILD = r"""
import dataclasses, hashlib, json, pickle, sys, time
from pathlib import Path
import numpy as np
from rezolus_core.frame import encode_catalog, encode_frame
from rezolus_core.tracker import Tracker
from rezolus_hindsight import snapshot
from rezolus_hindsight.buffer import Buffer

S, T0 = 1_000_000_000, 1_795_000_000 * 1_000_000_000
frames_file, work, rows, live_buckets = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
live = pickle.load(open(frames_file, "rb"))
interval = S // 10

def stamped(template, i):
    grow = np.uint64(i)
    return dataclasses.replace(
        template, seq=i + 1, timestamp_ns=T0 + i * interval, monotonic_ns=i * interval, interval_ns=interval,
        counter_values=template.counter_values + grow * np.uint64(1000),
        gauge_values=template.gauge_values + np.int64(i % 7),
        hist_counts=template.hist_counts + grow,
    )

catalog = live[-1].catalog
buffer = Buffer(work / "buf", interval_ns=interval, duration_ns=15 * 60 * S, max_bytes=8 << 30)
buffer.open()
tracker = Tracker(clock=None)
catalog_payload = encode_catalog(catalog)
tracker.feed(catalog_payload)
for i in range(rows):
    payload = encode_frame(stamped(live[i % len(live)].frame if live_buckets else live[-1].frame, i))
    for delivery in tracker.feed(payload):
        buffer.ingest(delivery, payload, catalog_payload)
snapshot.warm_up()

def selections():
    return snapshot.Selections([("bench", buffer.select(0, 2**63 - 1))])

def read():
    chosen = selections()
    for _ in chosen.parts[0][1].records():
        pass
    chosen.close()

def catalogs():
    chosen = selections()
    snapshot._builder(chosen, interval)
    chosen.close()

def replay(flush_name):
    def run():
        chosen = selections()
        builder = snapshot._builder(chosen, interval)
        snapshot._replay(chosen, builder, getattr(builder, flush_name))
        chosen.close()
    return run

def per_row(step):
    best = float("inf")
    for _ in range(3):
        start = time.thread_time()
        step()
        best = min(best, time.thread_time() - start)
    return best / rows * 1e6

r, c, d, t = per_row(read), per_row(catalogs), per_row(replay("discard")), per_row(replay("take"))
out = {"read": r, "catalogs": c, "decode_add": d - c - r, "take": t - d, "total": t}
wall, cpu, main = time.perf_counter(), time.process_time(), time.thread_time()
result = snapshot.write(buffer.select(0, 2**63 - 1), work / "snap.parquet", source="bench", interval_ns=interval)
out.update(wall_s=time.perf_counter() - wall, cpu_s=time.process_time() - cpu, main_s=time.thread_time() - main,
           sha=hashlib.sha256(result.path.read_bytes()).hexdigest()[:12], series=catalog.version,
           histograms=len(live[-1].frame.histograms))
buffer.close()
print(json.dumps(out))
"""


def run(tree: Path, frames: Path, rows: int, live_buckets: bool) -> dict[str, float | str]:
    """One measure of ``tree`` in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="snapshot-phases-") as work:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(frames), work, str(rows), "1" if live_buckets else "0"],
            env=env_for(tree), capture_output=True, text=True, check=False, timeout=3600,
        )
    if done.returncode != 0:
        raise SystemExit(f"{tree} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    """Run the pairs and print one markdown row per run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tree", type=Path, action="append", required=True, help="a code tree")
    parser.add_argument("--rows", type=int, default=9000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--frames", type=Path, default=None, help="captured frames to reuse (captured there if absent)")
    parser.add_argument("--live-buckets", action="store_true", help="cycle the captured frames")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="snapshot-phases-") as tmp:
        frames = Path(tmp) / "frames.pkl"
        shape = capture(20, frames, args.frames)
        print(f"Frames of this host's agent: {shape}; {os.cpu_count()} CPUs; {args.rows} rows.\n")
        print("| load | code | µs/row: read, catalogs, decode+add, take, total | snapshot: CPU (main) / wall | sha |")
        print("|---|---|---|---|---|")
        for _ in range(args.pairs):
            for tree in args.tree:
                load = os.getloadavg()[0]
                r = run(tree.resolve(), frames, args.rows, args.live_buckets)
                phases = ", ".join(f"{r[k]:.0f}" for k in ("read", "catalogs", "decode_add", "take", "total"))
                print(f"| {load:.1f} | {tree} | {phases} | {r['cpu_s']:.2f} s ({r['main_s']:.2f}) / "
                      f"{r['wall_s']:.2f} s | {r['sha']} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
