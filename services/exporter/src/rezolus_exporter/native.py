"""The agent's buckets as a Prometheus native (sparse, exponential) histogram.

Mapping (pure, sans-IO):
- Schema ``SCHEMA`` = 4: native bucket ``k`` covers ``(B**(k-1), B**k]`` with
  ``B = 2**(2**-4)``, 16 exponential buckets per power of two.
- The agent's buckets (grouping power 3: 8 linear buckets per power of two)
  do not line up with those.  Each agent bucket gives its whole count to the
  native bucket that holds its inclusive upper bound ``U`` (in the exposed
  unit); value 0 goes to the zero bucket.  No count is split: an integer split
  of one count over three or more native buckets is not monotone in the count
  (a bucket of a cumulative histogram could go down, which Prometheus reads as
  a reset), and a proportional split would invent a density inside the bucket.
- Schema 4 is the coarsest at which no two agent buckets share a native
  bucket (consecutive upper bounds differ by at least 1/16 > ``B - 1``), so
  the native histogram keeps every distinction the agent made.
- Error added: a quantile answered from the native histogram lies in the
  native bucket that holds ``U`` of the agent bucket the agent's own
  percentile answers with, so it differs from the agent's answer ``U`` by
  less than ``MAX_RELATIVE_ERROR`` = ``B - 1`` (4.43 %) of ``U``, whatever the
  interpolation inside the bucket (Prometheus interpolates linearly).
- ``ZERO_THRESHOLD`` is tiny but not 0, so a histogram with no observations
  is still recognisably native to Prometheus 2.42.
- Spans break only at gaps of more than ``MAX_FILLED_GAP`` empty native
  buckets; shorter gaps are sent as zero-count buckets (fewer spans).
- Counts are cumulative since the agent started, like the classic buckets:
  every native bucket is a sum of agent buckets, so it never goes down while
  the agent runs.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from rezolus_core import histogram

if TYPE_CHECKING:
    from numpy.typing import NDArray

SCHEMA = 4
ZERO_THRESHOLD = 2.0**-128
BASE = 2.0 ** (2.0**-SCHEMA)
MAX_RELATIVE_ERROR = BASE - 1.0
_PER_POWER = 1 << SCHEMA
# frexp fractions of the bucket boundaries inside one power of two: [0.5, 1).
_BOUNDS = tuple(2.0 ** (k / _PER_POWER) / 2.0 for k in range(_PER_POWER))
ZERO_KEY = -(1 << 62)
MAX_FILLED_GAP = 2


@dataclass(frozen=True)
class NativeBuckets:
    """One native histogram's buckets: zero bucket, spans and deltas of the positive side."""

    zero_count: int
    spans: tuple[tuple[int, int], ...]
    deltas: tuple[int, ...]

    def counts(self) -> dict[int, int]:
        """Absolute count per native bucket key (for checks and tests)."""
        out: dict[int, int] = {}
        key, count, deltas = 0, 0, iter(self.deltas)
        for i, (offset, length) in enumerate(self.spans):
            key = offset if i == 0 else key + offset
            for _ in range(length):
                count += next(deltas)
                out[key] = count
                key += 1
        return out


def key_of(value: float) -> int:
    """Native bucket key holding a positive value: ``B**(k-1) < value <= B**k``."""
    frac, exp = math.frexp(value)
    return bisect.bisect_left(_BOUNDS, frac) + (exp - 1) * _PER_POWER


def bucket_bounds(key: int) -> tuple[float, float]:
    """Lower (exclusive) and upper (inclusive) bound of a native bucket."""
    return BASE ** (key - 1), BASE**key


@cache
def agent_keys(multiplier: float, divisor: float) -> NDArray[np.int64]:
    """Native key of every agent bucket (g=3 layout), ``ZERO_KEY`` for the value-0 bucket."""
    upper = histogram.layout().upper.tolist()
    keys = [ZERO_KEY if u == 0 else key_of(u * multiplier / divisor) for u in upper]
    out = np.asarray(keys, dtype=np.int64)
    out.setflags(write=False)
    return out


def to_native(counts: NDArray[np.uint64], keys: NDArray[np.int64]) -> NativeBuckets:
    """Turn dense agent bucket counts into a native histogram's buckets."""
    nonzero = np.flatnonzero(counts)
    bucket_keys: list[int] = keys[nonzero].tolist()
    values: list[int] = counts[nonzero].tolist()
    zero_count = 0
    if bucket_keys and bucket_keys[0] == ZERO_KEY:
        zero_count = values[0]
        bucket_keys, values = bucket_keys[1:], values[1:]
    if not bucket_keys:
        return NativeBuckets(zero_count, ((0, 0),), ())
    spans: list[tuple[int, int]] = []
    deltas: list[int] = []
    start = last = bucket_keys[0]
    offset, previous = start, 0
    for key, count in zip(bucket_keys, values, strict=True):
        if deltas and key == last:  # two agent buckets in one native bucket (never at schema 4)
            deltas[-1] += count
            previous += count
            continue
        gap = key - last - 1
        if gap > MAX_FILLED_GAP:
            spans.append((offset, last - start + 1))
            offset, start = gap, key
        elif gap > 0:
            deltas.append(-previous)
            deltas.extend([0] * (gap - 1))
            previous = 0
        deltas.append(count - previous)
        previous, last = count, key
    spans.append((offset, last - start + 1))
    return NativeBuckets(zero_count, tuple(spans), tuple(deltas))
