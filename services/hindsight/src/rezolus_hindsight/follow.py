"""One followed agent: its subscription, its own tracker and its own rolling buffer.

Invariants:
- Every source has its own subscription (so its own tracker: catalog,
  restarts, gaps) and its own buffer directory: frames of one agent never
  enter another agent's buffer, and a silent or restarting agent changes
  nothing for the others.
- With one source the buffer lives in ``DIRECTORY/buffer`` (the layout of a
  single-source hindsight, unchanged); with several, each lives in
  ``DIRECTORY/buffer/<endpoint as a file name>`` and gets an equal share of
  ``max_bytes``, so the total disk use stays within ``max_bytes``.
- The buffer stores the bus payloads exactly as received; a frame released
  by a late catalog or held by the tracker as suspect (never the common case)
  is re-encoded, which yields the same bytes.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from rezolus_core.bus import AsyncSubscriber
from rezolus_core.config import format_duration
from rezolus_core.frame import encode_catalog, encode_frame

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from rezolus_core.curve import ClientKeys
    from rezolus_core.frame import Catalog
    from rezolus_core.tracker import Delivery
    from rezolus_hindsight.buffer import Buffer

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def buffer_directory(directory: Path, source: str, *, many: bool) -> Path:
    """Where the buffer of ``source`` lives under hindsight's ``directory``."""
    base = directory / "buffer"
    if not many:
        return base
    return base / _UNSAFE.sub("_", source.removeprefix("tcp://")).strip("_.")


class Follow:
    """Ingests one agent's frames into its buffer."""

    def __init__(
        self,
        source: str,
        buffer: Buffer,
        *,
        interval_ns: int,
        on_error: Callable[[str, str], None],
        on_stored: Callable[[], None],
    ) -> None:
        self.source = source
        self.buffer = buffer
        self.interval_ns = interval_ns
        self.subscriber: AsyncSubscriber | None = None
        self.last_frame_at: float | None = None
        self._on_error = on_error
        self._on_stored = on_stored
        self._seen_catalog: Catalog | None = None
        self._catalog_payload = b""
        self._catalog_count = 0
        self._interval_warned: set[int] = set()

    def subscribe(self, keys: ClientKeys | None) -> None:
        """Connect to the agent (ZeroMQ connects in the background)."""
        self.subscriber = AsyncSubscriber(self.source, keys=keys)

    def close(self) -> None:
        """Close the subscription."""
        if self.subscriber is not None:
            self.subscriber.close()

    async def ingest(self) -> None:
        """Store every delivered frame until the subscription is closed or the task cancelled."""
        assert self.subscriber is not None  # noqa: S101 - subscribe ran first
        tracker = self.subscriber.tracker
        async for payload, deliveries in self.subscriber.messages():
            is_catalog = tracker.stats.catalogs != self._catalog_count
            self._catalog_count = tracker.stats.catalogs
            current = tracker.catalog
            if is_catalog and current is not None and current is not self._seen_catalog:
                self._seen_catalog, self._catalog_payload = current, payload
            for delivery in deliveries:
                # Only the last delivery of a frame message is that message; earlier ones were held.
                raw = payload if not is_catalog and delivery is deliveries[-1] else encode_frame(delivery.frame)
                self.store(delivery, raw)

    def store(self, delivery: Delivery, payload: bytes) -> None:
        """Offer one delivered frame (and its encoded bus payload) to the buffer."""
        self.last_frame_at = time.monotonic()
        catalog_payload = (
            self._catalog_payload
            if delivery.catalog is self._seen_catalog
            else encode_catalog(delivery.catalog)
        )
        agent_interval = delivery.frame.interval_ns
        if agent_interval and agent_interval not in self._interval_warned and (
            self.interval_ns < agent_interval or self.interval_ns % agent_interval
        ):
            self._interval_warned.add(agent_interval)
            self._on_error(
                "ingest",
                f"interval {format_duration(self.interval_ns)} is not a multiple of the "
                f"agent's {format_duration(agent_interval)} at {self.source}; rows will be uneven",
            )
        if self.buffer.ingest(delivery, payload, catalog_payload):
            self._on_stored()

    def status(self) -> dict[str, Any]:
        """What /status shows about this agent."""
        tracker = self.subscriber.tracker if self.subscriber is not None else None
        stats = self.buffer.stats
        age = None if self.last_frame_at is None else time.monotonic() - self.last_frame_at
        catalog = tracker.catalog if tracker is not None else None
        return {
            "source": self.source,
            "hostname": catalog.host.get("hostname", "") if catalog is not None else "",
            "rows": self.buffer.rows(),
            "disk_bytes": self.buffer.disk_bytes(),
            "segments": len(self.buffer.segments),
            "frames_received": tracker.stats.delivered if tracker else 0,
            "frames_missed": tracker.stats.missed if tracker else 0,
            "frames_stored": stats.stored,
            "frames_skipped": stats.skipped,
            "frames_refused": stats.refused,
            "decode_errors": tracker.stats.decode_errors if tracker else 0,
            "suspect_frames": tracker.stats.suspect if tracker else 0,
            "agent_restarts": tracker.stats.restarts if tracker else 0,
            "last_frame_age_s": age,
            "write_errors": stats.write_errors,
            "segments_dropped": stats.segments_dropped,
            "recovered_torn_bytes": stats.recovered_torn_bytes,
        }
