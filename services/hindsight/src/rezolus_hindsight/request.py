"""Validation of snapshot requests: time ranges and file names.

Invariants:
- Every problem raises ``RequestError`` with an HTTP status and a one-line
  message meant for the operator; nothing here touches the disk.
- Times are Unix seconds (``1700000000`` or ``1700000000.25``), integer
  nanoseconds (``1700000000250000000``: 16 or more digits, which as seconds
  would lie past 2262, or any integer with ``ns``), or RFC 3339 with a zone
  (``2026-11-25T09:00:00.5Z``), kept to the nanosecond; anything
  outside ``0 .. 2**63 - 1`` ns is refused, as are negative or zero ``last``.
- ``last`` counts back from the newest stored frame, not from the clock, so
  it finds the data of an agent that stopped a while ago.
- A snapshot name is one plain file name (letters, digits, ``.``, ``_``,
  ``-``; no leading dot, no ``..``); paths, absolute or relative, are refused,
  so nothing is ever written outside the output directory.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from rezolus_core.config import parse_duration

MAX_NS = 2**63 - 1
_NS = 1_000_000_000
_NANOS = re.compile(r"^(\d{16,20})$|^(\d{1,20})ns$")
_UNIX = re.compile(r"^\d{1,20}(\.\d{1,9})?$")
_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$"
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
PARAMETERS = frozenset({"last", "start", "end", "name"})


class RequestError(ValueError):
    """A request that cannot be served as asked; ``status`` is the HTTP code."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Range:
    """A closed range of timestamps in nanoseconds."""

    start_ns: int
    end_ns: int


def parse_time(key: str, text: str) -> int:
    """Parse Unix seconds or RFC 3339 into nanoseconds since the epoch."""
    text = text.strip()
    nanos = _NANOS.match(text)
    if nanos:
        ns = int(nanos.group(1) or nanos.group(2))
    elif _UNIX.match(text):
        try:
            ns = int(Decimal(text) * _NS)
        except InvalidOperation as exc:
            raise RequestError(f"{key}={text!r} is not a time") from exc
    else:
        match = _RFC3339.match(text)
        if match is None:
            raise RequestError(
                f"{key}={text[:64]!r} is not Unix seconds or RFC 3339 (2026-11-25T09:00:00Z)"
            )
        date, clock, fraction, zone = match.groups()
        zone = "+00:00" if zone in ("Z", "z") else zone
        try:
            moment = datetime.fromisoformat(f"{date}T{clock}{zone}")
        except ValueError as exc:
            raise RequestError(f"{key}={text!r} is not a valid time: {exc}") from exc
        seconds = int((moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())
        ns = seconds * _NS + int((fraction or "0").ljust(9, "0"))
    if not 0 <= ns <= MAX_NS:
        raise RequestError(f"{key}={text!r} is outside the representable range (1970..2262)")
    return ns


def parse_last(text: str) -> int:
    """Parse a duration like ``5m`` into nanoseconds."""
    try:
        ns = parse_duration(text)
    except ValueError as exc:
        raise RequestError(f"last={text[:64]!r}: {exc}") from exc
    if ns <= 0:
        raise RequestError(f"last={text!r} must be longer than zero")
    if ns > MAX_NS:
        raise RequestError(f"last={text!r} is too large")
    return ns


def resolve(params: dict[str, str], retained: tuple[int, int] | None) -> Range:
    """Resolve the requested range against what the buffer retains."""
    unknown = sorted(set(params) - PARAMETERS)
    if unknown:
        raise RequestError(f"unknown parameter {unknown[0]!r}; use last, start, end or name")
    if "last" in params and ("start" in params or "end" in params):
        raise RequestError("give either last or start/end, not both")
    start = parse_time("start", params["start"]) if "start" in params else None
    end = parse_time("end", params["end"]) if "end" in params else None
    last = parse_last(params["last"]) if "last" in params else None
    if start is not None and end is not None and start > end:
        raise RequestError(f"start ({params['start']}) is after end ({params['end']})")
    if retained is None:
        raise RequestError("the buffer holds no frames yet", status=409)
    oldest, newest = retained
    if last is not None:
        start = max(0, newest - last)
    start = oldest if start is None else start
    end = newest if end is None else end
    if end < oldest or start > newest:
        raise RequestError(
            f"range {format_ns(start)} .. {format_ns(end)} is outside the buffer, "
            f"which holds {format_ns(oldest)} .. {format_ns(newest)}"
        )
    return Range(max(start, oldest), min(end, newest))


def check_name(name: str) -> str:
    """Check a snapshot file name; append ``.parquet`` when missing."""
    if not _NAME.fullmatch(name) or ".." in name:
        raise RequestError(
            f"name={name[:64]!r} must be a plain file name (letters, digits, '.', '_', '-'), "
            "not a path"
        )
    return name if name.endswith(".parquet") else f"{name}.parquet"


def default_name(requested: Range) -> str:
    """Make a unique file name that says what range the snapshot covers."""
    stamp = "%Y%m%dT%H%M%SZ"
    first = datetime.fromtimestamp(requested.start_ns / _NS, UTC).strftime(stamp)
    last = datetime.fromtimestamp(requested.end_ns / _NS, UTC).strftime(stamp)
    return f"hindsight-{first}-{last}-{uuid.uuid4().hex[:8]}.parquet"


def format_ns(ns: int) -> str:
    """Format a timestamp as RFC 3339 (UTC, nanoseconds)."""
    seconds, fraction = divmod(ns, _NS)
    moment = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{moment}.{fraction:09d}Z"
