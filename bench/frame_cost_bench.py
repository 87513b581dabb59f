"""CPU of one agent frame in-process: back to back, after a short and after a full-interval sleep, and the tick loop.

    sudo .venv/bin/python bench/frame_cost_bench.py [--tree DIR] [--frames 500] [--interval 10ms]
        [--per-sampler] [--reference]

Starts the agent (``config/agent.toml``, every sampler, publishing to a
loopback port nobody reads) inside this process and measures the sampling
thread's CPU time (``time.thread_time_ns``) of ``Agent.sample_once``:

- back to back (caches warm: the cost of the instructions alone),
- after a 1 ms sleep, and after a sleep of one interval (what the agent
  does: its code and data have left the caches, so the same work costs more);
- then ``Agent.run`` for ``--seconds``: thread CPU per frame with the tick
  loop's own cost, and the part of it inside ``sample_once``.

``--reference`` also times a fixed workload that is not the agent's (numpy
sums over a 2-CPU map's shape, a msgpack encoding, a few hundred small Python
objects), the same three ways and in the same minutes: how much a sleep of
one interval inflates any such code on this machine, so the agent's own
inflation can be told apart from the machine's.

Run it with ``--tree`` (another checkout's ``core/src`` and
``services/agent/src`` first on ``sys.path``) and without, alternately, to
compare two trees under the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

from _common import load_line

ROOT = Path(__file__).resolve().parent.parent


class Reference:
    """A fixed workload of the agent's kind (numpy, msgpack, small Python objects), not the agent's code."""

    def __init__(self) -> None:
        import msgpack  # noqa: PLC0415 - only with --reference
        import numpy as np  # noqa: PLC0415 - only with --reference

        rng = np.random.default_rng(7)
        self._maps = [rng.integers(0, 1 << 40, (2, n), dtype=np.uint64) for n in (64, 496, 2048, 24, 160)]
        self._labels = [{"name": f"series{i}", "id": str(i % 2), "state": "user"} for i in range(300)]
        self._np, self._packb = np, msgpack.packb

    def sample_once(self) -> None:
        """One run of the workload."""
        np = self._np
        sums = [m.sum(axis=0) for m in self._maps]
        nonzero = [np.flatnonzero(s) for s in sums]
        keys = sorted((d["name"], d["id"]) for d in self._labels if d["state"] == "user")
        self._packb({"k": "f", "v": [s.tobytes() for s in sums], "n": [z.size for z in nonzero], "l": keys[:50]})


def per_frame(agent, frames: int, sleep_s: float) -> tuple[float, float]:  # noqa: ANN001 - code chosen by --tree
    """Median and mean thread CPU (µs) of ``sample_once``, sleeping ``sleep_s`` between frames."""
    times = []
    for _ in range(frames):
        start = time.thread_time_ns()
        agent.sample_once()
        times.append(time.thread_time_ns() - start)
        if sleep_s:
            time.sleep(sleep_s)
    times.sort()
    return times[len(times) // 2] / 1e3, sum(times) / len(times) / 1e3


def per_sampler(agent, frames: int, sleep_s: float) -> list[tuple[str, float]]:  # noqa: ANN001 - code chosen by --tree
    """Median thread CPU (µs) of each sampler's ``sample`` and of publishing, sleeping ``sleep_s`` between frames."""
    times: dict[str, list[int]] = {}

    def timed(name: str, call):  # noqa: ANN001, ANN202 - wraps any callable
        def inner(*args: object) -> object:
            start = time.thread_time_ns()
            try:
                return call(*args)
            finally:
                times.setdefault(name, []).append(time.thread_time_ns() - start)
        return inner

    for sampler in agent.running:
        sampler.sample = timed(sampler.name, sampler.sample)
    publish = agent.publisher.publish_frame
    agent.publisher.publish_frame = timed("publish", publish)
    per_frame(agent, frames, sleep_s)
    for sampler in agent.running:
        del sampler.sample
    agent.publisher.publish_frame = publish
    return sorted(((name, sorted(t)[len(t) // 2] / 1e3) for name, t in times.items()), key=lambda x: -x[1])


async def loop_cost(agent, seconds: float) -> tuple[int, float, float]:  # noqa: ANN001 - code chosen by --tree
    """Frames, thread CPU (µs) per frame of ``Agent.run``, and the part inside ``sample_once``."""
    inner = 0
    sample = agent.sample_once

    def timed() -> None:
        nonlocal inner
        start = time.thread_time_ns()
        sample()
        inner += time.thread_time_ns() - start

    agent.sample_once = timed
    stopping = asyncio.Event()
    task = asyncio.create_task(agent.run(stopping))
    await asyncio.sleep(1.0)
    inner, seq, start = 0, agent.seq, time.thread_time_ns()
    await asyncio.sleep(seconds)
    total, frames = time.thread_time_ns() - start, agent.seq - seq
    stopping.set()
    await task
    agent.sample_once = sample
    return frames, total / frames / 1e3, inner / frames / 1e3


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", type=Path, help="run another checkout's agent code")
    parser.add_argument("--frames", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--interval", default="10ms")
    parser.add_argument("--per-sampler", action="store_true", help="also each sampler's median thread CPU per frame")
    parser.add_argument("--reference", action="store_true", help="also a fixed non-agent workload, the same three ways")
    args = parser.parse_args()
    tree = args.tree or ROOT
    if args.tree is not None:
        sys.path[:0] = [str(tree / "core/src"), str(tree / "services/agent/src")]
    from rezolus_agent import config as agent_config  # noqa: PLC0415 - after --tree chose the code
    from rezolus_agent.agent import Agent  # noqa: PLC0415 - after --tree chose the code
    from rezolus_agent.registry import available  # noqa: PLC0415 - after --tree chose the code
    from rezolus_core import log  # noqa: PLC0415 - after --tree chose the code

    log.configure("frame_cost_bench", "error")
    samplers = available()
    cfg = agent_config.load(tree / "config/agent.toml", samplers, listen="tcp://127.0.0.1:0", interval_ns=args.interval)
    agent = Agent(cfg, samplers)

    async def run() -> None:
        await agent.startup()
        interval_s = cfg.interval_ns / 1e9
        per_frame(agent, 20, interval_s)
        print(f"code: {tree}; {load_line()}; {len(agent.running)} samplers, pid {os.getpid()}")
        reference = Reference() if args.reference else None
        for label, sleep_s in (("back to back", 0.0), ("after 1 ms", 0.001), (f"after {args.interval}", interval_s)):
            median, mean = per_frame(agent, args.frames, sleep_s)
            print(f"sample_once {label}: median {median:.0f} µs, mean {mean:.0f} µs of thread CPU")
            if reference is not None:
                ref_median, ref_mean = per_frame(reference, args.frames, sleep_s)
                print(f"reference {label}: median {ref_median:.0f} µs, mean {ref_mean:.0f} µs of thread CPU")
        if args.per_sampler:
            costs = per_sampler(agent, args.frames, interval_s)
            print(f"per sampler after {args.interval} (median µs): " + ", ".join(f"{n} {c:.0f}" for n, c in costs))
        frames, total, inner = await loop_cost(agent, args.seconds)
        print(f"Agent.run at {args.interval}: {frames} frames, {total:.0f} µs per frame "
              f"({inner:.0f} in sample_once, {total - inner:.0f} in the tick loop)")
        await agent.shutdown()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
