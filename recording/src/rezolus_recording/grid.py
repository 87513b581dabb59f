"""Choosing which agent frames become rows: one per slot of the wall-clock grid.

Invariants:
- Slot ``k`` is the grid point ``k * interval`` (ns since the Unix epoch).
- A frame is placed by its *nominal* time, the agent tick it belongs to:
  the first frame of an agent instance is snapped to the nearest multiple of
  the agent's interval, and later frames of that instance are placed
  ``(seq - anchor_seq)`` agent intervals after it.  A frame published late
  (a loaded machine) therefore still lands on its own tick instead of taking
  the next one's slot.  If a frame's timestamp is more than
  ``max(2 agent intervals, 1 s)`` away from its nominal time (the sequence
  does not track ticks, or the clock jumped), it becomes the new anchor.
  Without ``seq`` the timestamp itself is the nominal time.
- A frame belongs to slot ``floor((nominal + tol) / interval)`` where ``tol``
  is half the agent's interval, so with an agent publishing faster than the
  grid the frame nearest each grid point is taken, and with one publishing
  at the same rate every frame is taken.
- The first row waits for a frame within ``tol`` of a grid point; later rows
  take the first frame of each new slot.
- Slots taken are strictly increasing; ``missed`` is the number of slots
  skipped between two rows (a gap), and no slot beyond ``last_slot`` (when
  set) is ever taken.
"""

from __future__ import annotations

from dataclasses import dataclass

_REANCHOR_MIN_NS = 1_000_000_000


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
        self._anchor: tuple[str, int, int, int] | None = None  # instance, seq, nominal, interval

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

    def nominal(
        self, timestamp_ns: int, agent_interval_ns: int, seq: int | None, instance: str | None
    ) -> int:
        """Return the agent tick a frame belongs to (see the module invariants)."""
        if seq is None or agent_interval_ns <= 0:
            return timestamp_ns
        anchor = self._anchor
        if anchor is not None and anchor[0] == instance and anchor[3] == agent_interval_ns:
            nominal = anchor[2] + (seq - anchor[1]) * agent_interval_ns
            if abs(timestamp_ns - nominal) <= max(2 * agent_interval_ns, _REANCHOR_MIN_NS):
                return nominal
        ticks = (timestamp_ns + agent_interval_ns // 2) // agent_interval_ns
        nominal = ticks * agent_interval_ns
        self._anchor = (instance or "", seq, nominal, agent_interval_ns)
        return nominal

    def offer(
        self,
        timestamp_ns: int,
        agent_interval_ns: int,
        *,
        seq: int | None = None,
        instance: str | None = None,
    ) -> Pick | None:
        """Return the pick if this frame becomes a row, else None."""
        tol = (agent_interval_ns if agent_interval_ns > 0 else self.interval_ns) // 2
        when = self.nominal(timestamp_ns, agent_interval_ns, seq, instance)
        slot = (when + tol) // self.interval_ns
        if self.last_taken is None:
            if when - tol > slot * self.interval_ns:
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
