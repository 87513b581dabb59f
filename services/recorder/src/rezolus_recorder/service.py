"""The recording service: subscribe, pick one frame per grid slot, journal it, finish as parquet.

Invariants:
- Every picked frame is appended to the journal (with the catalog it needs
  just before it) the moment it is picked; nothing is held only in memory.
- Each source has its own subscription (tracker), grid and catalog journal
  state; its records are marked with its index (``JournalWriter.switch``).
  The recording fails for lack of frames only when no source sends any; a
  source that stays silent is reported and recorded as absent.
- The journal is fsynced at least once a second while rows arrive and on
  every idle tick, so a power cut loses at most about a second of rows.
- A failure (no agent, interval too fine, disk full) is recorded in
  ``failure`` with a one-line message and an exit code; rows recorded
  before it are still converted (or, if that fails too, left in the
  journal for ``--recover``).
- ``force_exit`` (second signal) only fsyncs the journal: the process then
  dies and the journal is recoverable.
- Bus messages dropped by the tracker (undecodable, outside the contract or
  implausible) are counted in ``bad_messages``: logged when the count grows
  (at most once per progress interval), shown in the progress, the summary
  and the file metadata (``bus_messages``, ``bus_decode_errors``,
  ``bus_suspect_frames``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rezolus_core import log
from rezolus_core.bus import AsyncSubscriber, BusError
from rezolus_core.config import EXIT_CONFIG, format_duration
from rezolus_core.frame import encode_frame
from rezolus_core.lifecycle import EXIT_FAILURE, StartupError
from rezolus_recorder import convert, journal
from rezolus_recorder.catalogs import CatalogJournal
from rezolus_recorder.progress import BarReporter, LogReporter, Reporter
from rezolus_recording.grid import Grid

if TYPE_CHECKING:
    import pathlib

    from rezolus_core.curve import ClientKeys
    from rezolus_core.tracker import Delivery

_TICK_S = 0.2


@dataclass(frozen=True)
class Options:
    """Everything a recording needs, validated by the command line."""

    sources: tuple[str, ...]
    interval_ns: int
    duration_ns: int | None
    output: pathlib.Path
    connect_timeout_s: float
    progress_every_s: float
    tty: bool
    curve: ClientKeys | None = None

    @property
    def source(self) -> str:
        """The first (with one source: the) agent endpoint."""
        return self.sources[0]


@dataclass
class _Source:
    """One followed agent: its subscription, its grid and what the journal holds of it."""

    index: int
    endpoint: str
    grid: Grid
    subscriber: AsyncSubscriber | None = None
    catalogs: CatalogJournal = field(default_factory=CatalogJournal)
    agent_interval: int | None = None
    last_frame: float = 0.0
    stalled: bool = False
    silent_reported: bool = False


class RecorderFailure(Exception):  # noqa: N818 - it is a failure report, not an error class
    """Recording cannot go on; the message is for the operator."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


class Recorder:
    """One recording session, driven by ``rezolus_core.lifecycle.run_service``."""

    name = "rezolus-recorder"

    def __init__(self, options: Options) -> None:
        self.options = options
        duration = options.duration_ns
        rows = None if duration is None else max(1, duration // options.interval_ns)
        self.sources = [
            _Source(i, endpoint, Grid(options.interval_ns, rows=rows))
            for i, endpoint in enumerate(options.sources)
        ]
        self.grid = self.sources[0].grid
        self.journal_path = journal.journal_path(options.output)
        self.failure: RecorderFailure | None = None
        self.result: convert.ConvertResult | None = None
        self.rows = 0
        self.gaps = 0
        self._journal: journal.JournalWriter | None = None
        self._log = log.get()
        self._bad_logged = 0
        self._bad_logged_at = 0.0

    async def startup(self) -> None:
        """Open the journal and connect to the agent."""
        header = {
            "source": self.options.source,
            "sources": list(self.options.sources),
            "interval_ns": self.options.interval_ns,
            "duration_ns": self.options.duration_ns,
            "output": str(self.options.output),
            "started_ns": time.time_ns(),
            "host": {},
        }
        try:
            self._journal = journal.JournalWriter(self.journal_path, header)
        except journal.JournalError as exc:
            raise StartupError(str(exc)) from exc
        try:
            for source in self.sources:
                source.subscriber = AsyncSubscriber(source.endpoint, keys=self.options.curve)
        except BusError:
            self._close_subscribers()
            self._discard_journal()
            raise

    def _close_subscribers(self) -> None:
        for source in self.sources:
            if source.subscriber is not None:
                source.subscriber.close()

    def _discard_journal(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None
            self.journal_path.unlink(missing_ok=True)

    async def run(self, stopping: asyncio.Event) -> None:
        """Record until the duration is over, a signal arrives or something fails."""
        options = self.options
        self._log.info(
            "recording", source=" ".join(options.sources), output=str(options.output),
            journal=str(self.journal_path), interval=format_duration(options.interval_ns),
            duration=None if options.duration_ns is None else format_duration(options.duration_ns),
        )
        queue: asyncio.Queue[tuple[_Source, Delivery]] = asyncio.Queue()
        readers = [asyncio.create_task(self._read(source, queue)) for source in self.sources]
        wanted = self.grid.rows_wanted
        wanted = None if wanted is None else wanted * len(self.sources)
        reporter: Reporter = (
            BarReporter(wanted) if self.options.tty else LogReporter(wanted, self.options.progress_every_s)
        )
        try:
            await self._loop(queue, stopping, reporter)
        except RecorderFailure as exc:
            self.failure = exc
        except journal.JournalError as exc:
            self.failure = RecorderFailure(str(exc))
        finally:
            reporter.close()
            for reader in readers:
                reader.cancel()
            for reader in readers:
                with contextlib.suppress(asyncio.CancelledError):
                    await reader

    @staticmethod
    async def _read(source: _Source, queue: asyncio.Queue[tuple[_Source, Delivery]]) -> None:
        assert source.subscriber is not None  # noqa: S101 - startup succeeded
        async for delivery in source.subscriber.deliveries():
            queue.put_nowait((source, delivery))

    async def _loop(
        self, queue: asyncio.Queue[tuple[_Source, Delivery]], stopping: asyncio.Event, reporter: Reporter
    ) -> None:
        started = time.monotonic()
        while not stopping.is_set() and not self._done(started):
            try:
                item: tuple[_Source, Delivery] | None = await asyncio.wait_for(queue.get(), _TICK_S)
            except TimeoutError:
                item = None
            now = time.monotonic()
            if item is not None:
                source, delivery = item
                source.last_frame = now
                if source.stalled:
                    self._log.info("agent is publishing again", source=source.endpoint)
                    source.stalled = False
                self._take(source, delivery)
            self._check_silence(now, started)
            assert self._journal is not None  # noqa: S101 - startup succeeded
            self._journal.maybe_sync()
            self._note_bad(now)
            reporter.update(self.rows, self.gaps, self._journal.bytes_written, self.bad_messages)
            deadlines = [d for s in self.sources if (d := s.grid.deadline_ns()) is not None]
            grace = self.options.interval_ns + 2_000_000_000
            if deadlines and time.time_ns() > max(deadlines) + grace:
                self._log.warning("the agent sent nothing for the last rows; stopping")
                break

    def _done(self, started: float) -> bool:
        """Every source that sent frames has all its rows (and the others had their chance)."""
        running = [s for s in self.sources if s.agent_interval is not None]
        if not running or not all(s.grid.done for s in running):
            return False
        return len(running) == len(self.sources) or time.monotonic() - started > self.options.connect_timeout_s

    def _check_silence(self, now: float, started: float) -> None:
        timeout = self.options.connect_timeout_s
        if now - started > timeout and all(s.agent_interval is None for s in self.sources):
            where = " or ".join(s.endpoint for s in self.sources)
            raise RecorderFailure(f"no frames from {where} within {timeout:g}s; is the agent running there?")
        for source in self.sources:
            if source.agent_interval is None:
                if now - started > timeout and not source.silent_reported:
                    source.silent_reported = True
                    self._log.warning(
                        "no frames from this source yet; recording the others", source=source.endpoint,
                        waited_s=round(now - started, 1),
                    )
            elif not source.stalled and now - source.last_frame > max(5.0, 3 * source.agent_interval / 1e9):
                source.stalled = True
                self._log.warning(
                    "no frames from the agent; still waiting (rows missing now will be gaps)",
                    source=source.endpoint, silent_s=round(now - source.last_frame, 1),
                )

    @property
    def bad_messages(self) -> int:
        """Bus messages dropped so far: undecodable, outside the contract or implausible."""
        stats = [s.subscriber.tracker.stats for s in self.sources if s.subscriber is not None]
        return sum(s.decode_errors + s.suspect for s in stats)

    def _note_bad(self, now: float) -> None:
        bad = self.bad_messages
        if bad > self._bad_logged and now - self._bad_logged_at >= self.options.progress_every_s:
            errors = [s.subscriber.tracker.last_error for s in self.sources if s.subscriber is not None]
            self._log.warning(
                "bad bus messages dropped", count=bad, new=bad - self._bad_logged,
                last_error=next((e for e in errors if e), None),
            )
            self._bad_logged, self._bad_logged_at = bad, now

    def _bus_metadata(self) -> dict[str, str]:
        stats = [s.subscriber.tracker.stats for s in self.sources if s.subscriber is not None]
        if not stats:
            return {}
        return {
            "bus_messages": str(sum(s.received for s in stats)),
            "bus_decode_errors": str(sum(s.decode_errors for s in stats)),
            "bus_suspect_frames": str(sum(s.suspect for s in stats)),
        }

    def _take(self, source: _Source, delivery: Delivery) -> None:
        frame = delivery.frame
        if source.agent_interval is None and frame.interval_ns > self.options.interval_ns:
            raise RecorderFailure(
                f"--interval {format_duration(self.options.interval_ns)} is finer than the "
                f"agent's interval {format_duration(frame.interval_ns)} at {source.endpoint}; "
                f"use --interval {format_duration(frame.interval_ns)} or coarser",
                EXIT_CONFIG,
            )
        if source.agent_interval is not None and frame.interval_ns != source.agent_interval:
            self._log.warning(
                "the agent's interval changed", was=format_duration(source.agent_interval),
                now=format_duration(frame.interval_ns), source=source.endpoint,
            )
        source.agent_interval = frame.interval_ns
        pick = source.grid.offer(
            frame.timestamp_ns, frame.interval_ns, seq=frame.seq, instance=frame.instance
        )
        if pick is None:
            return
        assert self._journal is not None  # noqa: S101 - startup succeeded
        self._journal.switch(source.index)
        for kind, payload in source.catalogs.records(delivery.catalog):
            self._journal.append(kind, payload)
        if delivery.restarted:
            self._log.warning("the agent restarted; recording continues", instance=frame.instance,
                              source=source.endpoint)
        self._journal.append_row(pick.slot, frame.timestamp_ns, encode_frame(frame))
        self.rows += 1
        if pick.missed:
            self.gaps += 1
            self._log.warning("gap in the recording", missed_rows=pick.missed, source=source.endpoint)

    async def shutdown(self) -> None:
        """Close the subscription and turn the journal into the parquet file."""
        self._note_bad(float("inf"))
        self._close_subscribers()
        if self._journal is None:
            return
        try:
            self._journal.close()
        finally:
            self._journal = None
        if self.rows == 0:
            self.journal_path.unlink(missing_ok=True)
            return
        try:
            self.result = await asyncio.to_thread(
                convert.convert, self.journal_path, self.options.output, extra_metadata=self._bus_metadata()
            )
        except (OSError, journal.JournalError) as exc:
            reason = os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno else exc
            message = (
                f"cannot write {self.options.output}: {reason}; the rows recorded so far are "
                f"kept in {self.journal_path} (run rezolus-recorder --recover {self.journal_path})"
            )
            self.failure = RecorderFailure(
                f"{self.failure}; {message}" if self.failure else message
            )

    @property
    def exit_code(self) -> int:
        """The code the process ends with: the failure's, or 0."""
        return self.failure.code if self.failure is not None else 0

    def force_exit(self) -> None:
        """Make the journal durable before the process dies (second signal)."""
        if self._journal is not None:
            with contextlib.suppress(journal.JournalError):
                self._journal.sync()
