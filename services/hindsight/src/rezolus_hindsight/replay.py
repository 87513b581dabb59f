"""Replaying one source's stored records into rows: the snapshot's decode path.

Invariants:
- The rows are the ones a ``Tracker`` (without a clock) followed by
  ``TableBuilder.add`` would make of the same records, value for value, with
  the same restarts (a frame of another instance than the one followed, the
  first catalog's at first, is a restart); but frames are decoded flat (``rezolus_core.flat``):
  no object per histogram, and the contract checks of an id or bucket array
  run once per distinct array, not once per frame.  Every frame still passes
  every check ``frame.decode`` and ``check_ids`` make.
- The buffer stores a frame only after the catalog it needs (its invariant),
  so a frame never waits: one that its instance's catalog does not cover, a
  catalog that rewrites series its instance announced, a frame that repeats
  or steps back in sequence within its instance, or any message that does
  not decode raises ``ReplayError`` naming the record, where the ``Tracker``
  would have held or dropped it and the snapshot would have come out short.
- A catalog is decoded with every check, once per distinct payload in a row
  (every segment repeats the one in force).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rezolus_core.flat import FlatDecoder, IdCheck
from rezolus_core.frame import Catalog, DecodeError, decode

if TYPE_CHECKING:
    from rezolus_core.frame import Frame
    from rezolus_recording.builder import TableBuilder


class ReplayError(ValueError):
    """A stored record cannot become a row; the message says which and why."""


class Replay:
    """One source's catalogs and last frame, adding its rows to a builder."""

    def __init__(self, builder: TableBuilder, source: str) -> None:
        self.builder = builder
        self.source = source
        self.rows = 0
        self._catalogs: dict[str, Catalog] = {}
        self._last_catalog = b""
        self._decoder = FlatDecoder()
        self._ids = IdCheck()
        self._followed: str | None = None  # the Tracker's: the first catalog's instance, then the last row's
        self._last_seq: int | None = None

    def catalog(self, payload: bytes) -> None:
        """Take one catalog record."""
        if payload == self._last_catalog:
            return
        try:
            message = decode(payload)
        except DecodeError as exc:
            raise ReplayError(f"a catalog of {self.source} does not decode: {exc}") from exc
        if not isinstance(message, Catalog):
            raise ReplayError(f"a catalog record of {self.source} holds a frame")
        held = self._catalogs.get(message.instance)
        if held is not None and message.version >= held.version and message.series[: held.version] != held.series:
            raise ReplayError(f"catalog of {message.instance} rewrites series it announced before")
        if held is None or message.version >= held.version:
            self._catalogs[message.instance] = message
        if self._followed is None:
            self._followed = message.instance
        self._last_catalog = payload

    def frame(self, payload: bytes, *, missed: int) -> None:
        """Add one frame record as a row whose ``missed`` is given."""
        try:
            frame = self._decoder.decode(payload)
            catalog = self._catalog(frame)
            self._ids.check(frame, catalog)
        except DecodeError as exc:
            raise ReplayError(f"a frame of {self.source} is not readable: {exc}") from exc
        restarted = False
        if frame.instance != self._followed:
            restarted, self._followed = self._followed is not None, frame.instance
        elif self._last_seq is not None and frame.seq <= self._last_seq:
            raise ReplayError(f"frame {frame.seq} of {frame.instance} repeats or steps back from {self._last_seq}")
        self.builder.add_flat(frame, catalog, restarted=restarted, missed=missed, source=self.source)
        self._last_seq = frame.seq
        self.rows += 1

    def _catalog(self, frame: Frame) -> Catalog:
        catalog = self._catalogs.get(frame.instance)
        if catalog is None:
            raise DecodeError(f"no catalog of {frame.instance} precedes its frame {frame.seq}")
        return catalog
