"""Log-linear histogram bucket math, compatible with the original Rezolus layout.

Invariants:
- A layout is fixed by (grouping power g, max value power m) and has
  ``(m - g + 1) * 2**g`` buckets; the agent uses g = 3, m = 64 (496 buckets).
- ``index(v)`` is ``v`` for ``v < 2**(g+1)``; otherwise, with ``p = floor(log2 v)``,
  ``(p - g + 1) * 2**g + ((v - 2**p) >> (p - g))``.  All arithmetic is uint64.
- Bucket counts are cumulative on the wire; consumers diff two snapshots
  (``delta``) and compute percentiles on the difference.  A bucket that went
  down means the producer restarted, and ``delta`` says so.
- A percentile is reported as the inclusive upper bound of the first bucket
  whose cumulative count reaches ``max(1, ceil(p/100 * total))``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from numpy.typing import ArrayLike, NDArray

GROUPING_POWER = 3
MAX_VALUE_POWER = 64
DEFAULT_PERCENTILES = (50.0, 90.0, 99.0, 99.9, 99.99)

_U64 = np.uint64


def _floor_log2(values: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """Return floor(log2 v) for every non-zero uint64, exactly (no float rounding)."""
    x = values.copy()
    power = np.zeros(x.shape, dtype=_U64)
    for shift in (32, 16, 8, 4, 2, 1):
        big = x >= _U64(1 << shift)
        power[big] += _U64(shift)
        x[big] >>= _U64(shift)
    return power


@dataclass(frozen=True)
class Layout:
    """A (grouping power, max value power) bucket layout with precomputed bounds."""

    grouping_power: int = GROUPING_POWER
    max_value_power: int = MAX_VALUE_POWER
    lower: NDArray[np.uint64] = field(init=False, repr=False, compare=False)
    upper: NDArray[np.uint64] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        g, m = self.grouping_power, self.max_value_power
        if not 0 <= g < m <= 64:
            raise ValueError(f"invalid histogram layout g={g} m={m}: need 0 <= g < m <= 64")
        n = (m - g + 1) << g
        lower = np.zeros(n, dtype=_U64)
        upper = np.zeros(n, dtype=_U64)
        for i in range(n):
            group, h = i >> g, i - ((i >> g) << g)
            if group == 0:
                lo = hi = h
            else:
                lo = (1 << (g + group - 1)) + (h << (group - 1))
                hi = lo + (1 << (group - 1)) - 1
            lower[i] = lo
            upper[i] = min(hi, (1 << m) - 1)
        upper[-1] = (1 << m) - 1
        lower.setflags(write=False)
        upper.setflags(write=False)
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)

    @property
    def buckets(self) -> int:
        """Number of buckets in this layout."""
        return (self.max_value_power - self.grouping_power + 1) << self.grouping_power

    def index(self, values: ArrayLike) -> NDArray[np.intp]:
        """Bucket index of every value (vectorised, exact for the full uint64 range)."""
        v = np.asarray(values, dtype=_U64)
        g = self.grouping_power
        small = v < _U64(1 << (g + 1))
        p = _floor_log2(np.where(small, _U64(1 << (g + 1)), v))
        offset = (v - (_U64(1) << p)) >> (p - _U64(g))
        idx = (p - _U64(g) + _U64(1)) * _U64(1 << g) + offset
        out = np.where(small, v, idx).astype(np.intp)
        return np.minimum(out, self.buckets - 1)

    def index_one(self, value: int) -> int:
        """Bucket index of one Python int (pure integer arithmetic)."""
        g = self.grouping_power
        if value < (1 << (g + 1)):
            return value
        p = value.bit_length() - 1
        return min(((p - g + 1) << g) + ((value - (1 << p)) >> (p - g)), self.buckets - 1)


@cache
def layout(grouping_power: int = GROUPING_POWER, max_value_power: int = MAX_VALUE_POWER) -> Layout:
    """Return the shared, cached layout for these parameters."""
    return Layout(grouping_power, max_value_power)


def empty(lay: Layout | None = None) -> NDArray[np.uint64]:
    """A zeroed dense bucket array for the layout."""
    return np.zeros((lay or layout()).buckets, dtype=_U64)


def record(counts: NDArray[np.uint64], values: ArrayLike, lay: Layout | None = None) -> None:
    """Add each value once to a dense bucket array, in place."""
    idx = (lay or layout()).index(values)
    np.add.at(counts, idx, _U64(1))


def delta(newer: NDArray[np.uint64], older: NDArray[np.uint64]) -> tuple[NDArray[np.uint64], bool]:
    """Distribution between two cumulative snapshots, and whether a reset happened.

    On a reset (any bucket went down) the newer snapshot is the distribution
    since the restart, so it is returned as is with ``True``.
    """
    if newer.shape != older.shape:
        raise ValueError(f"bucket counts differ in shape: {newer.shape} vs {older.shape}")
    if bool(np.any(newer < older)):
        return newer.copy(), True
    return newer - older, False


def merge(*snapshots: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """Sum of several bucket arrays of one layout."""
    if not snapshots:
        raise ValueError("merge needs at least one histogram")
    out = snapshots[0].astype(_U64, copy=True)
    for other in snapshots[1:]:
        if other.shape != out.shape:
            raise ValueError(f"bucket counts differ in shape: {out.shape} vs {other.shape}")
        out += other
    return out


def downsample(counts: NDArray[np.uint64], grouping_power: int, source: Layout | None = None) -> NDArray[np.uint64]:
    """Re-bucket into a coarser layout by each non-empty bucket's lower bound."""
    src = source or layout()
    if grouping_power > src.grouping_power:
        raise ValueError(f"cannot downsample from grouping power {src.grouping_power} to {grouping_power}")
    dst = layout(grouping_power, src.max_value_power)
    nz = np.flatnonzero(counts)
    out = np.zeros(dst.buckets, dtype=_U64)
    np.add.at(out, dst.index(src.lower[nz]), counts[nz].astype(_U64))
    return out


def total(counts: NDArray[np.uint64]) -> int:
    """Number of values recorded (exact Python int)."""
    return int(counts.sum(dtype=_U64))


@cache
def _share(p: float) -> tuple[int, int]:
    """``p / 100`` as an exact fraction of the decimal ``p`` (cached: scrapes ask often)."""
    share = Fraction(str(p)) / 100
    return share.numerator, share.denominator


def percentile_indices(counts: NDArray[np.uint64], percentiles: Sequence[float]) -> list[int | None]:
    """Bucket index answering each percentile, or None for an empty histogram."""
    n = total(counts)
    if n == 0:
        return [None for _ in percentiles]
    cumulative = np.cumsum(counts, dtype=_U64)
    answers: list[int | None] = []
    for p in percentiles:
        if not 0 <= p <= 100:
            raise ValueError(f"percentile {p} is outside 0..100")
        numerator, denominator = _share(p)
        target = max(1, -(-numerator * n // denominator))
        answers.append(int(np.searchsorted(cumulative, _U64(target), side="left")))
    return answers


def percentiles(
    counts: NDArray[np.uint64],
    wanted: Sequence[float] = DEFAULT_PERCENTILES,
    lay: Layout | None = None,
) -> list[int | None]:
    """Inclusive upper bound of the bucket answering each percentile (None if empty)."""
    bounds = (lay or layout()).upper
    return [None if i is None else int(bounds[i]) for i in percentile_indices(counts, wanted)]


def to_sparse(counts: NDArray[np.uint64]) -> tuple[NDArray[np.uint16], NDArray[np.uint64]]:
    """Indices (uint16) and counts (uint64) of the non-zero buckets."""
    nz = np.flatnonzero(counts)
    return nz.astype(np.uint16), counts[nz].astype(_U64)


def to_dense(indices: NDArray[np.uint16], values: NDArray[np.uint64], buckets: int | None = None) -> NDArray[np.uint64]:
    """Dense bucket array from sparse indices and counts."""
    out = np.zeros(buckets or layout().buckets, dtype=_U64)
    out[indices.astype(np.intp)] = values
    return out


def from_values(values: Iterable[int], lay: Layout | None = None) -> NDArray[np.uint64]:
    """Dense bucket array holding the given values (a convenience for tests and tools)."""
    counts = empty(lay)
    vals = np.fromiter(values, dtype=_U64)
    if vals.size:
        record(counts, vals, lay)
    return counts
