"""Helpers for tests against the live kernel: cgroups, bpftrace, and reading agent frames."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rezolus_agent.cgroups import cgroup2_mount
from rezolus_core.frame import HistogramValue, iter_values
from support.cpus import pass_through_every_cpu

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rezolus_core.bus import ZmqSubscriber
    from rezolus_core.tracker import Delivery

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]


def series_values(delivery: Delivery) -> dict[SeriesKey, int | HistogramValue]:
    """Every series of a delivered frame keyed by (name, sorted labels)."""
    return {spec.key(): value for spec, value in iter_values(delivery.frame, delivery.catalog)}


def total(values: dict[tuple[str, tuple[tuple[str, str], ...]], Any], name: str, **labels: str) -> Any:
    """Sum of the series of ``name`` whose labels include ``labels``."""
    found = [v for (n, lab), v in values.items() if n == name and all((k, x) in lab for k, x in labels.items())]
    assert found, f"no series {name} {labels}"
    return sum(found[1:], found[0])


def next_frame(sub: ZmqSubscriber, timeout: float = 10.0) -> Delivery:
    """The next frame delivered after this call (older queued frames are skipped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = sub.poll(min(0.5, max(0.01, deadline - time.monotonic())))
        if got:
            return got[-1]
    raise AssertionError(f"no frame from {sub.endpoint} within {timeout}s")


def attached(sub: ZmqSubscriber, timeout: float = 90.0) -> Delivery:
    """The agent's first frame: it has compiled and attached (a compile can take a minute on a loaded host)."""
    return next_frame(sub, timeout)


def wait_for_series(sub: ZmqSubscriber, predicate, timeout: float = 15.0) -> Delivery:
    """The first frame whose series satisfy ``predicate(values)``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        delivery = next_frame(sub, max(0.1, deadline - time.monotonic()))
        if predicate(series_values(delivery)):
            return delivery
    raise AssertionError("no frame satisfied the condition in time")


def settle(sub: ZmqSubscriber, count: int = 3) -> Delivery:
    """Skip ``count`` frames so values reflect everything that happened before."""
    delivery = next_frame(sub)
    for _ in range(count - 1):
        delivery = next_frame(sub)
    return delivery


class Cgroup:
    """A cgroup v2 directory made by a test."""

    def __init__(self, prefix: str = "rztest") -> None:
        mount = cgroup2_mount()
        if mount is None:
            raise RuntimeError("no cgroup2 mount")
        self.name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.path = mount / self.name
        self.path.mkdir()
        self.id = self.path.stat().st_ino

    def run(self, argv: list[str], timeout: float = 60.0) -> subprocess.CompletedProcess[bytes]:
        """Run a command inside the cgroup (it joins before exec)."""
        procs = self.path / "cgroup.procs"

        def join() -> None:
            procs.write_text(str(os.getpid()))

        return subprocess.run(argv, preexec_fn=join, capture_output=True, timeout=timeout, check=True)

    def remove(self) -> None:
        """Remove the directory once its tasks are gone."""
        deadline = time.monotonic() + 10
        while True:
            try:
                self.path.rmdir()
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            else:
                return


@contextlib.contextmanager
def cgroup(prefix: str = "rztest") -> Iterator[Cgroup]:
    """A temporary cgroup v2 directory."""
    group = Cgroup(prefix)
    try:
        yield group
    finally:
        group.remove()


ATTACHED = "rz-attached"


def with_attach_marker(script: str) -> str:
    """``script`` with BEGIN printing ``ATTACHED`` (see ``Bpftrace``); an existing BEGIN block gets the printf."""
    mark = f'printf("{ATTACHED}\\n");'
    begin = re.match(r"\s*BEGIN\s*\{", script)
    return f"{script[:begin.end()]} {mark} {script[begin.end():]}" if begin else f"BEGIN {{ {mark} }} {script}"


class Bpftrace:
    """A bpftrace script running in the background until ``stop``; attached when the constructor returns.

    bpftrace prints "Attaching N probes..." before it attaches them, so a workload started on
    that line can run before the reference sees it.  A marker printed by BEGIN reaches stdout
    only once bpftrace reads its perf buffers, which it starts after attaching every probe.
    """

    running: ClassVar[list[Bpftrace]] = []

    def __init__(self, binary: str, script: str, timeout: float = 30.0, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([binary, "-e", with_attach_marker(script)], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True,
                                     env=None if env is None else {**os.environ, **env})
        self.errors = ""
        Bpftrace.running.append(self)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline()
        while ATTACHED not in line:
            if not line or time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError(f"bpftrace did not attach: {self.proc.stderr.read() if self.proc.stderr else ''}")
            line = self.proc.stdout.readline()

    def stop(self) -> str:
        """SIGINT (bpftrace prints its maps; a loaded machine can take more than 30 s) and return stdout."""
        self.proc.send_signal(signal.SIGINT)
        out, self.errors = self.proc.communicate(timeout=120)
        if self in Bpftrace.running:
            Bpftrace.running.remove(self)
        if self.proc.returncode not in (0, -signal.SIGINT):
            raise RuntimeError(f"bpftrace failed: {self.errors}")
        return out


def wait_asleep(pid: int, timeout_s: float = 10.0) -> None:
    """Wait until ``pid`` is asleep and has switched out.

    /proc shows S as soon as the task sets its state, before its last switch is counted
    (in __schedule, with sched_switch); after seeing S the caller runs once on every CPU, so
    the task has left its CPU, and S is checked again.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _state(pid) == "S":
            pass_through_every_cpu()
            if _state(pid) == "S":
                return
        time.sleep(0.01)
    raise AssertionError(f"{pid} did not go to sleep")


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()[0]


def reap_bpftrace() -> None:
    """Kill and collect every bpftrace a failed test left running (it would trace on, and warn when collected)."""
    while Bpftrace.running:
        trace = Bpftrace.running.pop()
        if trace.proc.poll() is None:
            trace.proc.kill()
        trace.proc.communicate(timeout=30)


def family_total(values: dict[SeriesKey, int | HistogramValue], metric: str, **labels: str) -> int:
    """Sum of a counter metric over all series whose labels include ``labels``."""
    total = 0
    for (name, pairs), value in values.items():
        if name == metric and set(labels.items()) <= set(pairs):
            assert isinstance(value, int)
            total += value
    return total


def cgroup_dir(path: Path) -> str:
    """The cgroup2-relative path of a directory (as the agent labels it)."""
    mount = cgroup2_mount()
    assert mount is not None
    return "/" + str(path.relative_to(mount))
