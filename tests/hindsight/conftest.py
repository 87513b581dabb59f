"""Fixtures for hindsight tests: a synthetic publisher and hindsight processes, all stopped at teardown."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hindsight_helpers import Hindsight, Publisher

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def publisher() -> Iterator[Publisher]:
    """A synthetic agent publishing every 20 ms."""
    pub = Publisher(period_s=0.02)
    yield pub
    pub.stop()


@pytest.fixture
def hindsights() -> Iterator[list[Hindsight]]:
    """A list to register hindsight processes in; each is stopped at teardown."""
    started: list[Hindsight] = []
    yield started
    for process in started:
        if process.proc is not None and process.proc.poll() is None:
            process.stop()
