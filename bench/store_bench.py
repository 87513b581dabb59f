"""Cost of the store paths (hindsight snapshots, recorder conversion), for code trees side by side.

    .venv/bin/python bench/store_bench.py [--quick] [--tree DIR ...] [--journal FILE] [--frames FILE]

Frames are the live agent's: the bench captures the catalog and frames of a
``rezolus-agent`` on this host (every default sampler, 100 ms) once (with
``--frames FILE``: the frames kept there, captured into it if it does not
exist, so runs at different times use the same catalog), then for
each tree given (default: this one; e.g. ``--tree /tmp/before --tree .``)
runs every measure in a fresh Python process with that tree's ``core/src``,
``recording/src`` and ``services/*/src`` first on ``PYTHONPATH``:

1. hindsight start-up RSS: import the service and its HTTP side, then the
   snapshot warm-up the service runs at start (VmRSS);
2. a snapshot of 15 min at 100 ms (9,000 rows; ``--quick``: 3,000) from a
   buffer filled with stamped copies of a live frame (growing values):
   wall and CPU seconds, peak RSS above the process's RSS before it;
3. recorder conversion of a journal of 15 min at 1 s (900 rows) of stamped
   frames, and of 24 h at 1 s (86,400 rows; ``--quick``: 7,200): CPU, peak
   RSS (``ru_maxrss``) and the file's size;
4. with ``--journal FILE``, the same conversion of a journal recorded from a
   live agent (real values: this is the file-size figure to trust).

CPU and wall times are sensitive to other load on the machine; the report
prints the load average.  Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import dataclasses, json, os, pickle, resource, shutil, sys, time
from pathlib import Path
import numpy as np

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

S, T0 = 1_000_000_000, 1_795_000_000 * 1_000_000_000
job, frames_file, work = sys.argv[1], sys.argv[2], Path(sys.argv[3])
out = {}
try:
    from rezolus_recording.arrow import without_pandas
    without_pandas()
except ImportError:
    pass

def stamped(template, i, interval_ns):
    grow = np.uint64(i)
    return dataclasses.replace(
        template, seq=i + 1, timestamp_ns=T0 + i * interval_ns, monotonic_ns=i * interval_ns,
        interval_ns=interval_ns, counter_values=template.counter_values + grow * np.uint64(1000),
        gauge_values=template.gauge_values + np.int64(i % 7),
        hist_counts=template.hist_counts + grow,
    )

if job == "startup":
    import rezolus_hindsight.main, rezolus_hindsight.service, rezolus_hindsight.http  # noqa
    out["imports_mb"] = rss()
    from rezolus_hindsight import snapshot
    snapshot.warm_up()
    out["after_warm_up_mb"] = rss()
elif job.startswith("snapshot:"):
    rows = int(job.split(":")[1])
    from rezolus_core.frame import encode_catalog, encode_frame
    from rezolus_core.tracker import Tracker
    from rezolus_hindsight import snapshot
    from rezolus_hindsight.buffer import Buffer
    template = pickle.load(open(frames_file, "rb"))[-1]
    interval = S // 10
    buffer = Buffer(work / "buf", interval_ns=interval, duration_ns=15 * 60 * S, max_bytes=8 << 30)
    buffer.open()
    tracker = Tracker()
    catalog_payload = encode_catalog(template.catalog)
    tracker.feed(catalog_payload)
    started = time.process_time()
    for i in range(rows):
        payload = encode_frame(stamped(template.frame, i, interval))
        for delivery in tracker.feed(payload):
            buffer.ingest(delivery, payload, catalog_payload)
    out["ingest_us"] = (time.process_time() - started) / rows * 1e6
    snapshot.warm_up()
    base = rss()
    wall, cpu = time.perf_counter(), time.process_time()
    result = snapshot.write(buffer.select(0, 2**63 - 1), work / "snap.parquet", source="bench", interval_ns=interval)
    out.update(wall_s=time.perf_counter() - wall, cpu_s=time.process_time() - cpu, rows=result.rows,
               bytes=result.bytes, rss_before_mb=base, peak_mb=peak())
elif job.startswith("convert:"):
    _, source = job.split(":", 1)
    from rezolus_recorder import convert
    journal = work / "rec.parquet.journal"
    if source.isdigit():
        from rezolus_core.frame import encode_frame
        from rezolus_recorder import journal as jr
        from rezolus_recorder.catalogs import CatalogJournal
        template = pickle.load(open(frames_file, "rb"))[-1]
        writer = jr.JournalWriter(journal, {"source": "bench", "interval_ns": S, "started_ns": 1, "host": {}},
                                  sync_every_s=3600.0)
        catalogs = CatalogJournal()
        for i in range(int(source)):
            for kind, payload in catalogs.records(template.catalog):
                writer.append(kind, payload)
            frame = stamped(template.frame, i, S)
            writer.append_row(i, frame.timestamp_ns, encode_frame(frame))
        writer.close()
        del template, writer
    else:
        shutil.copyfile(source, journal)
    base = rss()
    wall, cpu = time.perf_counter(), time.process_time()
    result = convert.convert(journal, work / "rec.parquet")
    out.update(wall_s=time.perf_counter() - wall, cpu_s=time.process_time() - cpu, rows=result.rows,
               bytes=result.bytes, rss_before_mb=base, peak_mb=peak())
print(json.dumps(out))
"""


def env_for(tree: Path) -> dict[str, str]:
    """The environment that runs ``tree``'s code."""
    env = dict(os.environ)
    src = [tree / "core/src", tree / "recording/src", *sorted((tree / "services").glob("*/src"))]
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in src if p.is_dir())
    return env


def run(tree: Path, job: str, frames: Path) -> dict[str, float]:
    """Run one measure in a fresh process on ``tree``'s code."""
    with tempfile.TemporaryDirectory(prefix="store-bench-") as work:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, job, str(frames), work],
            env=env_for(tree), capture_output=True, text=True, check=False, timeout=3600,
        )
    if done.returncode != 0:
        raise SystemExit(f"{job} on {tree} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def capture(count: int, path: Path, kept: Path | None = None) -> str:
    """Pickle ``count`` live agent deliveries at 100 ms into ``path``; describe them.

    With ``kept`` (``--frames``), the deliveries are those pickled there, or
    are captured and pickled there too when it does not exist yet, so runs
    at different times can use the same frames.
    """
    if kept is not None and kept.exists():
        with kept.open("rb") as handle:
            live = pickle.load(handle)  # noqa: S301 - the bench's own file
    else:
        sys.path.insert(0, str(ROOT / "bench"))
        import hindsight_bench  # noqa: PLC0415 - the bench's own capture helper

        live = hindsight_bench.capture(count)
        if kept is not None:
            with kept.open("wb") as handle:
                pickle.dump(live, handle)
    with path.open("wb") as handle:
        pickle.dump(live, handle)
    last = live[-1]
    return f"{last.catalog.version} series, {len(last.frame.histograms)} histograms"


def main() -> int:
    """Run every measure for every tree and print markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller snapshot and 24 h stand-in (2 h)")
    parser.add_argument("--tree", type=Path, action="append", help="a code tree (default: this one)")
    parser.add_argument("--journal", type=Path, default=None, help="a recorded journal to convert too")
    parser.add_argument("--frames", type=Path, default=None, help="captured frames to reuse (captured there if absent)")
    parser.add_argument("--long-rows", type=int, default=None, help="rows of the long conversion (default 86400)")
    args = parser.parse_args()
    trees = [t.resolve() for t in (args.tree or [ROOT])]
    snapshot_rows = 3000 if args.quick else 9000
    long_rows = args.long_rows or (7200 if args.quick else 86400)
    with tempfile.TemporaryDirectory(prefix="store-bench-") as tmp:
        frames = Path(tmp) / "frames.pkl"
        shape = capture(20, frames, args.frames)
        jobs = [
            ("hindsight start-up", "startup"),
            (f"snapshot, {snapshot_rows} rows at 100 ms", f"snapshot:{snapshot_rows}"),
            ("conversion, 900 rows at 1 s (15 min)", "convert:900"),
            (f"conversion, {long_rows} rows at 1 s", f"convert:{long_rows}"),
        ]
        if args.journal is not None:
            jobs.append((f"conversion of {args.journal.name}", f"convert:{args.journal.resolve()}"))
        results: dict[tuple[str, Path], dict[str, float]] = {}
        started = time.monotonic()
        loads = [os.getloadavg()[0]]
        for _, job in jobs:
            for tree in trees:
                results[job, tree] = run(tree, job, frames)
                loads.append(os.getloadavg()[0])
    print(f"Frames of this host's agent: {shape}; {os.cpu_count()} CPUs; load average "
          f"{min(loads):.1f}–{max(loads):.1f} during {time.monotonic() - started:.0f} s.\n")
    print("| measure | code | figures |")
    print("|---|---|---|")
    for label, job in jobs:
        for tree in trees:
            r = results[job, tree]
            if job == "startup":
                text = f"RSS {r['imports_mb']:.1f} MB after imports, {r['after_warm_up_mb']:.1f} MB after warm-up"
            else:
                text = (f"{r['rows']:.0f} rows: wall {r['wall_s']:.2f} s, CPU {r['cpu_s']:.2f} s, peak RSS "
                        f"{r['peak_mb']:.0f} MB ({r['peak_mb'] - r['rss_before_mb']:+.0f} MB), "
                        f"{r['bytes'] / 1e6:.2f} MB file")
                if "ingest_us" in r:
                    text += f"; ingest {r['ingest_us']:.0f} µs CPU per frame"
            print(f"| {label} | {tree} | {text} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
