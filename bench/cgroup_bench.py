"""cgroup_resources cost with many cgroups, measured side by side in one run.

    .venv/bin/python bench/cgroup_bench.py [--cgroups 1000] [--rounds 5] [--real] [--before main]

Trees: a pure-v2 fixture tree of N cgroups generated in a temp dir (every
file of tests/support/cgroup_trees.py's v2 layout; 50 units per slice), and
with ``--real`` N cgroups created in this machine's v1 cpu, cpuacct, memory
and blkio hierarchies (root; top / 20 groups / leaves; removed afterwards),
where the kernel generates every file.
Conditions per tree, interleaved round by round (medians of CPU time of this
process): the sampler reading every file (a slow read, every
``slow_interval``); the sampler's per-second read of the idle tree (the reads
in between; activity-pruned, see below); the sampler at a 100 ms agent
interval with its own 1 s cadence (10 frames, one read); a reference reader
that opens, reads and closes the same files without parsing (the naive way);
and preads of already open files without parsing (the floor for any Python
reader).

Activity (issue #14): the per-second read of ``--before`` (a git revision,
extracted to a temp dir) and of this checkout, each in its own worker
process, alternately, after a fresh round of activity before every read, with
0 %, 10 % and 100 % of the leaf cgroups active (``activity.py`` says what
"active" does on each tree).  Prints markdown for
docs/performance-history.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _common import load_line
from activity import compare_activity, real_tree

from rezolus_agent import cgreader
from rezolus_agent.cgroups import scan
from rezolus_agent.registry import available
from rezolus_agent.sampler import SamplerContext
from rezolus_agent.series import FrameBuilder, SeriesRegistry
from rezolus_core.config import Section
from support.cgroup_trees import v2_cgroup

HIER = Path("/sys/fs/cgroup")


def fixture_tree(root: Path, count: int) -> None:
    """N v2 cgroups, 50 per parent slice (whose files exist too), as a systemd host with many pods would have."""
    v2_cgroup(root / "sys/fs/cgroup", 1, root=True)
    for i in range(count - 1):
        if i % 50 == 0:
            v2_cgroup(root / f"sys/fs/cgroup/group-{i // 50}.slice", count + i)
        v2_cgroup(root / f"sys/fs/cgroup/group-{i // 50}.slice/unit-{i}.scope", i + 2)
    (root / "proc/pressure").mkdir(parents=True)
    for res in ("cpu", "memory", "io"):
        (root / "proc/pressure" / res).write_text("some avg10=0.00 avg60=0.00 avg300=0.00 total=1\n")


def sampler_for(root: Path, count: int) -> tuple[object, SeriesRegistry]:
    """A started cgroup_resources sampler of the tree at ``root`` reading up to ``count`` cgroups."""
    registry = SeriesRegistry("b" * 32, {})
    ctx = SamplerContext(registry, Section({"max_cgroups": count}, "bench"), proc=root / "proc", sys=root / "sys")
    sampler = available()["cgroup_resources"](ctx)
    sampler.options()
    sampler.start()
    return sampler, registry


def cpu_per_call(fn, calls: int) -> float:  # noqa: ANN001 - any callable
    start = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - start) / calls


def measure(root: Path, rounds: int, count: int) -> dict[str, float]:
    """Median CPU seconds per call of each condition, plus the tree's sizes."""
    sampler, _ = sampler_for(root, count)
    try:
        return _measure(sampler, rounds)
    finally:
        sampler.close()  # type: ignore[attr-defined]


def _measure(sampler, rounds: int) -> dict[str, float]:  # noqa: ANN001, C901 - the sampler; one closure per condition
    clock = {"now": 0, "step": 10**10}

    def tick() -> int:
        clock["now"] += clock["step"]
        return clock["now"]

    sampler.clock = tick
    sampler.sample(FrameBuilder())  # opens files, registers series
    reader = sampler._reader  # noqa: SLF001
    cgroups = list(reader._cgroups.values())  # noqa: SLF001
    files = [path for c in cgroups for _, _, path, _ in c.files]
    fds = [fd for c in cgroups for fd, _, _, _ in c.files if fd >= 0]
    mounts = [index.mount for index in reader._indexes]  # noqa: SLF001

    def naive() -> None:
        for path in files:
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:  # another user's cgroup went away
                continue
            os.read(fd, 4096)
            os.close(fd)

    def floor() -> None:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.pread(fd, 4096, 0)

    def read_every_frame() -> None:
        clock["step"] = 10**10
        sampler.sample(FrameBuilder())

    def read_fast_files() -> None:
        sampler._read(slow=False)  # noqa: SLF001 - the per-second read between slow reads

    def cadence_1s_at_100ms() -> None:
        clock["step"] = 100_000_000
        for _ in range(10):
            sampler.sample(FrameBuilder())

    def walk() -> None:
        for mount in mounts:
            scan(mount)

    conditions = {"sampler read": read_every_frame, "sampler read, per-second files": read_fast_files,
                  "10 frames, 1 read": cadence_1s_at_100ms,
                  "naive open/read/close": naive, "pread floor": floor, "walk": walk}
    results: dict[str, list[float]] = {name: [] for name in conditions}
    for _ in range(rounds):
        for name, fn in conditions.items():
            results[name].append(cpu_per_call(fn, 3))
    out = {name: statistics.median(v) for name, v in results.items()}
    out |= {"files": len(files), "cgroups": len(cgroups), "held": len(fds), "hierarchies": len(mounts)}
    return out


def report(title: str, r: dict[str, float]) -> None:
    read = r["sampler read"]
    sizes = f"{int(r['cgroups'])} cgroups, {int(r['files'])} files ({int(r['held'])} held open)"
    sys.stdout.write(f"\n### {title}: {sizes}\n\n")
    sys.stdout.write("| condition | CPU per read (ms) | % of a core at 1 s | at 100 ms | vs naive reader |\n")
    sys.stdout.write("|---|---|---|---|---|\n")
    for name in ("sampler read", "sampler read, per-second files", "naive open/read/close", "pread floor"):
        v = r[name]
        sys.stdout.write(f"| {name} | {v * 1e3:.1f} | {v * 100:.2f} | {v * 1000:.1f} |"
                         f" {v / r['naive open/read/close']:.2f}x |\n")
    ten = r["10 frames, 1 read"]
    sys.stdout.write(f"| sampler, interval 1s, agent at 100 ms (10 frames) | {ten * 1e3:.1f} | {ten * 100:.2f}"
                     f" | (same: one read per second) | {ten / r['naive open/read/close']:.2f}x |\n")
    walk = r["walk"]
    sys.stdout.write(f"| walk of the {int(r['hierarchies'])} hierarchies for new cgroups | {walk * 1e3:.1f} |"
                     f" {walk * 100:.2f} (every 1 s), {walk * 10:.2f} (every 10 s, the default) | | |\n")
    fast = r["sampler read, per-second files"]
    default = 0.9 * fast + 0.1 * read + walk / 10
    sys.stdout.write(f"\nAt the defaults (per-second files every 1 s, every file every 10 s, walk every 10 s): "
                     f"**{default * 100:.2f} % of a core**; reading every file every second: "
                     f"{(read + walk / 10) * 100:.2f} %. Parsing and series work over the pread floor (every file): "
                     f"{read / r['pread floor']:.1f}x.\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cgroups", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--real", action="store_true", help="also create N real v1 cgroups (root)")
    parser.add_argument("--before", default="main", help="git revision compared with this checkout (activity)")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    sys.stdout.write(f"open-file limit {soft}/{hard}; CPUs {os.cpu_count()}\n")
    sys.stdout.write(f"at start: {load_line()}\n")
    tmp = Path(tempfile.mkdtemp(prefix="rzcg-"))
    try:
        fixture_tree(tmp, args.cgroups)
        fixture = measure(tmp, args.rounds, args.cgroups)
        report("v2 fixture tree (regular files)", fixture)
        compare_activity("v2 fixture tree", tmp, made=None, before=args.before, rounds=args.rounds,
                         cgroups=int(fixture["cgroups"]))
    finally:
        shutil.rmtree(tmp)
    if args.real:
        made = real_tree(args.cgroups)
        try:
            layout = cgreader.discover(HIER)
            sys.stdout.write(f"\nreal layout: v2 at {layout.v2}, v1 {sorted(layout.v1)}\n")
            real = measure(Path("/"), args.rounds, args.cgroups)
            report("real v1 cgroups (kernel-generated files)", real)
            compare_activity("real v1 cgroups", Path("/"), made=made, before=args.before, rounds=args.rounds,
                             cgroups=int(real["cgroups"]))
        finally:
            made.remove()
    sys.stdout.write(f"at end: {load_line()}\n")


if __name__ == "__main__":
    main()
