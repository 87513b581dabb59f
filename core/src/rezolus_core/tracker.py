"""Sans-IO subscriber state: turns received messages into deliverable frames.

Invariants:
- ``Tracker.feed`` takes one raw payload and returns the frames that became
  readable; it never raises for bad input (it counts a decode error instead).
- A frame is delivered only together with a catalog of the same agent instance
  whose version covers it.  Frames that arrive before their catalog wait in a
  bounded queue; when it overflows the oldest is counted as missed.  A waiting
  frame never holds back a later frame that can be read: delivering that one
  drops the older waiting frames of its instance (counted as missed).
- Sequence numbers within one instance are strictly increasing on delivery;
  a jump of ``k`` counts ``k - 1`` missed frames, a repeat or step back is
  dropped and counted as a duplicate.
- A catalog of the followed instance must extend the one held (append-only);
  one that rewrites known series is a decode error.  Catalogs of other
  instances are kept aside (a few) and switch nothing by themselves.
- The followed instance changes only when a frame of another instance can be
  read (its catalog arrived): that counts one restart, and the first delivery
  of the new instance carries ``restarted=True`` so consumers reset their
  baselines instead of computing negative deltas.  A lone frame with an
  unknown instance id therefore changes nothing.
- No single frame resets or wedges the state (docs/frame.md, "Plausibility"):
  a frame that does not continue the followed line (its interval changed,
  its monotonic clock went back, its sequence ran ahead of its monotonic
  clock, its wall clock moved against its monotonic clock), or a first frame
  far ahead of this process's wall clock, is held as *suspect*.  It is dropped
  (counted in ``suspect``) as soon as a frame continues the old line, and
  followed (counted in ``resyncs``, delivered with ``resynced=True``) once
  ``CONFIRM`` consecutive frames agree with each other and not with the old
  line, so a real clock step or suspend costs ``CONFIRM - 1`` intervals of
  delay and nothing else.  A frame whose counters or histogram buckets went
  down against the last delivered one is suspect the same way (cumulative
  values never fall within an instance), so what subscribers serve never
  goes backwards unless a delivery is marked ``restarted`` or ``resynced``.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rezolus_core.frame import BUCKETS, Catalog, DecodeError, Frame, check_ids, decode

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import NDArray

CONFIRM = 3
FUTURE_TOLERANCE_NS = 120 * 1_000_000_000
_SLACK_MIN_NS = 1_000_000_000
_DRIFT_DIVISOR = 1000
_OTHER_CATALOGS = 4


@dataclass(frozen=True)
class Delivery:
    """A readable frame with its catalog and what was lost just before it."""

    frame: Frame
    catalog: Catalog
    missed_before: int
    restarted: bool
    resynced: bool = False


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
    suspect: int = 0
    resyncs: int = 0


def _slack(interval_ns: int, span_ns: int) -> int:
    return max(2 * interval_ns, _SLACK_MIN_NS) + max(span_ns, 0) // _DRIFT_DIVISOR


def continues(anchor: Frame, last: Frame, frame: Frame) -> bool:
    """Whether ``frame`` plausibly follows ``last`` on the line that started at ``anchor``.

    The agent's interval is fixed for an instance, its monotonic clock only
    goes forward, its sequence advances one per wall-clock tick (so never
    faster than its monotonic clock, up to drift), and its wall clock keeps
    its offset to the monotonic clock (up to slew).
    """
    interval = last.interval_ns
    if frame.interval_ns != interval or frame.seq <= last.seq or frame.monotonic_ns <= last.monotonic_ns:
        return False
    span = frame.monotonic_ns - anchor.monotonic_ns
    if (frame.seq - anchor.seq) * interval > span + _slack(interval, span):
        return False
    step = (frame.timestamp_ns - frame.monotonic_ns) - (last.timestamp_ns - last.monotonic_ns)
    return abs(step) <= _slack(interval, frame.monotonic_ns - last.monotonic_ns)


def bucket_keys(frame: Frame) -> tuple[NDArray[np.int64], NDArray[np.uint64]]:
    """Every non-zero bucket of the frame as ``id * BUCKETS + index``, with its count."""
    ids = np.asarray(frame.hist_ids).astype(np.int64)
    keys = np.repeat(ids * BUCKETS, frame.hist_sizes) + np.asarray(frame.hist_indices).astype(np.int64)
    return keys, np.asarray(frame.hist_counts, np.uint64)


Buckets = tuple["NDArray[np.int64]", "NDArray[np.uint64]"]


def _counters_hold(last: Frame, frame: Frame) -> bool:
    if np.array_equal(last.counter_ids, frame.counter_ids):
        return not bool(np.any(frame.counter_values < last.counter_values))
    _, old, new = np.intersect1d(last.counter_ids, frame.counter_ids, assume_unique=True, return_indices=True)
    return not bool(np.any(frame.counter_values[new] < last.counter_values[old]))


def _buckets_hold(old: Buckets, new: Buckets) -> bool:
    (old_keys, old_counts), (new_keys, new_counts) = old, new
    if np.array_equal(old_keys, new_keys):
        return not bool(np.any(new_counts < old_counts))
    order = np.argsort(new_keys, kind="stable")
    new_keys, new_counts = new_keys[order], new_counts[order]
    present = np.isin(old_keys // BUCKETS, new_keys // BUCKETS)
    old_keys, old_counts = old_keys[present], old_counts[present]
    if old_keys.size == 0:
        return True
    where = np.searchsorted(new_keys, old_keys)
    if int(where.max()) >= new_keys.size or bool(np.any(new_keys[where] != old_keys)):
        return False
    return not bool(np.any(new_counts[where] < old_counts))


def never_falls(last: Frame, frame: Frame, buckets: tuple[Buckets, Buckets] | None = None) -> bool:
    """Whether no counter and no histogram bucket of ``frame`` is below its value in ``last``.

    A series missing from ``frame`` is not compared (its value is unknown).
    ``buckets`` are ``bucket_keys`` of ``last`` and ``frame`` when the caller has them.
    """
    old, new = buckets or (bucket_keys(last), bucket_keys(frame))
    return _counters_hold(last, frame) and _buckets_hold(old, new)


class Tracker:
    """Sequence, restart, catalog and plausibility bookkeeping for one subscription.

    ``clock`` is this process's wall clock (ns); ``None`` turns off every
    plausibility rule (for replaying frames that were checked when stored).
    """

    def __init__(
        self,
        pending_limit: int = 64,
        *,
        clock: Callable[[], int] | None = time.time_ns,
    ) -> None:
        self.stats = TrackerStats()
        self.catalog: Catalog | None = None
        self.last_error: str | None = None
        self._clock = clock
        self._instance: str | None = None
        self._anchor: Frame | None = None
        self._last: Frame | None = None
        self._restart_pending = False
        self._others: OrderedDict[str, Catalog] = OrderedDict()
        self._last_catalog_payload = b""
        self._pending: deque[Frame] = deque()
        self._pending_limit = pending_limit
        self._suspects: list[Frame] = []
        self._last_buckets: Buckets | None = None

    @property
    def instance(self) -> str | None:
        """The agent instance currently followed."""
        return self._instance

    def feed(self, payload: bytes) -> list[Delivery]:
        """Take one message; return the frames it made readable, oldest first."""
        self.stats.received += 1
        if payload == self._last_catalog_payload and self.catalog is not None:
            self.stats.catalogs += 1
            return []
        try:
            message = decode(payload)
        except DecodeError as exc:
            self._error(str(exc))
            return []
        if isinstance(message, Catalog):
            return self._on_catalog(message, bytes(payload))
        return self._on_frame(message)

    def _error(self, message: str) -> None:
        self.stats.decode_errors += 1
        self.last_error = message

    def _catalog_for(self, instance: str) -> Catalog | None:
        if instance == self._instance:
            return self.catalog
        return self._others.get(instance)

    # ---- catalogs -------------------------------------------------------

    def _on_catalog(self, catalog: Catalog, payload: bytes) -> list[Delivery]:
        self.stats.catalogs += 1
        if self._instance is None:
            self._instance = catalog.instance
        if catalog.instance == self._instance:
            held = self.catalog
            if held is not None and catalog.version >= held.version and catalog.series[: held.version] != held.series:
                self._error(f"catalog of {catalog.instance} rewrites series it announced before")
                return []
            if held is None or catalog.version >= held.version:
                self.catalog = catalog
                self._last_catalog_payload = payload
        else:
            known = self._others.get(catalog.instance)
            if known is None or catalog.version >= known.version:
                self._others[catalog.instance] = catalog
                self._others.move_to_end(catalog.instance)
                while len(self._others) > _OTHER_CATALOGS:
                    self._others.popitem(last=False)
        return self._release(catalog)

    def _release(self, catalog: Catalog) -> list[Delivery]:
        ready: list[Delivery] = []
        waiting, self._pending = self._pending, deque()
        for frame in waiting:
            if frame.instance == catalog.instance and frame.catalog_version <= catalog.version:
                ready.extend(self._on_frame(frame))
            else:
                self._pending.append(frame)
        return ready

    # ---- frames ---------------------------------------------------------

    def _wait(self, frame: Frame) -> list[Delivery]:
        self._pending.append(frame)
        if len(self._pending) > self._pending_limit:
            self._pending.popleft()
            self.stats.missed += 1
        return []

    def _on_frame(self, frame: Frame) -> list[Delivery]:
        catalog = self._catalog_for(frame.instance)
        if catalog is None or frame.catalog_version > catalog.version:
            return self._wait(frame)
        try:
            check_ids(frame, catalog)
        except DecodeError as exc:
            self._error(str(exc))
            return []
        if frame.instance != self._instance or self._last is None:
            return self._first(frame)
        if frame.seq <= self._last.seq:
            self.stats.duplicates += 1
            return []
        if self._clock is None:
            return self._deliver(frame)
        return self._follow(self._last, frame)

    def _follow(self, last: Frame, frame: Frame) -> list[Delivery]:
        """Deliver a frame that continues the followed line; hold it as suspect otherwise."""
        if self._anchor is not None and continues(self._anchor, last, frame):
            old = self._last_buckets if self._last_buckets is not None else bucket_keys(last)
            new = bucket_keys(frame)
            if never_falls(last, frame, (old, new)):
                self._drop_suspects()
                delivered = self._deliver(frame)
                self._last_buckets = new
                return delivered
        return self._suspect(frame)

    def _plausible_first(self, frame: Frame) -> bool:
        return self._clock is None or frame.timestamp_ns <= self._clock() + FUTURE_TOLERANCE_NS

    def _first(self, frame: Frame) -> list[Delivery]:
        """A frame that starts a line: the first one seen, or one of another instance."""
        if not self._plausible_first(frame):
            return self._suspect(frame)
        self._drop_suspects()
        if frame.instance != self._instance:
            self._switch(frame.instance)
        return self._deliver(frame, anchor=True)

    def _switch(self, instance: str) -> None:
        if self._instance is not None:
            self.stats.restarts += 1
            self._restart_pending = True
            if self.catalog is not None:
                self._others[self._instance] = self.catalog
        self.catalog = self._others.pop(instance, None)
        self._last_catalog_payload = b""
        self._instance = instance
        self._last = self._anchor = None

    def _suspect(self, frame: Frame) -> list[Delivery]:
        line = self._suspects
        if line and line[-1].instance == frame.instance and continues(line[0], line[-1], frame):
            line.append(frame)
        else:
            self._drop_suspects()
            self._suspects = line = [frame]
        if len(line) < CONFIRM:
            return []
        self._suspects = []
        self.stats.resyncs += 1
        if line[0].instance != self._instance:
            self._switch(line[0].instance)
        out: list[Delivery] = []
        for position, held in enumerate(line):
            out.extend(self._deliver(held, anchor=position == 0, resynced=position == 0))
        return out

    def _drop_suspects(self) -> None:
        if self._suspects:
            self.stats.suspect += len(self._suspects)
            self.last_error = f"dropped {len(self._suspects)} implausible frame(s) (see docs/frame.md)"
            self._suspects = []

    def _deliver(self, frame: Frame, *, anchor: bool = False, resynced: bool = False) -> list[Delivery]:
        catalog = self._catalog_for(frame.instance)
        assert catalog is not None  # noqa: S101 - callers checked it
        last = self._last
        missed = 0 if last is None or frame.seq <= last.seq else frame.seq - last.seq - 1
        before = len(self._pending)
        self._pending = deque(f for f in self._pending if f.instance != frame.instance or f.seq > frame.seq)
        self.stats.missed += missed + before - len(self._pending)
        self.stats.delivered += 1
        self._last, self._last_buckets = frame, None
        if anchor or self._anchor is None:
            self._anchor = frame
        restarted, self._restart_pending = self._restart_pending, False
        return [Delivery(frame, catalog, missed, restarted, resynced)]
