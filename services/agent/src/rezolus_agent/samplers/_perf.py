"""perf_event_open from Python (ctypes), for per-CPU counting events.

Invariants:
- Counting only (no sampling, no mmap ring): a group is read with one
  ``read`` syscall returning every member's count plus the time the group
  was enabled and running, so multiplexed counters can be scaled.
- Every fd opened is closed by ``PerfGroup.close`` (also on partial failure).
- Opening is the only place that knows the syscall; samplers take an
  ``opener`` so tests can inject a fake without hardware.
- ``GroupSampler`` is what every per-CPU group sampler shares: one counter
  per (CPU, member) in member order, primed at start, scaled running totals
  each sample.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from rezolus_agent.sampler import ProcSampler

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from numpy.typing import NDArray

    from rezolus_agent.series import FrameBuilder

PERF_TYPE_HARDWARE = 0
PERF_COUNT_HW_CPU_CYCLES = 0
PERF_COUNT_HW_INSTRUCTIONS = 1
_FORMAT = 1 | 2 | 8  # TOTAL_TIME_ENABLED | TOTAL_TIME_RUNNING | GROUP
_ATTR_SIZE = 128
_SYSCALL = {"x86_64": 298, "aarch64": 241}
_FLAG_CLOEXEC = 8


class Group(Protocol):
    """A counting event group on one CPU."""

    def read(self) -> tuple[list[int], int, int]:
        """Member counts, time enabled (ns), time running (ns)."""

    def close(self) -> None:
        """Release the events."""


@dataclass
class PerfGroup:
    """Open perf fds; the first is the group leader."""

    fds: list[int]

    def read(self) -> tuple[list[int], int, int]:
        """One read of the leader returns the whole group."""
        size = 8 * (3 + len(self.fds))
        data = os.read(self.fds[0], size)
        nr, enabled, running = struct.unpack_from("<3Q", data)
        return list(struct.unpack_from(f"<{nr}Q", data, 24)), enabled, running

    def close(self) -> None:
        """Close every member."""
        for fd in self.fds:
            os.close(fd)
        self.fds = []


def _attr(ptype: int, config: int) -> ctypes.Array[ctypes.c_char]:
    buf = ctypes.create_string_buffer(_ATTR_SIZE)
    # type, size, config, sample_period, sample_type, read_format, flags (all zero: enabled, count kernel+user)
    struct.pack_into("<IIQQQQQ", buf, 0, ptype, _ATTR_SIZE, config, 0, 0, _FORMAT, 0)
    return buf


def open_group(cpu: int, events: list[tuple[int, int]]) -> Group:
    """Open ``(type, config)`` events as one group counting everything on ``cpu``; OSError on failure."""
    number = _SYSCALL.get(platform.machine())
    if number is None:
        raise OSError(errno.ENOSYS, f"perf_event_open is not wired for {platform.machine()}")
    libc = ctypes.CDLL(None, use_errno=True)
    fds: list[int] = []
    try:
        for ptype, config in events:
            attr = _attr(ptype, config)
            leader = fds[0] if fds else -1
            fd = libc.syscall(number, attr, -1, cpu, leader, _FLAG_CLOEXEC)
            if fd < 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))  # noqa: TRY301 - closes earlier fds below
            fds.append(fd)
    except OSError:
        for fd in fds:
            os.close(fd)
        raise
    return PerfGroup(fds)


def pmu_event(sys_root: Path, pmu: str, event: str) -> tuple[int, int] | None:
    """(type, config) of a dynamic PMU's named event from sysfs, or None when absent."""
    base = sys_root / "bus" / "event_source" / "devices" / pmu
    try:
        ptype = int((base / "type").read_text(encoding="ascii"))
        spec = (base / "events" / event).read_text(encoding="ascii").strip()
    except (OSError, ValueError):
        return None
    config = 0
    for term in spec.split(","):
        key, _, value = term.partition("=")
        if key != "event":
            return None
        config = int(value, 0)
    return ptype, config


class Scaled:
    """Monotonic totals from cumulative group reads, scaling each interval's increase by enabled/running."""

    def __init__(self, members: int) -> None:
        self.totals = [0] * members
        self._last: tuple[list[int], int, int] | None = None

    def update(self, reading: tuple[list[int], int, int]) -> list[int]:
        """Feed one read; returns the running totals."""
        values, enabled, running = reading
        if self._last is not None:
            old, old_enabled, old_running = self._last
            d_enabled, d_running = enabled - old_enabled, running - old_running
            for i, (new, before) in enumerate(zip(values, old, strict=True)):
                increase = max(new - before, 0)
                if 0 < d_running < d_enabled:
                    increase = increase * d_enabled // d_running
                self.totals[i] += increase
        else:
            self.totals = [0] * len(values)
        self._last = (values, enabled, running)
        return self.totals


class GroupSampler(ProcSampler):
    """A sampler reading one perf group per CPU (``_groups``, filled by the subclass's ``start``)."""

    _groups: list[tuple[int, Group, Scaled]]

    def opener(self) -> Callable[[int, list[tuple[int, int]]], Group]:
        """``ctx.extra["perf_open"]`` when a test set one, else the real ``open_group``."""
        opener: Callable[[int, list[tuple[int, int]]], Group] = self.ctx.extra.get(  # type: ignore[assignment]
            "perf_open", open_group
        )
        return opener

    def register(self, series: list[tuple[str, str, str]]) -> None:
        """One counter per CPU for each (name, unit, help) of ``series``, in member order; prime every group."""
        reg = self.ctx.registry
        self._ids = np.array(
            [[reg.counter(name, {"id": str(cpu)}, unit, doc) for name, unit, doc in series]
             for cpu, _, _ in self._groups],
            dtype=np.uint32,
        )
        for _, group, scaled in self._groups:
            scaled.update(group.read())

    def read_totals(self) -> NDArray[np.uint64]:
        """Read every CPU's group: the running (scaled) totals, one row per CPU."""
        return np.array([scaled.update(group.read()) for _, group, scaled in self._groups], dtype=np.uint64)

    def sample(self, out: FrameBuilder) -> None:
        """Read every CPU's group and emit the running (scaled) totals."""
        out.counters(self._ids, self.read_totals())

    def close(self) -> None:
        """Close every perf fd."""
        for _, group, _ in getattr(self, "_groups", []):
            group.close()
        self._groups = []
