"""What the chart and sample code reads from: a recording file, or the live buffer's snapshot.

Invariants:
- ``timestamps`` are int64 ns, non-decreasing; ``breaks[r]`` marks a step
  ``r - 1 -> r`` that must not be used for a rate (see ``recording``).
- ``scalars`` returns exact integers plus a presence mask (null is never
  zero); ``histogram_rows`` returns cumulative buckets at the given rows.
- A source never changes once handed out (a live view hands out a new one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from rezolus_recording.reader import Column
    from rezolus_viewer.recording import HistIndex

    Scalars = dict[str, tuple[NDArray[np.uint64] | NDArray[np.int64], NDArray[np.bool_]]]


class Source(Protocol):
    """The read side of a recording, as ``compute``, ``query`` and ``samples`` use it."""

    columns: dict[str, Column]
    metadata: dict[str, str]
    timestamps: NDArray[np.int64]
    breaks: NDArray[np.bool_]
    interval_ns: int
    rows: int

    @property
    def stride(self) -> int:
        """Every ``stride``-th row is kept in the histogram indexes."""

    @property
    def start_ns(self) -> int:
        """Timestamp of the first row."""

    @property
    def end_ns(self) -> int:
        """Timestamp of the last row."""

    def host(self) -> dict[str, str]:
        """Host facts, if any."""

    def scalars(self, names: list[str]) -> Scalars:
        """Whole scalar columns as (values, present)."""

    def histogram_index(self, name: str) -> HistIndex:
        """Per-row presence and totals of a histogram column (and its strided buckets)."""

    def histogram_rows(self, name: str, rows: NDArray[np.intp]) -> tuple[NDArray[np.uint64], NDArray[np.bool_]]:
        """Cumulative buckets at the given rows (zero where absent) and their presence."""

    def close(self) -> None:
        """Release what the source holds."""
