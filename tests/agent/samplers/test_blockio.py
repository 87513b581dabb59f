"""blockio samplers vs /proc/diskstats (ops and bytes) and a bpftrace script (latency)."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from ioinet_helpers import direct_io, loop_device, read_diskstats

from rezolus_core import histogram
from support.cpus import pass_through_every_cpu
from support.live import Bpftrace, total

pytestmark = pytest.mark.root

OPS = ("read", "write", "flush", "discard")


def _ours(loaded):
    values = loaded.read()
    return {
        op: {
            "ops": total(values, "blockio_operations", op=op),
            "bytes": total(values, "blockio_bytes", op=op),
        }
        for op in OPS
    }


def test_operations_and_bytes_match_diskstats(load_samplers, tmp_path):
    """Ops and bytes of reads, writes, fsync flushes and discards on a loop device match /proc/diskstats within 1 %.

    Other processes' IO is counted by both sides, so the diskstats window is sandwiched between
    an inner and an outer sampler window.  block_rq_complete fires before the kernel adds the
    request to diskstats, in the same completion softirq, so after each sampler read the test
    runs once on every CPU before reading diskstats.  The 1 % is not for ordering: even so,
    diskstats counted up to 19 in 10,048 completions (reads, writes, discards; mostly IO in
    flight as the window opened) that block_rq_complete never showed, to the sampler (atomic
    adds changed nothing) or to a perf-tracepoint count beside it.
    """
    loaded = load_samplers("blockio_requests")
    with loop_device(tmp_path) as dev:
        m1 = _ours(loaded)
        pass_through_every_cpu()
        r1, m2 = read_diskstats(), _ours(loaded)
        direct_io(dev, reads=6000, writes=3000, fsyncs=600)
        for chunk in range(64):
            subprocess.run(["blkdiscard", "-o", str(chunk << 20), "-l", str(1 << 20), dev], check=True)
        m3 = _ours(loaded)
        pass_through_every_cpu()
        r2, m4 = read_diskstats(), _ours(loaded)
    for op in OPS:
        for what in ("ops", "bytes"):
            if op == "flush" and what == "bytes":
                continue
            inner, outer = m3[op][what] - m2[op][what], m4[op][what] - m1[op][what]
            ref = r2[op][what] - r1[op][what]
            print(op, what, inner, ref, outer)
            assert ref > 0, (op, what)
            assert inner <= 1.01 * ref, (op, what, inner, ref)
            assert ref <= 1.01 * outer, (op, what, ref, outer)
    assert m3["read"]["ops"] - m2["read"]["ops"] >= 6000
    assert m3["write"]["ops"] - m2["write"]["ops"] >= 3000
    assert m3["flush"]["ops"] - m2["flush"]["ops"] >= 600
    assert m3["discard"]["bytes"] - m2["discard"]["bytes"] >= 64 << 20


# Values are kept in a map printed at exit: printing per event would put bpftrace's
# reader wake-up inside the interval that a program running after it measures.
BPFTRACE = """
tracepoint:block:block_rq_issue { @start[args->dev, args->sector] = nsecs; }
tracepoint:block:block_rq_complete /@start[args->dev, args->sector]/ {
    @v[cpu, nsecs, args->rwbs] = nsecs - @start[args->dev, args->sector];
    delete(@start[args->dev, args->sector]);
}
"""


def _op(rwbs: str) -> str | None:
    code = rwbs[1] if rwbs[:1] == "F" and rwbs[1:2] in {"R", "W", "F", "D"} else rwbs[:1]
    return {"R": "read", "W": "write", "F": "flush", "D": "discard"}.get(code)


def _read_latencies(loaded, bpftrace: str, dev: str) -> tuple[np.ndarray, np.ndarray, int]:
    """8,000 O_DIRECT reads of ``dev``: our read-latency histogram delta, bpftrace's, and reads other disks completed.

    Both sides time every disk's reads; the third value bounds how many of ours were
    other processes' (diskstats of the other disks over an outer window: the sampler's
    count comes first on each completion, hence the pass over every CPU before the last read).
    """
    trace = Bpftrace(bpftrace, BPFTRACE, env={"BPFTRACE_MAP_KEYS_MAX": "131072"})
    try:
        others = read_diskstats(exclude=dev)["read"]["ops"]
        before = total(loaded.read(), "blockio_latency", op="read")
        direct_io(dev, reads=8000)
        after = total(loaded.read(), "blockio_latency", op="read")
        pass_through_every_cpu()
        others = read_diskstats(exclude=dev)["read"]["ops"] - others
    finally:
        out = trace.stop()
    samples = [
        int(value)
        for key, value in (line[3:].rsplit(":", 1) for line in out.splitlines() if line.startswith("@v["))
        if _op(key.rstrip("]").rsplit(",", 1)[1].strip()) == "read"
    ]
    return np.asarray(after - before, dtype=np.uint64), histogram.from_values(samples), others


def test_read_latency_matches_bpftrace(load_samplers, bpftrace, tmp_path):
    """Read latency p50 and p90 agree with a bpftrace script on the same tracepoints, allowing for what it missed.

    The reference runs on perf tracepoints, whose programs the kernel skips while another
    perf-tracepoint program runs on the same CPU: it saw 59-100 % of the completions in
    our runs (92-96 % on a quiet CI machine) while our raw tracepoints saw every read, and
    what it misses is no fair sample (at 81 % seen its p50 was 7 buckets above ours, at
    92.5 % its p90 2 buckets).  So the comparison allows exactly for the share it missed:
    if the reference saw a fraction ``f`` of the reads, the p-th percentile of all of them
    lies between the reference's percentiles ``(p - 100 (1 - f)) / f`` and ``p / f``
    whatever the missed reads were; ours must lie in that band, within one bucket.  Ours
    must time every read; the attempt where the reference saw most (of up to five, until
    it saw 99 %) is compared, and one where it saw under 80 % is too busy for this reference.
    """
    loaded = load_samplers("blockio_latency")
    attempts = []
    with loop_device(tmp_path) as dev:
        for _ in range(5):
            ours, reference, others = _read_latencies(loaded, bpftrace, dev)
            # The issue-time table loses a request only by its stated limits (both ways of a set
            # busy, or two CPUs taking one free way at once: blockio_latency.bpf.c); one read in
            # 8,000 went untimed once in about twenty runs, so the bound is 1 in 1,000.  Reads
            # other processes made on other disks meanwhile (another test session's) count too.
            timed = int(histogram.total(ours))
            assert 8000 - 8 <= timed <= 8000 + others + 8, ("every read is timed once", timed, others)
            attempts.append((histogram.total(reference) / histogram.total(ours), ours, reference))
            if attempts[-1][0] >= 0.99:
                break
    seen, ours, reference = max(attempts, key=lambda a: a[0])
    assert seen >= 0.8, f"bpftrace saw only {[round(a[0], 3) for a in attempts]} of the reads: too busy"
    got = histogram.percentile_indices(ours, [50, 90])
    for p, g in zip((50, 90), got, strict=True):
        band = [max(0.0, (p - 100 * (1 - seen)) / seen), min(100.0, p / seen)]
        lo, hi = histogram.percentile_indices(reference, band)
        print(f"p{p}: ours {g}, bpftrace band [{lo}, {hi}] with {seen:.1%} seen")
        assert g is not None
        assert lo is not None
        assert hi is not None
        assert lo - 1 <= g <= hi + 1, (p, g, lo, hi, seen)
