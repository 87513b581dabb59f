"""Sans-IO subscriber state: turns received messages into deliverable frames.

Invariants:
- ``Tracker.feed`` takes one raw payload and returns the frames that became
  readable; it never raises for bad input (it counts a decode error instead).
- A frame is delivered only together with a catalog of the same agent instance
  whose version covers it.  Frames that arrive before their catalog wait in a
  bounded queue; when it overflows the oldest is counted as missed.
- Sequence numbers within one instance are strictly increasing on delivery;
  a jump of ``k`` counts ``k - 1`` missed frames, a repeat or step back is
  dropped and counted as a duplicate.
- A new instance id after another was seen counts one restart; the first
  delivery of the new instance carries ``restarted=True`` so consumers reset
  their baselines instead of computing negative deltas.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from rezolus_core.frame import Catalog, DecodeError, Frame, check_ids, decode


@dataclass(frozen=True)
class Delivery:
    """A readable frame with its catalog and what was lost just before it."""

    frame: Frame
    catalog: Catalog
    missed_before: int
    restarted: bool


@dataclass
class TrackerStats:
    """Counters a subscriber exposes about its own health."""

    received: int = 0
    delivered: int = 0
    missed: int = 0
    decode_errors: int = 0
    duplicates: int = 0
    restarts: int = 0
    catalogs: int = 0


class Tracker:
    """Sequence, restart and catalog bookkeeping for one subscription."""

    def __init__(self, pending_limit: int = 64) -> None:
        self.stats = TrackerStats()
        self.catalog: Catalog | None = None
        self.last_error: str | None = None
        self._instance: str | None = None
        self._last_seq: int | None = None
        self._restart_pending = False
        self._pending: deque[Frame] = deque()
        self._pending_limit = pending_limit

    @property
    def instance(self) -> str | None:
        """The agent instance currently followed."""
        return self._instance

    def feed(self, payload: bytes) -> list[Delivery]:
        """Take one message; return the frames it made readable, oldest first."""
        self.stats.received += 1
        try:
            message = decode(payload)
        except DecodeError as exc:
            self.stats.decode_errors += 1
            self.last_error = str(exc)
            return []
        if isinstance(message, Catalog):
            return self._on_catalog(message)
        return self._on_frame(message)

    def _switch_instance(self, instance: str) -> None:
        if self._instance is not None and instance != self._instance:
            self.stats.restarts += 1
            self._restart_pending = True
            self.catalog = None
            self._last_seq = None
            self._pending = deque(f for f in self._pending if f.instance == instance)
        self._instance = instance

    def _on_catalog(self, catalog: Catalog) -> list[Delivery]:
        self.stats.catalogs += 1
        self._switch_instance(catalog.instance)
        if self.catalog is None or catalog.version >= self.catalog.version:
            self.catalog = catalog
        ready: list[Delivery] = []
        while self._pending and self._pending[0].catalog_version <= catalog.version:
            ready.extend(self._deliver(self._pending.popleft()))
        return ready

    def _on_frame(self, frame: Frame) -> list[Delivery]:
        self._switch_instance(frame.instance)
        if self.catalog is None or frame.catalog_version > self.catalog.version or self._pending:
            self._pending.append(frame)
            if len(self._pending) > self._pending_limit:
                self._pending.popleft()
                self.stats.missed += 1
            return []
        return self._deliver(frame)

    def _deliver(self, frame: Frame) -> list[Delivery]:
        assert self.catalog is not None  # noqa: S101 - callers check; a bug otherwise
        if self._last_seq is not None and frame.seq <= self._last_seq:
            self.stats.duplicates += 1
            return []
        try:
            check_ids(frame, self.catalog)
        except DecodeError as exc:
            self.stats.decode_errors += 1
            self.last_error = str(exc)
            return []
        missed = 0 if self._last_seq is None else frame.seq - self._last_seq - 1
        self.stats.missed += missed
        self.stats.delivered += 1
        self._last_seq = frame.seq
        restarted, self._restart_pending = self._restart_pending, False
        return [Delivery(frame, self.catalog, missed, restarted)]
