"""Progress while recording: a rich bar on a TTY, periodic log lines otherwise.

Invariants:
- Progress goes to stderr; stdout carries only the final summary.
- ``update`` is cheap and may be called for every row; the log-line variant
  emits at most one line per ``every_s``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from rezolus_core import log
from rezolus_core.config import format_duration

if TYPE_CHECKING:
    from rezolus_recorder.convert import ConvertResult


def human_bytes(n: int) -> str:
    """Format a byte count with a binary unit."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns


class Reporter(Protocol):
    """Where progress goes."""

    def update(self, rows: int, gaps: int, bytes_written: int, bad: int = 0) -> None:
        """Show the current totals (``bad``: bus messages dropped as undecodable or implausible)."""

    def close(self) -> None:
        """Remove the display."""


class BarReporter:
    """A rich progress bar with elapsed / remaining time, rows, gaps and bytes."""

    def __init__(self, rows_wanted: int | None) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("recording"),
            BarColumn(),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[stats]}"),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._progress.add_task("record", total=rows_wanted, stats="waiting")
        self._progress.start()

    def update(self, rows: int, gaps: int, bytes_written: int, bad: int = 0) -> None:
        """Advance the bar."""
        stats = f"{rows} rows, {gaps} gaps, {human_bytes(bytes_written)}"
        if bad:
            stats += f", {bad} bad messages"
        self._progress.update(self._task, completed=rows, stats=stats)

    def close(self) -> None:
        """Stop the live display."""
        self._progress.stop()


class LogReporter:
    """A structured log line every ``every_s`` seconds."""

    def __init__(self, rows_wanted: int | None, every_s: float) -> None:
        self._wanted = rows_wanted
        self._every = every_s
        self._last = time.monotonic()
        self._started = self._last

    def update(self, rows: int, gaps: int, bytes_written: int, bad: int = 0) -> None:
        """Log the totals if a line is due."""
        now = time.monotonic()
        if now - self._last < self._every:
            return
        self._last = now
        log.get().info(
            "progress", rows=rows, rows_wanted=self._wanted, gaps=gaps,
            journal_bytes=bytes_written, bad_messages=bad, elapsed_s=round(now - self._started, 1),
        )

    def close(self) -> None:
        """Nothing to remove."""


def _iso(ns: int | None) -> str:
    if ns is None:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat(timespec="milliseconds")


def summary(result: ConvertResult, source: str, interval_ns: int, bad_messages: int | None = None) -> str:
    """One paragraph: rows, time range, size, gaps, restarts and (when known) bad bus messages."""
    first, last = result.first_timestamp_ns, result.last_timestamp_ns
    span = f"{(last - first) / 1e9:.1f}s" if first is not None and last is not None else "0s"
    text = (
        f"Recorded {result.rows} rows at {format_duration(interval_ns)} from {source} into "
        f"{result.output} ({human_bytes(result.bytes)}), from {_iso(result.first_timestamp_ns)} "
        f"to {_iso(result.last_timestamp_ns)} ({span}); {result.gaps} gaps "
        f"({result.missed_rows} missed rows), {result.restarts} agent restarts."
    )
    if bad_messages is not None:
        text += f" {bad_messages} bad bus messages were dropped (undecodable or implausible)."
    if result.read.problem:
        text += (
            f" The journal ended in a torn record ({result.read.problem}); "
            f"{result.read.discarded_bytes} bytes were discarded."
        )
    return text
