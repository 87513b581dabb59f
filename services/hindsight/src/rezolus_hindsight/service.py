"""The hindsight service: ingest frames into the buffer, serve snapshots.

Invariants:
- Each source is followed on its own (``follow.Follow``: subscription,
  tracker, buffer); a snapshot covers every source, one row per stored
  frame, each row naming its agent in ``host``.
- Ingestion runs on the event loop and only ever waits for the bus; snapshot
  work (reading segments, decoding, building and writing parquet) runs in a
  thread pool, so a snapshot never pauses ingestion, and several snapshots
  may run at once (each reads its own selection).
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
from rezolus_core.config import format_duration
from rezolus_core.lifecycle import StartupError
from rezolus_hindsight import leftovers, request, snapshot
from rezolus_hindsight.buffer import Buffer
from rezolus_hindsight.follow import Follow, buffer_directory
from rezolus_hindsight.request import RequestError

if TYPE_CHECKING:
    from pathlib import Path

    from rezolus_core.web import Served
    from rezolus_hindsight.config import HindsightConfig

SNAPSHOT_WORKERS = 4
_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
REPEAT_LOG_S = 60.0
_NUMBERS = re.compile(r"\d+")
_SUMMED = (
    "rows", "disk_bytes", "segments", "frames_received", "frames_missed", "frames_stored",
    "frames_skipped", "frames_refused", "decode_errors", "suspect_frames", "agent_restarts",
    "write_errors", "segments_dropped", "recovered_torn_bytes",
)


class HindsightService:
    """Rolling buffer, HTTP snapshots and SIGHUP."""

    name = "rezolus-hindsight"

    def __init__(self, config: HindsightConfig) -> None:
        self.config = config
        self.log = log.get()
        self.errors: deque[dict[str, Any]] = deque(maxlen=20)
        many = len(config.sources) > 1
        self.follows = [
            Follow(
                source,
                Buffer(
                    buffer_directory(config.directory, source, many=many),
                    interval_ns=config.interval_ns,
                    duration_ns=config.duration_ns,
                    max_bytes=config.max_bytes // len(config.sources),
                    segment_span_ns=config.segment_ns,
                    on_error=functools.partial(self._buffer_error, source if many else ""),
                ),
                interval_ns=config.interval_ns,
                on_error=self.error,
                on_stored=self._stored,
            )
            for source in config.sources
        ]
        self.buffer = self.follows[0].buffer
        self.snapshots = {"written": 0, "streamed": 0, "failed": 0, "in_flight": 0}
        self.last_snapshot: dict[str, Any] | None = None
        self._executor = ThreadPoolExecutor(SNAPSHOT_WORKERS, thread_name_prefix="snapshot")
        self._reserved: set[Path] = set()
        self._tasks: set[asyncio.Future[Any]] = set()
        self._served: Served | None = None
        self._repeating: dict[str, tuple[dict[str, Any], float]] = {}
        self.started_at = time.monotonic()

    # ---- lifecycle ------------------------------------------------------

    async def startup(self) -> None:
        """Open the buffer, subscribe to the agent and start HTTP."""
        from rezolus_hindsight import http  # noqa: PLC0415 - aiohttp loads only when serving

        for follow in self.follows:
            try:
                follow.buffer.open()
            except OSError as exc:
                where = follow.buffer.directory
                raise StartupError(f"cannot open the buffer in {where}: {exc}") from exc
        self._prepare_output()
        for follow in self.follows:
            follow.subscribe(self.config.curve)
        self._served = await http.start(self, ListenAddress(self.config.host, self.config.port))
        for follow in self.follows:
            self.log.info(
                "buffer ready",
                directory=str(follow.buffer.directory),
                rows=follow.buffer.rows(),
                disk_bytes=follow.buffer.disk_bytes(),
                torn_bytes_dropped=follow.buffer.stats.recovered_torn_bytes,
                listen=str(self._served.listen),
                source=follow.source,
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
        """Ingest from every source until asked to stop."""
        ingests = {asyncio.create_task(follow.ingest()) for follow in self.follows}
        stop = asyncio.create_task(stopping.wait())
        done, _ = await asyncio.wait({*ingests, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        for ingest in ingests:
            ingest.cancel()
        for ingest in ingests & done:
            ingest.result()

    async def shutdown(self) -> None:
        """Stop HTTP, let running snapshots finish, close the bus and the buffer."""
        if self._served is not None:
            await self._served.close()
        if self._tasks:
            await asyncio.wait(set(self._tasks))
        self._executor.shutdown(wait=True)
        for follow in self.follows:
            follow.close()
            follow.buffer.close()

    def _buffer_error(self, source: str, message: str) -> None:
        self.error("buffer", f"{source}: {message}" if source else message)

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

    def _stored(self) -> None:
        if self._repeating:
            self._recovered()

    def retained(self) -> tuple[int, int] | None:
        """Oldest and newest retained timestamps over every source's buffer, if any."""
        spans = [r for f in self.follows if (r := f.buffer.retained()) is not None]
        return (min(r[0] for r in spans), max(r[1] for r in spans)) if spans else None

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
        wanted = request.resolve(params, self.retained())
        target = path or self.reserve(params.get("name"), wanted)
        selection = None
        try:
            selection = snapshot.Selections([])
            for follow in self.follows:
                selection.add(follow.source, follow.buffer.select(wanted.start_ns, wanted.end_ns))
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
        """Report what /status shows: totals over every source, then each source's own."""
        retained = self.retained()
        sources = [follow.status() for follow in self.follows]
        ages = [s["last_frame_age_s"] for s in sources if s["last_frame_age_s"] is not None]
        return {
            "source": " ".join(self.config.sources),
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
            **{key: sum(s[key] for s in sources) for key in _SUMMED},
            "last_frame_age_s": max(ages) if ages else None,
            "sources": sources,
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
