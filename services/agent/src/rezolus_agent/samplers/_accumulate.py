"""Totals over a changing set of sources that never go backwards.

Summing per-interface kernel counters directly would drop when an interface
disappears or is reset; instead each source's increase is added to a running
total, so the emitted counter is monotonic.
"""

from __future__ import annotations


class Accumulator:
    """Monotonic totals from per-source cumulative readings."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], int] = {}
        self.totals: dict[str, int] = {}

    def update(self, readings: dict[tuple[str, str], int]) -> dict[str, int]:
        """Feed ``(source, field) -> value``; returns ``field -> total``."""
        for key, value in readings.items():
            before = self._last.get(key)
            field = key[1]
            if before is None:
                self.totals[field] = self.totals.get(field, 0) + value
            elif value >= before:
                self.totals[field] = self.totals.get(field, 0) + value - before
            else:
                self.totals[field] = self.totals.get(field, 0) + value
            self._last[key] = value
        for key in [k for k in self._last if k not in readings]:
            del self._last[key]
        return self.totals
