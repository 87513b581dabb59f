"""Which recording (and which page plan) answers a request: one file, two files side by side, or a live buffer.

Invariants:
- A ``View`` never changes: a live source hands out a new one (with a new
  ``key``) when frames arrive, so answers cached per key never go stale.
- ``Fixed`` serves files: one side ``""`` for a single recording, sides
  ``base`` and ``target`` for a comparison, all laid out by one dashboard.
- Unknown sides are a ``LookupError`` whose message the API returns as 400.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from rezolus_recording import layout

if TYPE_CHECKING:
    from rezolus_viewer.dashboard import Dashboard
    from rezolus_viewer.source import Source


@dataclass(frozen=True)
class View:
    """A source, the plan of its page, and a key that changes whenever either does."""

    rec: Source
    dash: Dashboard
    key: int = 0


class Views(Protocol):
    """What the API asks for each request."""

    mode: str

    def get(self, side: str) -> View:
        """The view of ``side`` (``""``: the default side); LookupError when unknown or not ready."""

    def recordings(self) -> list[Source]:
        """Every source held now (for warming and closing)."""

    def info(self) -> dict[str, Any]:
        """What the page needs to know about this mode, beyond the default side's description."""


def describe(rec: Source, name: str) -> dict[str, Any]:
    """One source's description for ``/api/info``."""
    meta = rec.metadata
    return {
        "file": name,
        "source": meta.get(layout.SOURCE, ""),
        "hostname": meta.get(layout.HOSTNAME, "") or rec.host().get(layout.HOSTNAME, ""),
        "kernel": meta.get(layout.KERNEL, ""),
        "version": meta.get(layout.VERSION, ""),
        "interval_ns": rec.interval_ns,
        "rows": rec.rows,
        "breaks": int(rec.breaks[1:].sum()),
        "start_ns": rec.start_ns,
        "end_ns": rec.end_ns,
        "series": len(rec.columns),
    }


@dataclass
class Fixed:
    """Files: one (side ``""``) or a base and a target, sharing one dashboard."""

    sides: dict[str, Source]
    dash: Dashboard
    names: dict[str, str] = field(default_factory=dict)
    mode: str = "single"

    def get(self, side: str) -> View:
        """The named side, or the first one for ``""``."""
        if not side:
            side = next(iter(self.sides))
        rec = self.sides.get(side)
        if rec is None:
            raise LookupError(f"unknown side {side!r} (have {', '.join(s or '(default)' for s in self.sides)})")
        return View(rec, self.dash)

    def recordings(self) -> list[Source]:
        """Every file."""
        return list(self.sides.values())

    def info(self) -> dict[str, Any]:
        """For a comparison, each side's description."""
        if self.mode != "compare":
            return {}
        return {"sides": {s: describe(r, self.names.get(s, s)) for s, r in self.sides.items()}}
