"""Fixtures for the scheduler sampler tests: subscribers and workloads are always cleaned up."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import sched_workloads

from rezolus_core.bus import ZmqSubscriber

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture
def subscribe() -> Iterator[Callable[[str], ZmqSubscriber]]:
    """Open subscribers on demand; all are closed at teardown, even when the test fails."""
    opened: list[ZmqSubscriber] = []

    def factory(endpoint: str) -> ZmqSubscriber:
        sub = ZmqSubscriber(endpoint)
        opened.append(sub)
        return sub

    yield factory
    for sub in opened:
        sub.close()


@pytest.fixture(autouse=True)
def _reap_workloads() -> Iterator[None]:
    """Kill workload processes a failed test left parked (so its cgroup can be removed)."""
    yield
    sched_workloads.reap()
