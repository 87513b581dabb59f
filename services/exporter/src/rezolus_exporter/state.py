"""What the exporter knows about the agent: the recent frames of one instance.

Invariants:
- Frames come only from ``Tracker`` deliveries, so they are decoded, checked
  against a catalog of the same instance, and have increasing sequence numbers.
- The window holds frames of exactly one agent instance.  A delivery marked
  ``restarted`` (or of another instance) empties it first, so no value or
  delta ever mixes two instances, and counters restart from the new agent's
  values (Prometheus sees the drop as a counter reset, never a negative rate).
- The newest frame is kept whole; of older frames only the histograms are
  kept (``Snapshot``), back to ``window + interval/2`` before the newest (by
  the agent's monotonic clock), so the oldest snapshot is the baseline of a
  trailing window of about ``window``.  At most ``MAX_FRAMES`` snapshots are
  kept (the window then covers fewer intervals, as
  ``rezolus_exporter_window_seconds`` shows); none when summaries are off.
- The agent is *up* when a frame arrived (by this process's monotonic clock)
  within ``stale_intervals`` agent intervals; otherwise ``window()`` is None
  and nothing from the agent is served.  Whoever first notices a change of
  up/stale (a scrape or the service's watcher) logs it, once.
- Only frames inside the contract enter the window: ``ingest`` re-checks
  each delivery with ``rezolus_core.frame.check_frame`` (``decode`` already
  did for frames off the bus; this guards frames handed over in-process) and
  counts a refused one in ``rejected``, so one bad frame can never make every
  later scrape fail.
- A series is "seen" once any frame of the current instance carried it; a
  catalog series never seen is reported as zero (counters and histograms are
  cumulative from zero), a series seen before but missing from the newest
  frame is not reported at all (its value is unknown).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rezolus_core import log
from rezolus_core.frame import DecodeError, check_frame

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import NDArray

    from rezolus_core.frame import Catalog, Frame, HistogramValue
    from rezolus_core.tracker import Delivery

MAX_FRAMES = 4096


@dataclass(frozen=True)
class Snapshot:
    """What the window needs of an older frame: its time and its histograms."""

    seq: int
    monotonic_ns: int
    histograms: tuple[HistogramValue, ...]

    @classmethod
    def of(cls, frame: Frame) -> Snapshot:
        """Keep only the histograms of a frame (its counters and gauges are not needed later)."""
        return cls(frame.seq, frame.monotonic_ns, frame.histograms)


@dataclass(frozen=True)
class Window:
    """The newest frame, the baseline of the trailing window, and their catalog."""

    latest: Frame
    baseline: Snapshot | None
    catalog: Catalog
    seen: NDArray[np.bool_]

    @property
    def span_ns(self) -> int:
        """Agent time covered by the window (0 when there is only one frame)."""
        if self.baseline is None:
            return 0
        return self.latest.monotonic_ns - self.baseline.monotonic_ns


class AgentState:
    """The frames of the current agent instance and when the last one arrived."""

    def __init__(
        self,
        window_ns: int,
        stale_intervals: int = 3,
        clock: Callable[[], int] = time.monotonic_ns,
        *,
        keep_history: bool = True,
    ) -> None:
        self.window_ns = window_ns
        self.stale_intervals = stale_intervals
        self._clock = clock
        self._latest: Frame | None = None
        self._history: deque[Snapshot] = deque(maxlen=MAX_FRAMES if keep_history else 1)
        self._catalog: Catalog | None = None
        self._seen: NDArray[np.bool_] = np.zeros(0, dtype=np.bool_)
        self._received_at: int | None = None
        self._reported_up = False
        self.rejected = 0

    def ingest(self, delivery: Delivery) -> None:
        """Add one delivered frame, resetting the window on an agent restart."""
        frame = delivery.frame
        try:
            check_frame(frame)
        except DecodeError as exc:
            self.rejected += 1
            log.get().warning("frame refused", reason=str(exc), seq=frame.seq)
            return
        previous = self._latest
        if delivery.restarted or (previous is not None and previous.instance != frame.instance):
            self._history.clear()
            self._seen = np.zeros(0, dtype=np.bool_)
        self._catalog = delivery.catalog
        if self._seen.size < delivery.catalog.version:
            grown = np.zeros(delivery.catalog.version, dtype=np.bool_)
            grown[: self._seen.size] = self._seen
            self._seen = grown
        self._seen[frame.counter_ids.astype(np.intp)] = True
        self._seen[frame.gauge_ids.astype(np.intp)] = True
        for hist in frame.histograms:
            self._seen[hist.id] = True
        self._latest = frame
        self._history.append(Snapshot.of(frame))
        self._trim(frame)
        self._received_at = self._clock()

    def _trim(self, newest: Frame) -> None:
        keep_after = newest.monotonic_ns - self.effective_window_ns(newest) - newest.interval_ns // 2
        while len(self._history) > 1 and (
            self._history[0].monotonic_ns < keep_after or self._history[0].monotonic_ns > newest.monotonic_ns
        ):
            self._history.popleft()

    def effective_window_ns(self, frame: Frame) -> int:
        """Return the configured window, but never less than one agent interval."""
        return max(self.window_ns, frame.interval_ns)

    @property
    def interval_ns(self) -> int | None:
        """The agent's sampling interval, from the newest frame."""
        return None if self._latest is None else self._latest.interval_ns

    @property
    def last_timestamp_ns(self) -> int | None:
        """The agent's wall-clock time of the newest frame."""
        return None if self._latest is None else self._latest.timestamp_ns

    def age_ns(self) -> int | None:
        """Time since the newest frame arrived (None before the first one)."""
        if self._received_at is None:
            return None
        return self._clock() - self._received_at

    def is_up(self) -> bool:
        """Whether a frame arrived within ``stale_intervals`` agent intervals (changes are logged)."""
        age, interval = self.age_ns(), self.interval_ns
        up = age is not None and interval is not None and age <= self.stale_intervals * max(interval, 1)
        if up != self._reported_up:
            self._reported_up = up
            if up:
                log.get().info("agent up", interval_s=(interval or 0) / 1e9)
            else:
                log.get().warning("agent stale: no frame for too long, its series are withdrawn")
        return up

    def window(self) -> Window | None:
        """Return the current window, or None when the agent is down or stale."""
        latest = self._latest
        if latest is None or self._catalog is None or not self.is_up():
            return None
        baseline = self._history[0] if len(self._history) > 1 else None
        return Window(latest, baseline, self._catalog, self._seen)
