"""CPU of one histogram map's emitter when few or none of its histograms changed, by CPU count.

    .venv/bin/python bench/hist_events_bench.py [--cpus 2,64,192] [--frames 60] [--rounds 3]

A ``wiring.Histograms`` of 16 histograms (syscall_latency's shape) over a
fake map of N CPUs, 200 buckets of each histogram filled.  Each frame, K of
the 16 histograms get one event on every CPU (bucket and event count, as
the kernel does; every CPU is the worst case for reading counts).  Prints
the median thread CPU (µs, warm: frames back to back) of the emitter with
the event counts trusted (x86-64: only the histograms whose count moved are
summed) and not trusted (the whole map summed every frame, as before the
counts existed), side by side in one run; best of ``--rounds``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import load_line

HISTS = 16
FILLED = 200


def median_us(cpus: int, changed: int, *, trust: bool, frames: int) -> float:
    """Median thread CPU of one frame's emit."""
    from rezolus_agent import wiring  # noqa: PLC0415 - project code only when run
    from rezolus_agent.bpfload import BpfMaps  # noqa: PLC0415
    from rezolus_agent.sampler import BpfSampler, BpfSpec, SamplerContext  # noqa: PLC0415
    from rezolus_agent.series import FrameBuilder, SeriesRegistry  # noqa: PLC0415
    from rezolus_core.config import Section  # noqa: PLC0415

    class Sampler(BpfSampler):
        name = "bench"
        bpf = BpfSpec(hooks=(), maps=("h",), metrics=(
            wiring.Histograms("h", wiring.each("lat", "ns", "d", "f", tuple(map(str, range(HISTS))))),))

    rng = np.random.default_rng(19)
    arr = np.zeros(cpus * wiring.hist_row(HISTS), dtype=np.uint64)
    per_cpu = arr.reshape(cpus, wiring.hist_row(HISTS))
    cells = per_cpu[:, : HISTS * 496].reshape(cpus, HISTS, 496)
    counts = per_cpu[:, HISTS * 496 : HISTS * 497]
    cells[:, :, :FILLED] = rng.integers(0, 100, (cpus, HISTS, FILLED), dtype=np.uint64)
    counts[:] = 1
    machine = wiring.platform.machine
    wiring.platform.machine = lambda: "x86_64" if trust else "untrusted"
    try:
        sampler = Sampler(SamplerContext(registry=SeriesRegistry("b", {}), options=Section({}, "b"), cpus=cpus))
        sampler.attach(BpfMaps(arrays={"h": arr}))
    finally:
        wiring.platform.machine = machine
    times = []
    for _ in range(frames):
        for hist in rng.choice(HISTS, changed, replace=False):
            cells[:, hist, rng.integers(0, FILLED)] += np.uint64(1)
            counts[:, hist] += np.uint64(1)
        out = FrameBuilder()
        start = time.thread_time_ns()
        sampler.sample(out)
        times.append(time.thread_time_ns() - start)
    times.sort()
    return times[len(times) // 2] / 1e3


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cpus", default="2,64,192")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(load_line())
    print("| CPUs | histograms changed | whole map summed (µs) | changed histograms summed (µs) | ratio |")
    print("|---|---|---|---|---|")
    for cpus in (int(c) for c in args.cpus.split(",")):
        for changed in (0, 5, HISTS):
            plain = min(median_us(cpus, changed, trust=False, frames=args.frames) for _ in range(args.rounds))
            counted = min(median_us(cpus, changed, trust=True, frames=args.frames) for _ in range(args.rounds))
            print(f"| {cpus} | {changed} of {HISTS} | {plain:.0f} | {counted:.0f} | {counted / plain:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
