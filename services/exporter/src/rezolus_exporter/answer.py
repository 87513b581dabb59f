"""/metrics answers: the agent's part encoded (and gzipped) once per frame and format, shared by every scrape.

An answer is the agent's families followed by the exporter's own, in the
order the registry collects them, then the format's end (``# EOF`` for
OpenMetrics).  Only the own families (a dozen samples: frame age, scrape
durations) change between two scrapes of one frame.

Invariants:
- The agent part is encoded once per window (``AgentCollector.current``'s
  key) and format, and reused by every scrape of that window: text through
  ``fasttext`` (byte-identical to the library's encoders), protobuf through
  ``protobuf.parts``.  Own families are encoded per scrape, so the body is
  exactly the encoding of the whole answer built from scratch (tested for
  every format, frame by frame).
- Gzip: the agent part is compressed once per window into a gzip stream that
  is left open; a scrape copies the compressor (``zlib``'s ``copy``), adds
  its own families and the end and closes the copy.  The body is one
  ordinary gzip stream whose content is the uncompressed answer.
- ``prerender`` builds the parts of the formats asked for in the last
  ``RECENT_S`` as a frame arrives, yielding to the event loop between
  chunks (and letting whatever else is ready, i.e. scrapes, go first); a
  scrape that comes while the newest window's parts are being built gets the
  last complete part of the same agent instance (the previous frame's,
  whole, never a mix).  It runs only while scrapes come at least
  about as often as frames, so a fast agent with slow scrapers costs no
  extra work: then the first scrape of a frame builds its part.  "As often"
  is the mean of the last ``GAPS`` gaps between scrapes, each counted as at
  most two agent intervals: the gaps of scrapes at a steady rate telescope
  (a scrape early or late by any phase moves the mean by at most
  1/``GAPS`` of an interval), and one long pause moves it by at most two
  intervals/``GAPS``, so neither switches prerendering off; scrapes steadily
  slower than frames by more than 1/0.9 do.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any, TypeVar

from rezolus_exporter import fasttext, protobuf

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Iterator

    from prometheus_client.core import Metric
    from prometheus_client.registry import Collector

    from rezolus_exporter.collector import AgentCollector, WindowKey

T = TypeVar("T")
PROTOBUF = "protobuf"
SLICE_S = 0.002
IDLE_S = 0.0002
MAX_YIELDS = 50
GZIP_CHUNK = 1 << 16
GAPS = 16
_GZIP_WBITS = 31  # zlib's deflate with a gzip header and trailer


@dataclass
class _Part:
    """The agent part of one format for one window."""

    key: WindowKey | None
    body: bytes
    gzip_head: bytes = b""
    gzip: zlib._Compress | None = None  # after ``body``, not flushed


@dataclass
class _Format:
    """One format: how it encodes families, and the part of the current window."""

    encoder: Callable[[Collector], bytes] | None
    end: bytes
    part: _Part | None = None
    used: float = 0.0
    gzipped: bool = False


@dataclass
class Answers:
    """The cached agent parts of every format asked for, and the scrape rhythm."""

    agent: AgentCollector | None
    own: Collector
    gzip_level: int = 1
    clock: Callable[[], float] = time.monotonic
    templates: fasttext.Templates = field(default_factory=fasttext.Templates)
    RECENT_S = 60.0
    _formats: dict[Any, _Format] = field(default_factory=dict)
    _scraped_at: deque[float] = field(default_factory=lambda: deque(maxlen=GAPS + 1))
    _building: WindowKey | None = None

    def answer(self, encoder: Callable[[Collector], bytes] | None, *, gzipped: bool) -> bytes:
        """The whole body for one scrape in this format (``None``: protobuf), gzip-compressed if asked."""
        now = self.clock()
        self._scraped_at.append(now)
        fmt = self._format(encoder)
        fmt.used = now
        fmt.gzipped = fmt.gzipped or gzipped
        part = self._part(fmt)
        tail = b"".join(self._encode(fmt, self.own.collect())) + fmt.end
        if not gzipped:
            return part.body + tail
        if part.gzip is None:
            for _ in self._compress(part):
                pass
        assert part.gzip is not None  # noqa: S101 - _compress set it
        closing = part.gzip.copy()
        return part.gzip_head + closing.compress(tail) + closing.flush()

    def _format(self, encoder: Callable[[Collector], bytes] | None) -> _Format:
        key = PROTOBUF if encoder is None else fasttext.format_key(encoder)
        fmt = self._formats.get(key)
        if fmt is None:
            end = b"" if encoder is None else fasttext.end_of(encoder).encode("utf-8")
            fmt = self._formats[key] = _Format(encoder, end)
        return fmt

    def _current(self) -> tuple[WindowKey | None, list[Metric]]:
        return (None, []) if self.agent is None else self.agent.current()

    def _part(self, fmt: _Format) -> _Part:
        key = None if self.agent is None else self.agent.key()
        part = fmt.part
        if part is not None and part.key == key:
            return part
        if (
            part is not None
            and part.key is not None
            and key is not None
            and key == self._building
            and part.key[0] == key[0]
        ):
            return part  # the newest window's part is being built: the previous one, whole
        key, families = self._current()
        part = _Part(key, b"".join(self._encode(fmt, families)))
        self.templates.sweep()
        fmt.part = part
        return part

    def _encode(self, fmt: _Format, families: Iterable[Metric]) -> Iterator[bytes]:
        if fmt.encoder is None:
            return protobuf.parts(families)
        return (text.encode("utf-8") for text in fasttext.parts(families, fmt.encoder, self.templates))

    def _compress(self, part: _Part) -> Iterator[None]:
        """Compress the part's body into its open gzip stream, pausing between chunks."""
        compressor = zlib.compressobj(self.gzip_level, zlib.DEFLATED, _GZIP_WBITS)
        head: list[bytes] = []
        for start in range(0, len(part.body), GZIP_CHUNK):
            head.append(compressor.compress(part.body[start : start + GZIP_CHUNK]))
            yield
        part.gzip_head, part.gzip = b"".join(head), compressor

    def scrapes_keep_up(self, interval_s: float) -> bool:
        """Whether the recent scrapes came at least about as often as frames (every ``interval_s``)."""
        times = self._scraped_at
        if len(times) < 2:
            return False
        gaps = [min(later - earlier, 2 * interval_s) for earlier, later in pairwise(times)]
        return 0.9 * sum(gaps) <= interval_s * len(gaps)

    async def prerender(self, interval_s: float) -> None:
        """Build the current window's parts of the recently asked formats (frames every ``interval_s``)."""
        if not self.scrapes_keep_up(interval_s):
            return
        now = self.clock()
        for key, fmt in list(self._formats.items()):
            if now - fmt.used > self.RECENT_S:
                del self._formats[key]
        window = None if self.agent is None else self.agent.key()
        if window is None or self.agent is None:
            return
        self._building = window
        try:
            async for _ in _sliced(self.agent.prepare()):
                pass
            window, families = self._current()
            for fmt in list(self._formats.values()):
                if fmt.part is not None and fmt.part.key == window:
                    continue  # a scrape built it meanwhile
                chunks = [chunk async for chunk in _sliced(self._encode(fmt, families))]
                self.templates.sweep()
                part = _Part(window, b"".join(chunks))
                if fmt.gzipped:
                    async for _ in _sliced(self._compress(part)):
                        pass
                fmt.part = part
        finally:
            self._building = None


async def _sliced(items: Iterator[T]) -> AsyncIterator[T]:
    """The items, with a pause for the event loop whenever ``SLICE_S`` of work has passed."""
    started = time.perf_counter()
    for item in items:
        yield item
        if time.perf_counter() - started > SLICE_S:
            await _pause()
            started = time.perf_counter()


async def _pause() -> None:
    """Let everything else the event loop has ready run first (a scrape takes a few loop turns).

    One turn of the loop that ran nothing but this task comes back within
    ``IDLE_S``; a slower one ran something else, so yield again (at most
    ``MAX_YIELDS`` times, so a busy loop still lets the frame's work go on).
    """
    for _ in range(MAX_YIELDS):
        started = time.perf_counter()
        await asyncio.sleep(0)
        if time.perf_counter() - started < IDLE_S:
            return
