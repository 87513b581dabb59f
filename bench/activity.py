"""Per-second cgroup reads of two versions of the agent under activity (imported by cgroup_bench.py).

"Active" cgroup, each round (one round before every timed read):
- v2 fixture tree (regular files): its ``cpu.stat`` user/usage time grows by
  1 ms and its ``memory.current`` moves by 1 MiB (up one round, back the
  next), in the cgroup and every ancestor, as the kernel's hierarchical
  accounting would show them.
- real v1 cgroups: a helper process enters the cgroup (its ``cgroup.procs``
  in the cpu, cpuacct and memory hierarchies), burns 0.2 ms of CPU and
  allocates and touches 1 MiB (one round) or frees it (the next), then
  returns to the root cgroups.  The helper is not the measured process.

Levels: 0 %, 10 % of the leaves in a tenth of the groups ("clustered"), 10 %
spread over every group (every 10th leaf), and 100 %.  The two versions each
run in a worker process (``--worker``) with the same sampler options; reads
alternate between them, each after its own round of activity.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HIER = Path("/sys/fs/cgroup")
ENTERED = ("cpu", "cpuacct", "memory")
PER_GROUP = 50
ANSWER = "=answer "


class RealTree:
    """``count`` real cgroups in the v1 cpu, cpuacct, memory and blkio hierarchies: top / g<j> / c<i>."""

    def __init__(self, count: int) -> None:
        self.top = f"rzbench-{uuid.uuid4().hex[:6]}"
        groups = max(1, count // PER_GROUP)
        self.leaves = [f"{self.top}/g{i % groups}/c{i}" for i in range(count - 1 - groups)]
        self.made: list[Path] = []
        for controller in (*ENTERED, "blkio"):
            top = HIER / controller / self.top
            top.mkdir()
            self.made.append(top)
            for j in range(groups):
                (top / f"g{j}").mkdir()
            for leaf in self.leaves:
                (HIER / controller / leaf).mkdir()

    def remove(self) -> None:
        """Remove every cgroup made, leaves first."""
        for top in self.made:
            for group in [p for p in top.iterdir() if p.is_dir()]:
                for leaf in [p for p in group.iterdir() if p.is_dir()]:
                    leaf.rmdir()
                group.rmdir()
            top.rmdir()


def real_tree(count: int) -> RealTree:
    """N cgroups in this machine's v1 hierarchies (root; removed by ``RealTree.remove``)."""
    return RealTree(count)


def fixture_leaves(root: Path) -> list[str]:
    """The unit cgroups of cgroup_bench's fixture tree, relative to its cgroup root."""
    hier = root / "sys/fs/cgroup"
    return sorted((p.relative_to(hier).as_posix() for p in hier.glob("*.slice/*.scope")),
                  key=lambda rel: int(rel.rsplit("-", 1)[1].split(".")[0]))


def levels(leaves: list[str]) -> dict[str, list[str]]:
    """Activity level → the leaves active at it."""
    groups: dict[str, list[str]] = {}
    for leaf in leaves:
        groups.setdefault(leaf.rsplit("/", 1)[0], []).append(leaf)
    clustered = [leaf for group in list(groups.values())[: max(1, len(groups) // 10)] for leaf in group]
    return {"0 %": [], f"10 % clustered ({len(clustered)} in {max(1, len(groups) // 10)} of {len(groups)} groups)":
            clustered, "10 % spread (every 10th)": leaves[::10], "100 %": leaves}


class FixtureActivity:
    """Hierarchical changes written into a fixture tree's files."""

    def __init__(self, root: Path) -> None:
        self.hier = root / "sys/fs/cgroup"
        self.up: set[str] = set()

    def round(self, active: list[str]) -> None:
        """One round: every active leaf and its ancestors move (see the module head)."""
        deltas: dict[str, list[int]] = {}
        for leaf in active:
            memory = -1 << 20 if leaf in self.up else 1 << 20
            self.up ^= {leaf}
            parts = leaf.split("/")
            for i in range(len(parts) + 1):
                at = deltas.setdefault("/".join(parts[:i]), [0, 0])
                at[0] += 1000
                at[1] += memory
        for rel, (cpu_us, memory) in deltas.items():
            directory = self.hier / rel
            stat = dict(line.split() for line in (directory / "cpu.stat").read_text().splitlines())
            for key in ("usage_usec", "user_usec"):
                stat[key] = str(int(stat[key]) + cpu_us)
            (directory / "cpu.stat").write_text("".join(f"{key} {value}\n" for key, value in stat.items()))
            current = directory / "memory.current"
            if rel:
                current.write_text(f"{int(current.read_text()) + memory}\n")

    def close(self) -> None:
        """Nothing to stop."""


class RealActivity:
    """A helper process made active in real cgroups (see the module head)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--helper"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def round(self, active: list[str]) -> None:
        """One round in every active cgroup; returns when the helper is back in the root cgroups."""
        stdin, stdout = self.proc.stdin, self.proc.stdout
        if stdin is None or stdout is None:
            raise RuntimeError("no pipes")
        stdin.write(" ".join(active) + "\n")
        stdin.flush()
        if stdout.readline().strip() != "ok":
            raise RuntimeError("activity helper failed")

    def close(self) -> None:
        """Stop the helper (it frees its memory on exit)."""
        if self.proc.stdin is None:
            raise RuntimeError("no pipes")
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def helper() -> None:
    """The active process of ``RealActivity``: one round per input line of cgroup paths."""
    pid = str(os.getpid()).encode()
    held: dict[str, bytearray] = {}
    for line in sys.stdin:
        for rel in line.split():
            for controller in ENTERED:
                (HIER / controller / rel / "cgroup.procs").write_bytes(pid)
            end = time.perf_counter() + 0.0002
            while time.perf_counter() < end:
                pass
            if held.pop(rel, None) is None:
                held[rel] = bytearray(b"\x01") * (1 << 20)
        for controller in ENTERED:
            (HIER / controller / "cgroup.procs").write_bytes(pid)
        sys.stdout.write("ok\n")
        sys.stdout.flush()


class Worker:
    """One version of the agent reading a tree in its own process (``--worker``)."""

    def __init__(self, src: Path | None, root: Path, cap: int) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker", str(src or ""), str(root), str(cap)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.origin = self._ask("origin")

    def _ask(self, command: str) -> str:
        stdin, stdout = self.proc.stdin, self.proc.stdout
        if stdin is None or stdout is None:
            raise RuntimeError("no pipes")
        stdin.write(command + "\n")
        stdin.flush()
        while True:  # the agent's log lines share stdout with the answers
            line = stdout.readline()
            if not line:
                raise RuntimeError(f"worker ended before answering {command}")
            if line.startswith(ANSWER):
                return line[len(ANSWER):].strip()

    def read(self, *, slow: bool) -> float:
        """CPU seconds of one read (per-second files, or every file with ``slow``)."""
        return float(self._ask("slow" if slow else "fast"))

    def walk(self) -> float:
        """CPU seconds of one walk of the reader's hierarchies for new cgroups."""
        return float(self._ask("walk"))

    def close(self) -> None:
        """Stop the worker."""
        if self.proc.stdin is None:
            raise RuntimeError("no pipes")
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def worker(src: str, root: Path, cap: int) -> None:
    """Serve timed reads of one agent version: ``fast``/``slow`` → CPU seconds, ``origin`` → its source."""
    if src:
        sys.path[:0] = [f"{src}/core/src", f"{src}/recording/src", f"{src}/services/agent/src"]
    from rezolus_agent import cgreader  # noqa: PLC0415 - after choosing the version's sources
    from rezolus_agent.cgroups import scan  # noqa: PLC0415
    from rezolus_agent.registry import available  # noqa: PLC0415
    from rezolus_agent.sampler import SamplerContext  # noqa: PLC0415
    from rezolus_agent.series import FrameBuilder, SeriesRegistry  # noqa: PLC0415
    from rezolus_core.config import Section  # noqa: PLC0415

    ctx = SamplerContext(SeriesRegistry("b" * 32, {}), Section({"max_cgroups": cap}, "bench"),
                         proc=root / "proc", sys=root / "sys")
    sampler = available()["cgroup_resources"](ctx)
    sampler.options()
    sampler.start()  # type: ignore[attr-defined]
    sampler.sample(FrameBuilder())
    for line in sys.stdin:
        command = line.strip()
        if command == "origin":
            answer = f"{cgreader.__file__} ({len(sampler._reader._cgroups)} cgroups)"  # type: ignore[attr-defined]  # noqa: SLF001
        elif command == "walk":
            start = time.process_time()
            for index in sampler._reader._indexes:  # type: ignore[attr-defined]  # noqa: SLF001
                scan(index.mount)
            answer = repr(time.process_time() - start)
        else:
            start = time.process_time()
            sampler._read(slow=command == "slow")  # type: ignore[attr-defined]  # noqa: SLF001
            answer = repr(time.process_time() - start)
        sys.stdout.write(f"{ANSWER}{answer}\n")
        sys.stdout.flush()
    sampler.close()  # type: ignore[attr-defined]


def extract(rev: str, into: Path) -> None:
    """The agent's sources at a git revision."""
    repo = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "-C", str(repo), "archive", rev, "core/src", "recording/src",
                              "services/agent/src"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)


def compare_activity(title: str, root: Path, *, made: RealTree | None, before: str, rounds: int,
                     cgroups: int) -> None:
    """Median per-second read of ``before`` and this checkout at each activity level, alternating; prints markdown."""
    src = Path(tempfile.mkdtemp(prefix="rzcg-before-"))
    extract(before, src)
    cap = cgroups + 256
    workers = {"before": Worker(src, root, cap), "after": Worker(None, root, cap)}
    activity = RealActivity() if made is not None else FixtureActivity(root)
    plan = levels(made.leaves if made is not None else fixture_leaves(root))
    times: dict[tuple[str, str], list[float]] = {}
    try:
        for r in range(rounds):
            order = list(workers.items()) if r % 2 == 0 else list(workers.items())[::-1]
            for name, active in plan.items():
                for _ in range(3):
                    for version, w in order:
                        activity.round(active)
                        times.setdefault((name, version), []).append(w.read(slow=False))
            for version, w in order:
                times.setdefault(("slow", version), []).append(w.read(slow=True))
                times.setdefault(("walk", version), []).append(w.walk())
    finally:
        activity.close()
        for w in workers.values():
            w.close()
        shutil.rmtree(src)
    med = {key: statistics.median(v) for key, v in times.items()}
    sys.stdout.write(f"\n### {title}: per-second reads under activity, `{before}` vs this checkout\n\n"
                     f"before: {workers['before'].origin}; after: {workers['after'].origin}\n\n"
                     "| active each second | before: per-second read (ms) | after (ms) | after / before |"
                     " before at the defaults (% of a core) | after at the defaults |\n|---|---|---|---|---|---|\n")
    for name in plan:
        b, a = med[(name, "before")], med[(name, "after")]
        at_b = 0.9 * b + 0.1 * (med[("slow", "before")] + med[("walk", "before")])
        at_a = 0.9 * a + 0.1 * (med[("slow", "after")] + med[("walk", "after")])
        sys.stdout.write(f"| {name} | {b * 1e3:.1f} | {a * 1e3:.1f} | {a / b:.2f} | {at_b * 100:.2f} |"
                         f" **{at_a * 100:.2f}** |\n")
    sys.stdout.write(f"\nEvery file (the slow read): before {med[('slow', 'before')] * 1e3:.1f} ms, after"
                     f" {med[('slow', 'after')] * 1e3:.1f} ms; walk for new cgroups: before"
                     f" {med[('walk', 'before')] * 1e3:.1f} ms, after {med[('walk', 'after')] * 1e3:.1f} ms."
                     " At the defaults = 0.9 x per-second read + 0.1 x (every file + walk).\n")


def main(argv: list[str]) -> None:
    """Entry of the helper and worker processes."""
    if argv[1] == "--helper":
        helper()
    elif argv[1] == "--worker":
        worker(argv[2], Path(argv[3]), int(argv[4]))


if __name__ == "__main__":
    main(sys.argv)
