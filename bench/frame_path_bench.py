"""The agent's frame path on big hosts, with synthetic map contents, and the live agent's CPU per interval.

    .venv/bin/python bench/frame_path_bench.py synthetic [-q] [--frames 30] [--stride 100] [--fresh 25000]
    .venv/bin/python bench/frame_path_bench.py live [-q] [--seconds 20] [--intervals 10ms,100ms,1s]
    .venv/bin/python bench/frame_path_bench.py start [-q] [--runs 5] [--seconds 20]

Run it once with this tree's code and once with another tree's (``--tree
DIR``: a checkout, e.g. ``git archive main | tar -x -C /tmp/before``; its
``core/src`` and ``services/agent/src`` come first on ``sys.path`` and in the
agent's ``PYTHONPATH``), in the same session, to put before and after side by
side.

synthetic: every BPF sampler's declared wiring over map arrays of 2, 64 and
192 CPUs (counters and histograms filled with seeded random counts; every
``--stride``-th cell of every map grows each frame, by default enough that
every histogram changes every frame, and every histogram's per-CPU event
count moves, so every histogram is summed every frame; and one random cell
in ``--fresh`` of every histogram map grows, mostly an empty one, so some
histograms gain a bucket every frame), the kernel-filled slot tables of every
``CgroupTable`` wiring (``cgroup_table.CgroupRows``) with 0, 500 and 2,000
owned slots (names known, no rescan between frames), ``cpu_usage`` on a
/proc/stat of that many CPUs and the other procfs samplers on this host's
/proc; then the frame is built and encoded.  Prints per-frame CPU time (process time of the
frame alone, not of the writes that stand for the kernel's, median of rounds), frame size, and a
least-squares fit cost = a + b·cpus + c·cgroups.

live: ``rezolus-agent`` with every sampler (``config/agent.toml``) at each
interval; CPU from ``/proc/PID/stat`` over the window after a warm-up.

start: ``rezolus-agent`` with every sampler at 1 s, time from spawning it to
the first frame (received, and sampled by the agent's own clock), the CPU
time it and its (reaped) compiler process used until then (less sensitive
to a loaded host than the wall time), and its RSS ``--seconds`` after that
frame.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import IO

import numpy as np
from _common import cpu_seconds, free_endpoint, load_line, rss_mib

ROOT = Path(__file__).resolve().parent.parent


def use_tree(tree: Path | None) -> dict[str, str]:
    """Put another tree's code first on sys.path; the environment for a child agent."""
    env = dict(os.environ)
    if tree is not None:
        paths = [str(tree / "core/src"), str(tree / "services/agent/src")]
        sys.path[:0] = paths
        env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def fake_stat(root: Path, cpus: int) -> None:
    lines = ["cpu  1 2 3 4 5 6 7 8 0 0"]
    lines += [f"cpu{i} {100 + i} 2 {300 + i} 40000 5 6 7 8 0 0" for i in range(cpus)]
    lines += ["intr 1", "ctxt 1", "btime 1", "processes 1", "procs_running 1", "procs_blocked 0"]
    (root / "stat").write_text("\n".join(lines) + "\n")


class _Index:
    """A cgroup index that does not rescan (as between the agent's rescans)."""

    def __init__(self, paths: dict[int, str]) -> None:
        self.paths = paths
        self.min_refresh_s = 1.0

    def refresh(self) -> dict[int, str]:
        return self.paths


def _cgroup_rows(wired, sampler, rng: np.random.Generator, paths: dict[int, str], extra: dict) -> tuple:  # noqa: ANN001
    """A ``CgroupRows`` over synthetic slot tables with ``len(paths)`` owned slots; its arrays."""
    from rezolus_agent import cgroup_table  # noqa: PLC0415 - after --tree chose the code
    from rezolus_agent.bpfload import BpfMaps  # noqa: PLC0415 - after --tree chose the code
    from rezolus_agent.cgroups import CgroupLabeler  # noqa: PLC0415 - after --tree chose the code
    from rezolus_core.histogram import layout  # noqa: PLC0415 - after --tree chose the code

    capacity = sampler.sizes["max_cgroups"]
    cpus = sampler.ctx.cpus if wired.per_cpu else 1
    owners = np.zeros((capacity + 1, 2), dtype=np.uint64)
    owners[: len(paths), 0] = list(paths)
    rows = rng.integers(0, 1 << 20, cpus * (capacity + 1) * wired.width, dtype=np.uint64)
    arrays = {f"{wired.prefix}_cgroup_owner": owners.ravel(), wired.map: rows}
    if wired.hist_map:
        coarse = layout(cgroup_table.CGROUP_HIST_GROUPING_POWER).buckets
        hist = np.zeros((capacity + 1) * len(wired.hist_series) * coarse, dtype=np.uint64)
        hot = rng.integers(0, hist.size, hist.size // 20)
        hist[hot] = rng.integers(1, 1000, hot.size, dtype=np.uint64)
        arrays[wired.hist_map] = hist
    namer = extra.setdefault("bench_namer", cgroup_table.Namer(
        _Index(paths), CgroupLabeler(docker_socket=Path("/nonexistent")), -1))  # type: ignore[arg-type]
    maps = BpfMaps(arrays=arrays, fds={f"{wired.prefix}_cgroup_slot": -1, f"{wired.prefix}_cgroup_free": -1})
    emitter = cgroup_table.CgroupRows(
        sampler=sampler, maps=maps, prefix=wired.prefix, namer=namer,
        counters=(wired.map, wired.width, wired.series),
        histograms=(wired.hist_map, wired.hist_series) if wired.hist_map else None, per_cpu=wired.per_cpu)
    kept = [a for name, a in arrays.items() if not name.endswith("_owner")]
    return emitter, kept, arrays[wired.hist_map] if wired.hist_map else None


def synthetic(  # noqa: C901, PLR0912, PLR0915 - one setup
    frames: int, rounds: int, stride: int, sizes: tuple[list[int], list[int]], *, fresh: int, profile: str = ""
) -> list[tuple[int, int, float, int]]:
    from rezolus_agent import registry as sampler_registry  # noqa: PLC0415 - after --tree chose the code
    from rezolus_agent import wiring  # noqa: PLC0415 - after --tree chose the code
    from rezolus_agent.bpfload import BpfMaps  # noqa: PLC0415 - after --tree chose the code
    from rezolus_agent.sampler import BpfSampler, SamplerContext  # noqa: PLC0415 - after --tree chose the code
    from rezolus_agent.series import FrameBuilder, SeriesRegistry  # noqa: PLC0415 - after --tree chose the code
    from rezolus_core.config import Section  # noqa: PLC0415 - after --tree chose the code
    from rezolus_core.frame import encode_frame  # noqa: PLC0415 - after --tree chose the code

    proc_names = ("cpu_usage", "cpu_cores", "memory_meminfo", "memory_vmstat", "network_traffic",
                  "network_interfaces", "pressure", "rezolus_rusage")
    available = sampler_registry.available()
    results = []
    for cpus in sizes[0]:
        for ncg in sizes[1]:
            rng = np.random.default_rng(cpus * 10_000 + ncg)
            reg = SeriesRegistry("bench", {})
            proc_root = Path(tempfile.mkdtemp())
            fake_stat(proc_root, cpus)
            arrays: list[np.ndarray] = []
            events: list[np.ndarray] = []
            hist_maps: list[np.ndarray] = []
            emitters = []
            paths = {1000 + i: f"/system.slice/svc-{i}.service" for i in range(ncg)}
            extra: dict[str, object] = {}
            for name, cls in sorted(available.items()):
                if not issubclass(cls, BpfSampler):
                    continue
                opts = {"max_cgroups": max(1024, ncg)} if any(s.key == "max_cgroups" for s in cls.bpf.sizes) else {}
                ctx = SamplerContext(registry=reg, options=Section(opts, "bench", f"samplers.{name}."), cpus=cpus,
                                     extra=extra)
                sampler = cls(ctx)
                sampler.options()
                for wired in cls.bpf.metrics:
                    if isinstance(wired, wiring.Counters):
                        width = -(-len(wired.series) // 8) * 8
                        arr = rng.integers(0, 1 << 20, cpus * width, dtype=np.uint64)
                        emitters.append(wired.bind(sampler, BpfMaps(arrays={wired.map: arr})))
                        arrays.append(arr)
                    elif isinstance(wired, wiring.Histograms):
                        row = getattr(wiring, "hist_row", lambda n: n * 496)(len(wired.series))
                        arr = np.zeros(cpus * row, dtype=np.uint64)
                        hot = rng.integers(0, arr.size, arr.size // 20)
                        arr[hot] = rng.integers(1, 1000, hot.size, dtype=np.uint64)
                        emitters.append(wired.bind(sampler, BpfMaps(arrays={wired.map: arr})))
                        arrays.append(arr)
                        hist_maps.append(arr)
                        if hasattr(wiring, "hist_row"):
                            first = len(wired.series) * 496
                            events.append(arr.reshape(cpus, row)[:, first : first + len(wired.series)])
                    elif isinstance(wired, wiring.CgroupTable):
                        emitter, cg_arrays, cg_hist = _cgroup_rows(wired, sampler, rng, paths, extra)
                        hist_maps += [] if cg_hist is None else [cg_hist]
                        emitters.append(emitter)
                        arrays += cg_arrays
            procs = []
            for name in proc_names:
                root = proc_root if name == "cpu_usage" else Path("/proc")
                ctx = SamplerContext(registry=reg, options=Section({}, "bench", f"samplers.{name}."), proc=root,
                                     cpus=cpus, extra=extra)
                sampler = available[name](ctx)
                sampler.options()
                sampler.start()
                procs.append(sampler)
            seq = 0

            def kernel(arrays: list[np.ndarray] = arrays, events: list = events, hists: list = hist_maps,
                       rng: np.random.Generator = rng) -> None:
                for arr in arrays:
                    arr[::stride] += np.uint64(1)
                for arr in hists:
                    arr[rng.integers(0, arr.size, max(1, arr.size // fresh))] += np.uint64(1)
                for counts in events:
                    np.add(counts, np.uint64(1), out=counts)

            def frame(procs: list = procs, emitters: list = emitters, reg: SeriesRegistry = reg) -> bytes:
                nonlocal seq
                seq += 1
                out = FrameBuilder()
                for sampler in procs:
                    out.mark()
                    sampler.sample(out)
                for emitter in emitters:
                    out.mark()
                    emitter.emit(out)
                built = out.build(registry=reg, seq=seq, timestamp_ns=seq, monotonic_ns=seq, interval_ns=1,
                                  host="bench")
                return encode_frame(built)

            kernel()
            size = len(frame())
            if profile:
                import cProfile  # noqa: PLC0415 - only when asked
                import pstats  # noqa: PLC0415 - only when asked

                with cProfile.Profile() as prof:
                    for _ in range(frames):
                        prof.disable()
                        kernel()
                        prof.enable()
                        frame()
                pstats.Stats(prof, stream=sys.stderr).sort_stats(profile).print_stats(25)
            per = []
            for _ in range(rounds):
                spent = 0.0
                for _ in range(frames):
                    kernel()
                    t0 = time.process_time()
                    frame()
                    spent += time.process_time() - t0
                per.append(spent / frames)
            for sampler in procs:
                sampler.close()
            results.append((cpus, ncg, statistics.median(per), size))
            print(f"  {cpus} CPUs, {ncg} cgroups: {statistics.median(per) * 1e3:.2f} ms, {size} bytes",
                  file=sys.stderr)
    return results


def report_synthetic(results: list[tuple[int, int, float, int]]) -> None:
    print("| CPUs | cgroups | ms per frame | frame bytes | % of a core at 1 s | at 100 ms |")
    print("|---|---|---|---|---|---|")
    for cpus, ncg, cost, size in results:
        print(f"| {cpus} | {ncg} | {cost * 1e3:.2f} | {size} | {cost * 100:.2f} | {cost * 1000:.1f} |")
    a = np.array([[1.0, c, g] for c, g, _, _ in results])
    y = np.array([cost for _, _, cost, _ in results])
    (base, per_cpu, per_cg), *_ = np.linalg.lstsq(a, y, rcond=None)
    print(f"\nFit: {base * 1e6:.0f} µs + {per_cpu * 1e6:.2f} µs per CPU + {per_cg * 1e6:.3f} µs per cgroup")


def live(intervals: list[str], seconds: float, env: dict[str, str], tree: Path) -> None:
    """CPU per interval, and per frame published (a loaded host makes a fast agent skip ticks)."""
    from rezolus_core.bus import ZmqSubscriber  # noqa: PLC0415 - after --tree chose the code

    print("| interval | agent CPU (% of one core) | frames published / ticks | ms of CPU per frame |")
    print("|---|---|---|---|")
    for interval in intervals:
        endpoint = free_endpoint()
        cmd = [sys.executable, "-m", "rezolus_agent.main", "--config", str(tree / "config/agent.toml"),
               "--listen", endpoint, "--interval", interval]
        logs = tempfile.TemporaryFile()  # noqa: SIM115 - closed after the run
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=logs)
        sub = ZmqSubscriber(endpoint)
        deadline = time.monotonic() + 60
        while not sub.poll(0.5) and time.monotonic() < deadline:
            pass
        seqs: list[int] = []
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        while time.monotonic() - t0 < seconds:
            seqs += [d.frame.seq for d in sub.poll(0.5)]
        cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
        sub.close()
        proc.terminate()
        proc.wait(timeout=30)
        cpu = cpu1 - cpu0
        ticks = max(seqs) - min(seqs) + 1 if seqs else 0
        per = f"{1e3 * cpu / len(seqs):.2f}" if seqs else "-"
        print(f"| {interval} | {100 * cpu / (t1 - t0):.2f} | {len(seqs)} / {ticks} | {per} |")


def _ready_s(logs: IO[bytes], started_ns: int) -> float:
    """Seconds from ``started_ns`` to the agent's ``agent ready`` log line (closes ``logs``)."""
    with logs:
        logs.seek(0)
        for line in logs:
            entry = json.loads(line)
            if entry.get("event") == "agent ready":
                stamp = datetime.fromisoformat(entry["timestamp"])
                return (stamp.timestamp() * 1e9 - started_ns) / 1e9
    raise RuntimeError("the agent logged no 'agent ready'")


def start(runs: int, settle: float, env: dict[str, str], tree: Path) -> None:
    """Start to first frame (every sampler, 1 s interval) and RSS ``settle`` seconds after it.

    "received" is when this subscriber got its first frame; it connects before
    the agent binds, and ZeroMQ's reconnect backoff (100 ms doubling to 2 s)
    can make it join after the first frame and receive the second one.
    "sampled" is the agent's own timestamp of its first frame (seq 1) less the
    spawn time: a frame of seq k > 1 stands for the tick k - 1 intervals
    earlier (seq counts every tick of the grid).  "ready" is the timestamp of
    the agent's ``agent ready`` log line (samplers started, bus bound) less
    the spawn time: the first frame is sampled at the first tick of the 1 s
    grid after it.
    """
    from rezolus_core.bus import ZmqSubscriber  # noqa: PLC0415 - after --tree chose the code

    interval_ns = 1_000_000_000
    print("| run | ready (s) | start to first frame received (s) | first frame sampled (s) | seq received first "
          "| CPU until then, agent + compiler (s) | steady RSS (MB) | load average |")
    print("|---|---|---|---|---|---|---|---|")
    for run in range(runs):
        endpoint = free_endpoint()
        cmd = [sys.executable, "-m", "rezolus_agent.main", "--config", str(tree / "config/agent.toml"),
               "--listen", endpoint, "--interval", "1s"]
        started, started_ns = time.monotonic(), time.time_ns()
        logs = tempfile.TemporaryFile()  # noqa: SIM115 - closed after the run
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=logs)
        sub = ZmqSubscriber(endpoint)
        while not (got := sub.poll(0.02)):
            if time.monotonic() - started > 120:
                raise RuntimeError("no frame in 120 s")
        first = time.monotonic() - started
        frame = got[0].frame
        sampled = (frame.timestamp_ns - (frame.seq - 1) * interval_ns - started_ns) / 1e9
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline:
            sub.poll(0.5)
        rss = rss_mib(proc.pid)
        sub.close()
        proc.terminate()
        proc.wait(timeout=30)
        ready = _ready_s(logs, started_ns)
        print(f"| {run + 1} | {ready:.2f} | {first:.2f} | {sampled:.2f} | {frame.seq} | {cpu:.2f} | {rss:.1f} "
              f"| {os.getloadavg()[0]:.1f} |")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("synthetic", "live", "start"))
    parser.add_argument("--runs", type=int, default=5, help="start: agent starts")
    parser.add_argument("--tree", type=Path, help="run another checkout's agent code")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--stride", type=int, default=100,
                        help="synthetic: every STRIDE-th cell of every map grows each frame (100: every histogram "
                             "row changes, the worst case for reusing unchanged rows)")
    parser.add_argument("--fresh", type=int, default=25_000,
                        help="synthetic: one random cell per FRESH cells of every histogram map grows each frame "
                             "(mostly an empty one: a new bucket)")
    parser.add_argument("--cpus", type=lambda v: [int(x) for x in v.split(",")], default=[2, 64, 192])
    parser.add_argument("--cgroups", type=lambda v: [int(x) for x in v.split(",")], default=[0, 500, 2000])
    parser.add_argument("--profile", nargs="?", const="tottime", default="",
                        help="synthetic: cProfile the frames (top 25, by own time or by the pstats key given)")
    parser.add_argument("-q", "--quick", action="store_true", help="fewer frames and rounds, shorter live windows")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--intervals", default="10ms,100ms,1s")
    args = parser.parse_args()
    if args.quick:
        args.frames, args.rounds, args.seconds, args.runs = 10, 3, 10.0, 3
    env = use_tree(args.tree)
    print(f"code: {args.tree or ROOT}; {load_line()}\n")
    if args.mode == "synthetic":
        sizes = (args.cpus, args.cgroups)
        report_synthetic(synthetic(args.frames, args.rounds, args.stride, sizes, fresh=args.fresh,
                                   profile=args.profile))
    elif args.mode == "live":
        live(args.intervals.split(","), args.seconds, env, args.tree or ROOT)
    else:
        start(args.runs, args.seconds, env, args.tree or ROOT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
