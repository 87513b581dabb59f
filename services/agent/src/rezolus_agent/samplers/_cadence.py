"""A procfs sampler's own read cadence, slower than the agent's interval.

Some files are costly to generate and their values are not meant to be read
every few milliseconds (see the samplers that use this).  ``Cadence.due()``
is true on the first call and then once ``interval`` has passed (less a
small slack, so a read due on this tick is not pushed to the next one by
scheduling jitter); in between the sampler re-emits its last values, so every
frame carries every series and counters stay monotonic.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable


class Cadence:
    """When a sampler with its own ``interval`` reads its files."""

    def __init__(self, interval_ns: int, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self.interval_ns = interval_ns
        self.clock = clock
        self._slack = min(interval_ns // 4, 50_000_000)
        self._last: int | None = None

    def due(self) -> bool:
        """Whether to read now (and, if so, the read counts as done now)."""
        now = self.clock()
        if self._last is not None and now - self._last < self.interval_ns - self._slack:
            return False
        self._last = now
        return True
