"""The hindsight service: ingest frames into the buffer, serve snapshots.

Invariants:
- Ingestion runs on the event loop and only ever waits for the bus; snapshot
  work (reading segments, decoding, building and writing parquet) runs in a
  thread pool, so a snapshot never pauses ingestion, and several snapshots
  may run at once (each reads its own selection).
- The buffer stores the bus payloads exactly as received; a frame released by
  a late catalog or held by the tracker as suspect (never the common case) is
  re-encoded, which yields the same bytes.
- Every failure to write (buffer or snapshot) is logged, counted, kept in
  ``/status`` and reported to the requester; ingestion carries on.
- A buffer failure that repeats (a full disk loses every frame) is logged
  once per cause, then at most once a minute with its count, and once more
  with the total when frames are stored again; its ``/status`` entry counts
  the repeats instead of pushing other errors out.
- Two snapshots never target the same file: explicit names already on disk
  or in flight are refused (409), default names are unique.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import re
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from rezolus_core import log
from rezolus_core.address import ListenAddress
from rezolus_core.bus import AsyncSubscriber
from rezolus_core.config import format_duration
from rezolus_core.frame import encode_catalog, encode_frame
from rezolus_core.lifecycle import StartupError
from rezolus_hindsight import leftovers, request, snapshot
from rezolus_hindsight.buffer import Buffer
from rezolus_hindsight.request import RequestError

if TYPE_CHECKING:
    from pathlib import Path

    from rezolus_core.frame import Catalog
    from rezolus_core.tracker import Delivery
    from rezolus_core.web import Served
    from rezolus_hindsight.config import HindsightConfig

SNAPSHOT_WORKERS = 4
_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
REPEAT_LOG_S = 60.0
_NUMBERS = re.compile(r"\d+")


class HindsightService:
    """Rolling buffer, HTTP snapshots and SIGHUP."""

    name = "rezolus-hindsight"

    def __init__(self, config: HindsightConfig) -> None:
        self.config = config
        self.log = log.get()
        self.errors: deque[dict[str, Any]] = deque(maxlen=20)
        self.buffer = Buffer(
            config.directory / "buffer",
            interval_ns=config.interval_ns,
            duration_ns=config.duration_ns,
            max_bytes=config.max_bytes,
            segment_span_ns=config.segment_ns,
            on_error=functools.partial(self.error, "buffer"),
        )
        self.subscriber: AsyncSubscriber | None = None
        self.snapshots = {"written": 0, "streamed": 0, "failed": 0, "in_flight": 0}
        self.last_snapshot: dict[str, Any] | None = None
        self._executor = ThreadPoolExecutor(SNAPSHOT_WORKERS, thread_name_prefix="snapshot")
        self._reserved: set[Path] = set()
        self._tasks: set[asyncio.Future[Any]] = set()
        self._served: Served | None = None
        self._seen_catalog: Catalog | None = None
        self._catalog_payload = b""
        self._catalog_count = 0
        self._last_frame_at: float | None = None
        self._interval_warned: set[int] = set()
        self._repeating: dict[str, tuple[dict[str, Any], float]] = {}
        self.started_at = time.monotonic()

    # ---- lifecycle ------------------------------------------------------

    async def startup(self) -> None:
        """Open the buffer, subscribe to the agent and start HTTP."""
        from rezolus_hindsight import http  # noqa: PLC0415 - aiohttp loads only when serving

        try:
            self.buffer.open()
        except OSError as exc:
            where = self.config.directory
            raise StartupError(f"cannot open the buffer in {where}: {exc}") from exc
        self._prepare_output()
        self.subscriber = AsyncSubscriber(self.config.source, keys=self.config.curve)
        self._served = await http.start(self, ListenAddress(self.config.host, self.config.port))
        loop = asyncio.get_running_loop()
        self._track(asyncio.ensure_future(loop.run_in_executor(self._executor, snapshot.warm_up)))
        self.log.info(
            "buffer ready",
            directory=str(self.buffer.directory),
            rows=self.buffer.rows(),
            disk_bytes=self.buffer.disk_bytes(),
            torn_bytes_dropped=self.buffer.stats.recovered_torn_bytes,
            listen=str(self._served.listen),
            source=self.config.source,
        )

    def _prepare_output(self) -> None:
        try:
            self.config.output.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            message = f"cannot create output directory {self.config.output}: {exc.strerror}"
            self.error("output", message)
            return
        for path in leftovers.remove_stale_temps(self.config.output):
            self.log.warning("removed a snapshot a crash left unfinished", path=str(path))

    async def run(self, stopping: asyncio.Event) -> None:
        """Ingest until asked to stop."""
        ingest = asyncio.create_task(self._ingest())
        stop = asyncio.create_task(stopping.wait())
        done, _ = await asyncio.wait({ingest, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if ingest in done:
            ingest.result()
        ingest.cancel()

    async def shutdown(self) -> None:
        """Stop HTTP, let running snapshots finish, close the bus and the buffer."""
        if self._served is not None:
            await self._served.close()
        if self._tasks:
            await asyncio.wait(set(self._tasks))
        self._executor.shutdown(wait=True)
        if self.subscriber is not None:
            self.subscriber.close()
        self.buffer.close()

    def error(self, where: str, message: str) -> None:
        """Log a problem and keep it for /status (buffer problems once per cause, with a count)."""
        if where != "buffer":
            self.log.error(message, where=where)
            self.errors.append({"time": time.time(), "where": where, "message": message, "count": 1})
            return
        cause = _NUMBERS.sub("#", message)
        now = time.monotonic()
        known = self._repeating.get(cause)
        if known is None:
            entry: dict[str, Any] = {"time": time.time(), "where": where, "message": message, "count": 1}
            self.errors.append(entry)
            self._repeating[cause] = (entry, now)
            self.log.error(message, where=where)
            return
        entry, logged_at = known
        entry["count"] += 1
        entry["last_time"] = time.time()
        if now - logged_at >= REPEAT_LOG_S:
            self._repeating[cause] = (entry, now)
            self.log.error(message, where=where, count=entry["count"], repeating=True)

    def _recovered(self) -> None:
        for entry, _ in self._repeating.values():
            self.log.warning("buffer writes succeed again", where="buffer", cause=entry["message"],
                             count=entry["count"])
        self._repeating.clear()

    # ---- ingestion ------------------------------------------------------

    async def _ingest(self) -> None:
        assert self.subscriber is not None  # noqa: S101 - startup created it
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
                self._store(delivery, raw)

    def _store(self, delivery: Delivery, payload: bytes) -> None:
        self._last_frame_at = time.monotonic()
        catalog_payload = (
            self._catalog_payload
            if delivery.catalog is self._seen_catalog
            else encode_catalog(delivery.catalog)
        )
        agent_interval = delivery.frame.interval_ns
        if agent_interval and agent_interval not in self._interval_warned and (
            self.config.interval_ns < agent_interval or self.config.interval_ns % agent_interval
        ):
            self._interval_warned.add(agent_interval)
            self.error(
                "ingest",
                f"interval {format_duration(self.config.interval_ns)} is not a multiple of the "
                f"agent's {format_duration(agent_interval)}; rows will be uneven",
            )
        if self.buffer.ingest(delivery, payload, catalog_payload) and self._repeating:
            self._recovered()

    # ---- snapshots ------------------------------------------------------

    def reserve(self, name: str | None, wanted: request.Range) -> Path:
        """Reserve the output path for a snapshot (released when it is done)."""
        file_name = request.check_name(name) if name is not None else request.default_name(wanted)
        path = self.config.output / file_name
        if path in self._reserved or path.exists():
            raise RequestError(f"{file_name} already exists in the output directory", status=409)
        self._reserved.add(path)
        return path

    async def snapshot(
        self, params: dict[str, str], path: Path | None = None
    ) -> snapshot.SnapshotResult:
        """Write a snapshot of the requested range into the output directory (or ``path``)."""
        wanted = request.resolve(params, self.buffer.retained())
        target = path or self.reserve(params.get("name"), wanted)
        selection = None
        try:
            selection = self.buffer.select(wanted.start_ns, wanted.end_ns)
            if selection.rows == 0:
                raise RequestError(
                    f"no frames between {request.format_ns(wanted.start_ns)} and "
                    f"{request.format_ns(wanted.end_ns)}"
                )
            if path is None:
                self._ensure_output()
            self.snapshots["in_flight"] += 1
            loop = asyncio.get_running_loop()
            job = functools.partial(
                snapshot.write,
                selection,
                target,
                source=self.config.source,
                interval_ns=self.config.interval_ns,
            )
            selection = None  # the worker closes it
            try:
                result = await loop.run_in_executor(self._executor, job)
            finally:
                self.snapshots["in_flight"] -= 1
        except OSError as exc:
            self.snapshots["failed"] += 1
            status = 507 if exc.errno in _SPACE_ERRNOS else 500
            message = f"cannot write snapshot {target}: {exc.strerror or exc}"
            self.error("snapshot", message)
            raise RequestError(message, status=status) from exc
        except snapshot.SnapshotError as exc:
            self.snapshots["failed"] += 1
            self.error("snapshot", str(exc))
            raise RequestError(str(exc), status=500) from exc
        finally:
            if selection is not None:
                selection.close()
            self._reserved.discard(target)
        if path is not None:
            self.snapshots["streamed"] += 1
            self.log.info("snapshot streamed", rows=result.rows, bytes=result.bytes)
            return result
        self.snapshots["written"] += 1
        self.last_snapshot = describe(result)
        self.log.info("snapshot written", **self.last_snapshot)
        return result

    def _ensure_output(self) -> None:
        self.config.output.mkdir(parents=True, exist_ok=True)

    def _track(self, task: asyncio.Future[Any]) -> None:
        """Keep a background task until it ends; log it if it failed."""
        self._tasks.add(task)

        def done(finished: asyncio.Future[Any]) -> None:
            self._tasks.discard(finished)
            if not finished.cancelled() and finished.exception() is not None:
                self.error("background", f"background task failed: {finished.exception()!r}")

        task.add_done_callback(done)

    def on_sighup(self) -> None:
        """Snapshot the whole buffer into the output directory."""
        self._track(asyncio.get_running_loop().create_task(self._sighup()))

    async def _sighup(self) -> None:
        self.log.info("SIGHUP: snapshot of the whole buffer")
        try:
            await self.snapshot({})
        except RequestError as exc:
            self.error("sighup", f"SIGHUP snapshot not written: {exc}")

    # ---- status ---------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Report what /status shows."""
        tracker = self.subscriber.tracker if self.subscriber is not None else None
        retained = self.buffer.retained()
        stats = self.buffer.stats
        age = None if self._last_frame_at is None else time.monotonic() - self._last_frame_at
        return {
            "source": self.config.source,
            "interval": format_duration(self.config.interval_ns),
            "duration": format_duration(self.config.duration_ns),
            "max_bytes": self.config.max_bytes,
            "retained": None if retained is None else {
                "start": request.format_ns(retained[0]),
                "end": request.format_ns(retained[1]),
                "start_ns": retained[0],
                "end_ns": retained[1],
                "seconds": (retained[1] - retained[0]) / 1e9,
            },
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
            "snapshots": {**self.snapshots, "last": self.last_snapshot},
            "errors": list(self.errors),
            "uptime_s": time.monotonic() - self.started_at,
        }


def describe(result: snapshot.SnapshotResult) -> dict[str, Any]:
    """Describe a written snapshot as the JSON answer."""
    return {
        "path": str(result.path),
        "rows": result.rows,
        "start": request.format_ns(result.start_ns),
        "end": request.format_ns(result.end_ns),
        "start_ns": result.start_ns,
        "end_ns": result.end_ns,
        "bytes": result.bytes,
    }
