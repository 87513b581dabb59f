"""Activity-pruned per-second cgroup reads on fixture trees whose values are kept hierarchical, as the kernel's are.

A parent's CPU time and memory in use include its descendants', so every
change below a cgroup moves it too; ``bump`` writes such a change.  Reads are
counted by wrapping ``os.pread``.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from pathlib import Path

import pytest

from rezolus_agent import cgfiles, cgreader
from support.cgroup_trees import v1_cgroup, v2_cgroup
from support.sampling import frame, k, start, strip_identity

TREE = ("/a", "/a/b", "/a/b/c", "/a/b/d", "/x", "/x/y", "/x/y/z")


def v2_tree(tmp_path: Path) -> Path:
    """The root and ``TREE`` with n-derived values (see tests/support/cgroup_trees.py)."""
    hier = tmp_path / "sys/fs/cgroup"
    v2_cgroup(hier, 1, root=True)
    for n, path in enumerate(TREE, start=2):
        v2_cgroup(hier / path.lstrip("/"), n)
    return hier


def ancestors(path: str) -> list[str]:
    """The path and every ancestor up to the root."""
    parts = path.strip("/").split("/") if path != "/" else []
    return ["/" + "/".join(parts[:i]) for i in range(len(parts), -1, -1)]


def bump(hier: Path, path: str, *, cpu_us: int = 0, memory: int = 0) -> None:
    """Charge CPU time and memory to a v2 cgroup and all its ancestors, as the kernel does."""
    for at in ancestors(path):
        directory = hier / at.lstrip("/")
        stat = cgfiles.flat((directory / "cpu.stat").read_bytes())
        stat[b"user_usec"] += cpu_us
        stat[b"usage_usec"] += cpu_us
        (directory / "cpu.stat").write_bytes(b"".join(b"%s %d\n" % kv for kv in stat.items()))
        current = directory / "memory.current"
        if at != "/":
            current.write_text(f"{int(current.read_text()) + memory}\n")


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every pread of the reader, counted by the file's path."""
    seen: Counter[str] = Counter()
    real = os.pread

    def counting(fd: int, n: int, offset: int) -> bytes:
        seen[str(Path(f"/proc/self/fd/{fd}").readlink())] += 1
        return real(fd, n, offset)

    monkeypatch.setattr(cgreader.os, "pread", counting)
    return seen


def reader_for(hier: Path) -> cgreader.CgroupReader:
    """A reader of every planned file, rescanning at every read."""
    layout = cgreader.discover(hier)
    return cgreader.CgroupReader(layout, cgreader.plan(layout, pressure=True), 100, rescan_s=0.0)


def read_cgroups(reads: Counter[str], hier: Path) -> set[str]:
    """Which cgroups had any file read since the last call (then forgets the counts)."""
    rels = {Path(p).parent.relative_to(hier).as_posix() for p in reads}
    reads.clear()
    return {"/" if rel == "." else f"/{rel}" for rel in rels}


def test_a_change_deep_in_a_tree_is_seen_in_the_same_read(tmp_path: Path, reads: Counter[str]) -> None:
    """Memory and CPU charged three levels down are read at once; the untouched subtree is not read."""
    hier = v2_tree(tmp_path)
    reader = reader_for(hier)
    first, _ = reader.read(slow=False)
    assert set(first) == {"/", *TREE}
    assert read_cgroups(reads, hier) == {"/", *TREE}
    bump(hier, "/a/b/c", cpu_us=5, memory=4096)
    found, slow = reader.read(slow=False)
    assert slow == {}
    assert found["/a/b/c"]["memory_current"] == 4 * 1048576 + 4096
    assert found["/a/b/c"]["user"] == (4 * 200 + 5) * 1000
    touched = read_cgroups(reads, hier)
    assert {"/a", "/a/b", "/a/b/c", "/a/b/d"} <= touched
    assert not touched & {"/x/y", "/x/y/z"}
    assert f"{hier}/x/cpu.stat" not in reads
    found, _ = reader.read(slow=False)
    assert set(found) <= {"/", "/a", "/x"}  # memory.current of the root's children: the root has none to compare
    assert read_cgroups(reads, hier) <= {"/", "/a", "/x"}
    reader.close()


def test_the_floor_reads_every_file_and_bounds_an_unseen_change(tmp_path: Path, reads: Counter[str]) -> None:
    """A change the parents do not show (opposite moves of two children) waits for the slow read, which reads all."""
    hier = v2_tree(tmp_path)
    reader = reader_for(hier)
    reader.read(slow=True)
    every = sum(reads.values())
    reads.clear()
    for path, delta in (("/x/y/z", 8192), ("/x/y", -8192)):
        current = hier / path.lstrip("/") / "memory.current"
        current.write_text(f"{int(current.read_text()) + delta}\n")
    found, _ = reader.read(slow=False)
    assert "/x/y/z" not in found
    reads.clear()
    found, slow = reader.read(slow=True)
    assert sum(reads.values()) == every
    assert set(found) == set(slow) == {"/", *TREE}
    assert found["/x/y/z"]["memory_current"] == 8 * 1048576 + 8192
    reader.close()


def test_new_cgroups_are_read_at_once_under_an_idle_parent(tmp_path: Path, reads: Counter[str]) -> None:
    """A cgroup found by the walk is read in full at once, though its parent's values did not move."""
    hier = v2_tree(tmp_path)
    reader = reader_for(hier)
    reader.read(slow=False)
    reader.read(slow=False)
    v2_cgroup(hier / "x/y/new", 40)
    reads.clear()
    found, slow = reader.read(slow=False)
    assert found["/x/y/new"]["memory_current"] == 40 * 1048576
    assert slow["/x/y/new"]["memory_limit"] == 0
    assert "/x/y/z" not in found
    reader.close()


def test_removal_and_bad_input_leave_the_cgroup_out_then_read_it_in_full(tmp_path: Path) -> None:
    """A cgroup that fails is left out whole (its children are read); fixed, it is read again under an idle parent."""
    hier = v2_tree(tmp_path)
    reader = reader_for(hier)
    reader.read(slow=False)
    (hier / "x/y/memory.current").write_text("lots\n")
    bump(hier, "/x", cpu_us=1, memory=1)
    found, _ = reader.read(slow=False)
    assert "/x/y" not in found
    assert reader.left_out == ["/x/y"]
    assert "/x/y/z" in found
    (hier / "x/y/memory.current").write_text("77\n")
    found, _ = reader.read(slow=False)
    assert found["/x/y"]["memory_current"] == 77
    assert reader.left_out == []
    for file in (hier / "x/y/z").iterdir():
        file.unlink()
    (hier / "x/y/z").rmdir()
    bump(hier, "/x/y", memory=1)
    found, _ = reader.read(slow=False)
    assert "/x/y/z" not in found
    assert not reader.tracks("/x/y/z")
    reader.close()


def test_v1_throttling_follows_cpuacct_and_stops_while_unlimited(tmp_path: Path, reads: Counter[str]) -> None:
    """Co-mounted cpu,cpuacct: cpu.stat is gated by the parent's cpuacct time, and not read without a quota."""
    hier = tmp_path / "sys/fs/cgroup"
    for n, path in enumerate(("/", "/p", "/p/limited", "/p/free"), start=1):
        v1_cgroup(hier, path, n)  # odd n has a quota: /, /p/limited
    for link in ("cpu", "cpuacct"):
        (hier / link).symlink_to("cpu,cpuacct")
    reader = reader_for(hier)
    reader.read(slow=True)
    reads.clear()
    for at in ("/p/limited", "/p", "/"):
        usage = hier / "cpu,cpuacct" / at.lstrip("/") / "cpuacct.usage_user"
        usage.write_text(f"{int(usage.read_text()) + 1}\n")
    (hier / "cpu,cpuacct/p/limited/cpu.stat").write_text("nr_periods 99\nnr_throttled 9\nthrottled_time 5\n")
    found, _ = reader.read(slow=False)
    assert found["/p/limited"]["periods"] == 99
    assert f"{hier}/cpu,cpuacct/p/limited/cpu.stat" in reads
    assert f"{hier}/cpu,cpuacct/p/free/cpu.stat" not in reads
    assert f"{hier}/cpu,cpuacct/p/free/cpuacct.usage_user" in reads
    reads.clear()
    reader.read(slow=False)
    assert not any("/p/" in p for p in reads)
    reader.close()


def test_sampler_repeats_pruned_cgroups_and_reports_every_series(tmp_path: Path) -> None:
    """Frames carry every series of every cgroup whether or not its files were read; values match the files."""
    hier = v2_tree(tmp_path)
    (tmp_path / "proc/pressure").mkdir(parents=True)
    for res in ("cpu", "memory", "io"):
        (tmp_path / "proc/pressure" / res).write_text("some avg10=0.00 avg60=0.00 avg300=0.00 total=1\n")
    sampler, registry = start("cgroup_resources", tmp_path, {"interval": "1s", "slow_interval": "4s"})
    sampler.clock = itertools.count(0, 1_000_000_000).__next__  # type: ignore[attr-defined]
    first = frame(sampler, registry)
    for i in range(6):
        bump(hier, "/a/b/d", cpu_us=i, memory=4096)
        now = frame(sampler, registry)
        assert {name: set(v) for name, v in now.items()} == {name: set(v) for name, v in first.items()}
        assert now["/x/y/z"] == first["/x/y/z"]
        current = int((hier / "a/b/d/memory.current").read_text())
        assert strip_identity(now["/a/b/d"])[k("cgroup_memory_current")] == current
    sampler.close()


@pytest.mark.parametrize("use_hierarchy", ["1", "0"])
def test_v1_memory_gates_only_when_hierarchical(tmp_path: Path, use_hierarchy: str) -> None:
    """Before 5.11 memory.use_hierarchy 0 made v1 memory flat: then every cgroup's usage is read every second."""
    hier = tmp_path / "sys/fs/cgroup"
    for n, path in enumerate(("/", "/p", "/p/q"), start=1):
        v1_cgroup(hier, path, n)
    (hier / "memory/memory.use_hierarchy").write_text(f"{use_hierarchy}\n")
    reader = reader_for(hier)
    reader.read(slow=True)
    (hier / "memory/p/q/memory.usage_in_bytes").write_text("12345\n")
    found, _ = reader.read(slow=False)
    assert ("/p/q" in found) == (use_hierarchy == "0")
    reader.close()
