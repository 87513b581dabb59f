"""Choosing which agent frames become rows: one per slot of the wall-clock grid.

Invariants:
- Slot ``k`` is the grid point ``k * interval`` (ns since the Unix epoch).  A
  frame belongs to slot ``floor((t + tol) / interval)`` where ``tol`` is half
  the agent's interval, so with an agent publishing faster than the grid the
  frame nearest each grid point is taken, and with one publishing at the same
  rate every frame is taken even when its clock is offset from the grid.
- The first row waits for a frame within ``tol`` of a grid point; later rows
  take the first frame of each new slot, so jitter never causes a gap.
- Slots taken are strictly increasing; ``missed`` is the number of slots
  skipped between two rows (a gap), and no slot beyond ``last_slot`` (when
  set) is ever taken.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pick:
    """A frame chosen as the row of ``slot``, after ``missed`` empty slots."""

    slot: int
    missed: int


class Grid:
    """Sans-IO row selection on the grid of ``interval_ns``."""

    def __init__(self, interval_ns: int, *, rows: int | None = None) -> None:
        if interval_ns <= 0:
            raise ValueError(f"interval must be positive, got {interval_ns} ns")
        self.interval_ns = interval_ns
        self.rows_wanted = rows
        self.first_slot: int | None = None
        self.last_taken: int | None = None

    @property
    def last_slot(self) -> int | None:
        """The final slot to record, once the first row fixed where the grid starts."""
        if self.first_slot is None or self.rows_wanted is None:
            return None
        return self.first_slot + self.rows_wanted - 1

    @property
    def done(self) -> bool:
        """Tell whether the final slot has been taken."""
        last = self.last_slot
        return last is not None and self.last_taken is not None and self.last_taken >= last

    def offer(self, timestamp_ns: int, agent_interval_ns: int) -> Pick | None:
        """Return the pick if this frame becomes a row, else None."""
        tol = max(agent_interval_ns, 0) // 2
        slot = (timestamp_ns + tol) // self.interval_ns
        if self.last_taken is None:
            if timestamp_ns - tol > slot * self.interval_ns:
                return None
            self.first_slot = slot
            self.last_taken = slot
            return Pick(slot, 0)
        last = self.last_slot
        if slot <= self.last_taken or (last is not None and slot > last):
            return None
        missed = slot - self.last_taken - 1
        self.last_taken = slot
        return Pick(slot, missed)

    def deadline_ns(self) -> int | None:
        """Return the wall-clock time by which the final slot's frame is due."""
        last = self.last_slot
        return None if last is None else last * self.interval_ns
