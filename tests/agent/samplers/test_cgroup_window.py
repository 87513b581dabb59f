"""The 1,100-cgroup test's frame window: it must end on frames sampled after the workload.

The agent reads a frame's host syscall counters before its per-cgroup rows,
so a frame sampled while the workload runs holds more per-cgroup syscalls
than host ones (measured +60 to +841 per frame at load 1.9, 2026-12-02,
docs/performance-history.md, "Hot-path and cgroup-file cost work");
comparing such a queued frame made the test over-count.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import test_cgroup_first_event as first_event

if TYPE_CHECKING:
    import pytest


@dataclass
class _Frame:
    timestamp_ns: int


@dataclass
class _Delivery:
    frame: _Frame


@dataclass
class _Subscriber:
    """Two frames queued before the call, then one fresh frame per poll."""

    queued: int
    polls: list[list[_Delivery]] = field(default_factory=list)

    def poll(self, timeout: float) -> list[_Delivery]:
        del timeout
        if not self.polls:
            stale = [_Delivery(_Frame(time.time_ns() - 2_000_000_000)) for _ in range(self.queued)]
            self.polls.append(stale)
            return stale
        fresh = [_Delivery(_Frame(time.time_ns() + 1))]
        self.polls.append(fresh)
        return fresh


def test_frames_until_ends_on_frames_sampled_after_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Queued frames are kept (the window starts at the first) but do not count towards the fresh ones."""
    monkeypatch.setattr(first_event, "series_values", lambda d: {"ts": d.frame.timestamp_ns})
    sub = _Subscriber(queued=2)
    before = time.time_ns()
    got = first_event.frames_until(sub, 3)  # type: ignore[arg-type]
    fresh = [f for f in got if f["ts"] > before]
    assert len(got) == 5
    assert len(fresh) == 3
    assert got[-3:] == fresh
