"""Shared fixtures; the helpers they use live in ``support.env`` (import them from there)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from rezolus_core.bus import ZmqSubscriber
from support.env import AgentProcess, bpf_capable, need_tool, require

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture(scope="session")
def root_bpf() -> None:
    """Require root + bcc + tracefs (fails in CI when missing)."""
    ok, reason = bpf_capable()
    require(ok, reason)


@pytest.fixture(scope="session")
def bpftrace() -> str:
    """Path of bpftrace, required in CI."""
    return need_tool("bpftrace")


@pytest.fixture
def agent_factory() -> Iterator[type[AgentProcess]]:
    """Start agents on demand (``agent_factory(interval="100ms")``); all are stopped at teardown."""
    started: list[AgentProcess] = []

    class _Factory(AgentProcess):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    yield _Factory
    for agent in started:
        agent.stop()


@pytest.fixture
def subscribe() -> Iterator[Callable[[str], ZmqSubscriber]]:
    """Open ZeroMQ subscribers (``subscribe(endpoint)``); all are closed at teardown, even on failure."""
    opened: list[ZmqSubscriber] = []

    def _open(endpoint: str) -> ZmqSubscriber:
        sub = ZmqSubscriber(endpoint)
        opened.append(sub)
        return sub

    yield _open
    for sub in opened:
        sub.close()
