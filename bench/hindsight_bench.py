"""Hindsight benchmarks, measured side by side in one run.

    .venv/bin/python bench/hindsight_bench.py [--quick]

Frames are shaped like the live agent's: the bench captures the catalog and a
frame from a real ``rezolus-agent`` on this host, then stamps copies of that
frame onto a 15-minute grid with growing values.

1. snapshot time for 15 min at 1 s (900 rows) and at 100 ms (9000 rows):
   read + decode the buffer, build the table, write parquet (median of
   repeats; the first one, after the service's start-up warm-up, apart);
   against the
   reference, the recorder's own path for the same rows (TableBuilder on
   already-decoded frames + write_table), which is the floor of any snapshot;
2. disk bytes per frame in the buffer, for real consecutive agent frames
   (stamped copies compress unrealistically well), against the raw payload;
3. ingestion CPU (% of one core) of a live hindsight at 1 s next to a live
   recorder at 1 s on the same agent (the reference), and the in-process cost
   of one ingest (tracker + buffer), in microseconds.
Prints a markdown report for docs/performance-history.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import BIN, cpu_seconds, free_endpoint, rss_mib, start_agent

from rezolus_core.bus import ZmqSubscriber
from rezolus_core.frame import Frame, encode_catalog, encode_frame
from rezolus_core.tracker import Delivery, Tracker
from rezolus_hindsight import snapshot
from rezolus_hindsight.buffer import Buffer
from rezolus_recording.builder import TableBuilder
from rezolus_recording.writer import write_table

S = 1_000_000_000
T0 = 1_795_000_000 * S


def capture(count: int) -> list[Delivery]:
    """Live frames of the real agent at 100 ms."""
    proc, endpoint, _ = start_agent("100ms")
    sub = ZmqSubscriber(endpoint)
    try:
        deadline = time.monotonic() + 60 + count / 10
        got: list[Delivery] = []
        while len(got) < count:
            got += sub.poll(1.0)
            if time.monotonic() > deadline:
                raise RuntimeError(f"the agent produced {len(got)} of {count} frames in time")
        return got
    finally:
        sub.close()
        proc.terminate()
        proc.wait(30)


def stamped(template: Frame, i: int, interval_ns: int) -> Frame:
    grow = np.uint64(i)
    return dataclasses.replace(
        template,
        seq=i + 1,
        timestamp_ns=T0 + i * interval_ns,
        monotonic_ns=i * interval_ns,
        interval_ns=interval_ns,
        counter_values=template.counter_values + grow * np.uint64(1000),
        gauge_values=template.gauge_values + np.int64(i % 7),
        hist_counts=template.hist_counts + grow,
    )


def fill(
    directory: Path, template: Delivery, rows: int, interval_ns: int
) -> tuple[Buffer, list[Delivery], float, int]:
    """Ingest ``rows`` frames; return the buffer, deliveries, CPU s per ingest and raw bytes."""
    catalog_payload = encode_catalog(template.catalog)
    payloads = [encode_frame(stamped(template.frame, i, interval_ns)) for i in range(rows)]
    buffer = Buffer(directory, interval_ns=interval_ns, duration_ns=15 * 60 * S, max_bytes=8 << 30)
    buffer.open()
    tracker = Tracker()
    tracker.feed(catalog_payload)
    deliveries: list[Delivery] = []
    started = time.process_time()
    for payload in payloads:
        for delivery in tracker.feed(payload):
            buffer.ingest(delivery, payload, catalog_payload)
            deliveries.append(delivery)
    per_ingest = (time.process_time() - started) / rows
    return buffer, deliveries, per_ingest, sum(len(p) for p in payloads)


def live_disk(frames: list[Delivery], directory: Path) -> tuple[float, float]:
    """Buffer bytes and raw payload bytes per frame for real, consecutive agent frames."""
    buffer = Buffer(directory, interval_ns=S // 10, duration_ns=15 * 60 * S, max_bytes=8 << 30)
    buffer.open()
    raw = 0
    for delivery in frames:
        payload = encode_frame(delivery.frame)
        raw += len(payload)
        buffer.ingest(delivery, payload, encode_catalog(delivery.catalog))
    rows = buffer.rows()
    buffer._seal()  # noqa: SLF001 - count the tail as it will be stored, compressed
    per_frame = buffer.disk_bytes() / rows
    buffer.close()
    return per_frame, raw / len(frames)


def time_snapshot(buffer: Buffer, out: Path, interval_ns: int, repeats: int) -> tuple[float, float, int, int]:
    """Cold (first) and warm (median of the rest) snapshot wall times, rows and bytes."""
    times = []
    rows = size = 0
    for k in range(repeats + 1):
        started = time.perf_counter()
        selection = buffer.select(0, 2**63 - 1)
        result = snapshot.write(selection, out / f"s{k}.parquet", source="bench", interval_ns=interval_ns)
        times.append(time.perf_counter() - started)
        rows, size = result.rows, result.bytes
    return times[0], statistics.median(times[1:]), rows, size


def time_reference(deliveries: list[Delivery], out: Path, interval_ns: int, repeats: int) -> float:
    times = []
    for k in range(repeats + 1):
        started = time.perf_counter()
        builder = TableBuilder(source="bench", interval_ns=interval_ns)
        for delivery in deliveries:
            builder.add(delivery)
        write_table(builder.table(), out / f"r{k}.parquet")
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def live_cpu(seconds: float, work: Path) -> tuple[float, float, float, float, float]:
    """CPU % of one core: hindsight at 1 s, recorder at 1 s, agent at 1 s, same agent."""
    agent, endpoint, _ = start_agent("1s")
    listen = free_endpoint().removeprefix("tcp://")
    hindsight = subprocess.Popen(
        [str(BIN / "rezolus-hindsight"), "--source", endpoint, "--interval", "1s",
         "--directory", str(work / "hs"), "--output", str(work / "out"), "--listen", listen],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    recorder = subprocess.Popen(
        [str(BIN / "rezolus-recorder"), "--source", endpoint, "--interval", "1s", str(work / "rec.parquet")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    procs = (hindsight, recorder, agent)
    try:
        time.sleep(10)  # let all three import, connect and settle before measuring
        before = [cpu_seconds(p.pid) for p in procs]
        started = time.monotonic()
        time.sleep(seconds)  # the measurement window
        after = [cpu_seconds(p.pid) for p in procs]
        wall = time.monotonic() - started
        hs, rec, ag = (100 * (a - b) / wall for a, b in zip(after, before, strict=True))
        return hs, rec, ag, rss_mib(hindsight.pid), rss_mib(recorder.pid)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats, shorter live run")
    args = parser.parse_args()
    repeats = 1 if args.quick else 5
    snapshot.warm_up()  # as the service does at start, in the background
    live = capture(50 if args.quick else 600)
    template = live[-1]
    series = template.catalog.version
    work = Path(tempfile.mkdtemp(prefix="hindsight-bench-"))
    try:
        lines = [
            (
                f"Frames shaped like this host's agent: {series} series "
                f"({len(template.frame.histograms)} histograms), {os.cpu_count()} CPUs."
            ),
            "",
            "| measure | hindsight | reference | ratio |",
            "|---|---|---|---|",
        ]
        for label, interval_ns, rows in (("1 s", S, 900), ("100 ms", S // 10, 9000)):
            directory = work / f"buf-{rows}"
            buffer, deliveries, per_ingest, raw = fill(directory, template, rows, interval_ns)
            cold, took, got, size = time_snapshot(buffer, work, interval_ns, repeats)
            floor = time_reference(deliveries, work, interval_ns, repeats)
            assert got == rows
            lines.append(
                f"| snapshot of 15 min at {label} ({rows} rows, parquet {size / 1e6:.2f} MB) "
                f"| {took:.2f} s (first one {cold:.2f} s) | recorder layout alone {floor:.2f} s "
                f"| {took / floor:.2f}× |"
            )
            lines.append(
                f"| ingest cost per frame at {label} (tracker + buffer, CPU) | {per_ingest * 1e6:.0f} µs "
                f"| — | {per_ingest * 100:.4f} % of a core at 1 frame/s |"
            )
            buffer.close()
            shutil.rmtree(directory)
        per_frame, raw = live_disk(live, work / "live")
        lines.append(
            f"| buffer disk bytes per frame, {len(live)} live frames at 100 ms | {per_frame / 1e3:.1f} kB "
            f"| raw bus payload {raw / 1e3:.1f} kB | {per_frame / raw:.2f}× |"
        )
        seconds = 20 if args.quick else 60
        hs, rec, ag, hs_rss, rec_rss = live_cpu(seconds, work)
        ratio = f"{hs / rec:.2f}×" if rec else "—"
        lines.append(
            f"| live CPU at 1 s over {seconds} s (% of one core) | {hs:.2f} % "
            f"| recorder {rec:.2f} % (agent {ag:.2f} %) | {ratio} |"
        )
        lines.append(f"| live RSS | {hs_rss:.0f} MiB | recorder {rec_rss:.0f} MiB | {hs_rss / rec_rss:.2f}× |")
        print("\n".join(lines))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
