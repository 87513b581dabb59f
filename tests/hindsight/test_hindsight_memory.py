"""A snapshot written by a worker thread gives its memory back (``one_heap`` + ``release_memory``)."""

from __future__ import annotations

import os
import subprocess
import sys

from rezolus_recording.writer import ROW_GROUP_BYTES

SCRIPT = """
import sys, tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import numpy as np
from rezolus_core.frame import MetricType, encode_catalog
from rezolus_core.tracker import Tracker
from rezolus_hindsight import snapshot
from rezolus_hindsight.buffer import Buffer
from rezolus_recording.arrow import one_heap, without_pandas
from support import synth

class Wide(synth.Values):
    def histogram(self, spec, seq):
        return np.arange(0, 480, 16, dtype=np.uint16), np.full(30, seq + 1, dtype=np.uint64)

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024

if sys.argv[1] == "one":
    one_heap()
without_pandas()
S = 1_000_000_000
rows = [(f"h{i}", MetricType.HISTOGRAM, {}, "nanoseconds") for i in range(35)]
agent = synth.Agent(synth.catalog(rows=rows), S // 10, Wide())
with tempfile.TemporaryDirectory() as work:
    buffer = Buffer(Path(work) / "b", interval_ns=S // 10, duration_ns=3600 * S, max_bytes=1 << 30)
    buffer.open()
    tracker, cat = Tracker(clock=None), agent.catalog_payload()
    tracker.feed(cat)
    for i in range(1200):
        payload = agent.next_payload(1_800_000_000 * S + i * S // 10)
        for delivery in tracker.feed(payload):
            buffer.ingest(delivery, payload, cat)
    with ThreadPoolExecutor(1) as pool:
        sizes = []
        for n in range(3):
            result = pool.submit(snapshot.write, buffer.select(0, 2**63 - 1), Path(work) / f"{n}.parquet",
                                 interval_ns=S // 10).result()
            sizes.append(rss())
        print(result.rows, sizes[0], sizes[-1])
"""


def test_snapshots_in_a_worker_thread_leave_little_resident() -> None:
    """After a first snapshot (1,200 rows x 35 dense histograms), two more keep less than a row group resident."""
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, "one"], capture_output=True, text=True, check=True, timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    rows, before, after = map(int, out.stdout.split())
    assert rows == 1200
    assert after - before < ROW_GROUP_BYTES >> 20, (before, after)
