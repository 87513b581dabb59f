"""``rezolus compare`` on live recordings of the real agent and recorder: idle pairs and injected loads.

One agent (100 ms) feeds five 30 s recordings at 500 ms, in this order:
idle A, a syscall loop in the test's cgroup, O_DIRECT reads of a file on disk, idle B (a minute after
idle A started), CPU burners in a cgroup.  The syscall loop (2,000 getppid
per 10 ms, 200k/s), the reads (20 per 10 ms, 2,000/s; this disk serves
14,000/s to one unpaced reader) and the burners (3 ms of every 10 ms each) are paced, so
what they inject stays steady when other work shares the CPUs; an unpaced
loop's rate follows the host's load, and a target that wanders fivefold has
an effective sample size of 2, too few to call even a 100-fold change.  A shell that wakes once a second
lives in the test's cgroup throughout, so its series exist on both sides.
Each load is compared against idle A; in the idle pair the waker's own
series must stay unmarked, and the host-wide share marked is printed
(docs/viewer.md quotes the numbers this test prints).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from support.env import VENV_BIN, bpf_capable, require, wait_for
from support.live import Cgroup, cgroup_dir

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(1200)]

SECONDS = 30
TOP = 5


def _record(agent, out: Path) -> Path:
    proc = subprocess.run(
        [str(VENV_BIN / "rezolus-recorder"), "--source", agent.endpoint, "--interval", "500ms",
         "--duration", f"{SECONDS}s", "--timeout", "60s", str(out)],
        capture_output=True, text=True, timeout=SECONDS + 90, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return out


def _compare(base: Path, target: Path) -> list[dict]:
    proc = subprocess.run([str(VENV_BIN / "rezolus"), "compare", str(base), str(target), "--json"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _ranked(rows: list[dict]) -> list[dict]:
    return [r for r in rows if "only_in" not in r]


def _top_columns(rows: list[dict], n: int = TOP) -> list[str]:
    return [r["series"]["column"] for r in _ranked(rows)[:n] if r["significant"]]


@contextlib.contextmanager
def _running(argv: list[str], group: Cgroup | None = None) -> Iterator[subprocess.Popen[bytes]]:
    def join() -> None:
        if group is not None:
            (group.path / "cgroup.procs").write_text(str(os.getpid()))

    proc = subprocess.Popen(argv, preexec_fn=join,  # noqa: PLW1509 - only joins a cgroup before exec
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(10)


SYSCALL_LOOP = f"""
import os, time
tick = 0.01
end = time.monotonic() + {SECONDS + 30}
due = time.monotonic()
while due < end:
    for _ in range(2000):
        os.getppid()
    due += tick
    time.sleep(max(0.0, due - time.monotonic()))
"""

CPU_BURNER = f"""
import time
tick, spin = 0.01, 0.003
end = time.monotonic() + {SECONDS + 30}
due = time.monotonic()
while due < end:
    while time.monotonic() < due + spin:
        pass
    due += tick
    time.sleep(max(0.0, due - time.monotonic()))
"""

DIRECT_IO = f"""
import mmap, os, random, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
buf = mmap.mmap(-1, 4096)
blocks = os.lseek(fd, 0, os.SEEK_END) // 4096
rng = random.Random(7)
tick = 0.01
end = time.monotonic() + {SECONDS + 30}
due = time.monotonic()
while due < end:
    for _ in range(20):
        os.preadv(fd, [buf], rng.randrange(blocks) * 4096)
    due += tick
    time.sleep(max(0.0, due - time.monotonic()))
"""


def _data_file(directory: Path) -> str:
    """64 MiB of written data on the test's disk (O_DIRECT reads of it go to the device)."""
    path = directory / "direct.img"
    with path.open("wb") as out:
        for _ in range(64):
            out.write(os.urandom(1 << 20))
        out.flush()
        os.fsync(out.fileno())
    return str(path)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> dict[str, Path | str]:
    """The five recordings (paths) and the test cgroup's name."""
    ok, why = bpf_capable()
    require(ok, why)
    from support.env import AgentProcess  # noqa: PLC0415 - after the capability check

    tmp = tmp_path_factory.mktemp("compare-live")
    agent = AgentProcess(interval="100ms")
    request.addfinalizer(agent.stop)
    group = Cgroup("rzcompare")
    request.addfinalizer(group.remove)  # noqa: PT021
    out: dict[str, Path | str] = {"cgroup": cgroup_dir(group.path)}
    waker = f"end=$(( $(date +%s) + {6 * SECONDS + 300} )); while [ $(date +%s) -lt $end ]; do sleep 1; done"
    with _running(["sh", "-c", waker], group):
        started = time.monotonic()
        out["idle_a"] = _record(agent, tmp / "idle_a.parquet")
        with _running([sys.executable, "-c", SYSCALL_LOOP], group):
            out["syscall"] = _record(agent, tmp / "syscall.parquet")
        with _running([sys.executable, "-c", DIRECT_IO, _data_file(tmp)]):
            out["dio"] = _record(agent, tmp / "dio.parquet")
        wait_for(lambda: time.monotonic() - started >= 60, 120, 0.5, "a minute after idle A started")
        out["idle_b"] = _record(agent, tmp / "idle_b.parquet")
        with _running([sys.executable, "-c", CPU_BURNER], group), _running([sys.executable, "-c", CPU_BURNER], group):
            out["cpu"] = _record(agent, tmp / "cpu.parquet")
    return out


def test_a_recording_compared_with_itself_marks_nothing(live):
    """Identical inputs: every p-value is 1."""
    rows = _compare(live["idle_a"], live["idle_a"])
    assert len(_ranked(rows)) > 50
    assert not any(r["significant"] for r in rows)


def test_idle_pair_marks_none_of_the_tests_own_steady_series(live):
    """Two idle recordings a minute apart: nothing the test's own steady workload drives is marked.

    The waker shell makes the same syscalls and context switches every second
    in the test's cgroup, so its counts are a true null here whatever else
    the host does; the host-wide series are not (other work starts and stops
    between the two recordings), so their share is printed for docs/viewer.md,
    not bounded.
    """
    rows = _ranked(_compare(live["idle_a"], live["idle_b"]))
    hits = [r["series"]["column"] + (f" p{r['series']['quantile']:g}" if r["series"]["quantile"] else "")
            for r in rows if r["significant"]]
    print(f"idle pair: {len(hits)} of {len(rows)} series significant ({len(hits) / len(rows):.2%}): {hits}")
    group = str(live["cgroup"])
    owned = ("cgroup_syscall/", "cgroup_scheduler_context_switch/")
    steady = [r for r in rows if r["series"]["column"].startswith(owned) and _owned(r["series"]["column"], group)]
    assert [r["series"]["column"] for r in steady if r["base"]], f"no activity of {group} on record"
    assert not [r["series"]["column"] for r in steady if r["significant"]]


def _row(rows: list[dict], column: str) -> dict:
    return next(r for r in _ranked(rows) if r["series"]["column"] == column and not r["series"]["quantile"])


def _owned(column: str, group: str) -> bool:
    """A series of the test's cgroup (its name is a path segment of the column)."""
    return f"/{group.strip('/')}" in column


def test_syscall_loop_ranks_its_cgroup_first_and_names_the_query_family(live):
    """A getppid loop in the test's cgroup puts that cgroup at the top, and its query family is the syscall change.

    The loop moves many of the cgroup's series by orders of magnitude (syscalls,
    CPU time, off-CPU and context switches); which of those comes first is the
    effect's call, so the top is checked for the cgroup, and the family by
    ranking the cgroup's syscall families against each other.  The host-wide
    family also carries every other process, so it is checked for direction only.
    """
    rows = _compare(live["idle_a"], live["syscall"])
    group = str(live["cgroup"])
    top = _top_columns(rows)
    print("syscall loop top:", top)
    assert any(_owned(c, group) for c in top), (group, top)
    families = [r for r in _ranked(rows) if r["series"]["column"].startswith("cgroup_syscall/")
                and _owned(r["series"]["column"], group)]
    assert families[0]["series"]["column"].endswith("/query"), [r["series"]["column"] for r in families[:3]]
    row = families[0]
    assert row["significant"]
    assert row["target"] > 10 * row["base"]
    host = _row(rows, "syscall/query")
    assert host["target"] > host["base"]


def test_direct_io_ranks_block_reads_first(live):
    """O_DIRECT reads of a file on disk put block-read series at the top, their operations up tenfold and more.

    Which block-read series leads (operations, bytes or the latency
    quantiles, all from zero) is the effect's call, as for the syscall loop.
    """
    rows = _compare(live["idle_a"], live["dio"])
    top = _top_columns(rows)
    print("direct IO top:", top)
    assert any(c.startswith("blockio_") and c.split(":")[0].endswith("/read") for c in top), top
    row = _row(rows, "blockio_operations/read")
    assert row["significant"]
    assert row["target"] > 10 * row["base"]


def test_cpu_burners_in_a_cgroup_rank_that_cgroup_first(live):
    """Two CPU burners in the test's cgroup put that cgroup at the top, its CPU usage up tenfold and more."""
    rows = _compare(live["idle_a"], live["cpu"])
    group = str(live["cgroup"])
    top = _top_columns(rows)
    print("cpu burners top:", top)
    assert any(_owned(c, group) for c in top), (group, top)
    row = _row(rows, f"cgroup_cpu_usage/{group}")
    assert row["significant"]
    assert row["target"] > 10 * row["base"]  # the burners against a shell that wakes once a second
