"""Rates, gauge means, histogram percentiles and heatmaps over binned rows of a recording.

Invariants:
- A bin covers the steps ``(edges[j], edges[j + 1]]`` between rows; its x is
  the timestamp of ``edges[j + 1]``.  With at most ``points`` steps in range
  every bin is one step; otherwise bins are ``step`` rows wide, ``step`` a
  multiple of the histogram index stride and edges on that grid (plus the
  last row), so wide views need only indexed rows.
- A bin is null (never zero, never a spike) when it contains a break (first
  row, restart, gap), when a counter or histogram went down inside it (an
  unflagged restart), or when the series is absent at either edge.
- All histogram math goes through ``rezolus_core.histogram``: ``delta`` with
  reset detection, ``merge``, ``percentiles`` and ``downsample``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rezolus_core import histogram

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

    from rezolus_viewer.source import Source as Recording

HEATMAP_ROWS = 64


@dataclass(frozen=True)
class Bins:
    """Row edges of the bins of one view, their x (ns) and whether a break falls inside each."""

    edges: NDArray[np.intp]
    x_ns: NDArray[np.int64]
    dt_s: NDArray[np.float64]
    broken: NDArray[np.bool_]

    @property
    def count(self) -> int:
        """Number of bins."""
        return len(self.x_ns)


def in_bins(flags: NDArray[np.bool_], edges: NDArray[np.intp]) -> NDArray[np.bool_]:
    """Whether any step ``r`` flagged in ``flags`` lies in each bin ``(e_j, e_j+1]``.

    Flags are rare (breaks, resets), so each flagged step is placed by binary
    search instead of summing the whole recording per call.
    """
    out = np.zeros(max(len(edges) - 1, 0), dtype=bool)
    flagged = np.flatnonzero(flags)
    if flagged.size and out.size:
        j = np.searchsorted(edges, flagged, side="left") - 1
        out[j[(j >= 0) & (j < out.size)]] = True
    return out


def make_bins(
    timestamps: NDArray[np.int64], breaks: NDArray[np.bool_], start_ns: int, end_ns: int, *, points: int,
    stride: int = 1,
) -> Bins:
    """Bins for the rows whose timestamps lie in ``[start_ns, end_ns]``, at most about ``points`` of them."""
    if points < 1 or stride < 1:
        raise ValueError("points and stride must be positive")
    first = int(np.searchsorted(timestamps, start_ns, side="left"))
    last = int(np.searchsorted(timestamps, end_ns, side="right")) - 1
    lead = max(first - 1, 0)
    steps = last - lead
    if steps <= 0:
        empty = np.zeros(0, dtype=np.intp)
        return Bins(empty, np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=bool))
    step = -(-steps // points)
    if step > 1:
        step = -(-step // stride) * stride
        lead = lead // stride * stride
    edges = np.arange(lead, last, step, dtype=np.intp)
    edges = np.append(edges, last).astype(np.intp)
    ts = timestamps[edges]
    return Bins(edges, ts[1:], np.diff(ts).astype(np.float64) / 1e9, in_bins(breaks, edges))


def step_bins(timestamps: NDArray[np.int64], breaks: NDArray[np.bool_], first: int, last: int, step: int) -> Bins:
    """Bins of exactly ``step`` row steps from row ``first`` (rows after the last whole bin are left out)."""
    if step < 1:
        raise ValueError("step must be positive")
    if last - first < step:
        empty = np.zeros(0, dtype=np.intp)
        return Bins(empty, np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=bool))
    edges = np.arange(first, last + 1, step, dtype=np.intp)
    ts = timestamps[edges]
    return Bins(edges, ts[1:], np.diff(ts).astype(np.float64) / 1e9, in_bins(breaks, edges))


def decreases(values: NDArray[np.integer], present: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Steps ``r`` where a cumulative series went down between two present rows."""
    out = np.zeros(len(values), dtype=bool)
    out[1:] = present[1:] & present[:-1] & (values[1:] < values[:-1])
    return out


def counter_rate(
    bins: Bins, components: Sequence[tuple[NDArray[np.uint64], NDArray[np.bool_]]]
) -> NDArray[np.float64]:
    """Per-second rate of the sum of cumulative counters in each bin (NaN where null)."""
    e0, e1 = bins.edges[:-1], bins.edges[1:]
    total = np.zeros(bins.count)
    seen = np.zeros(bins.count, dtype=bool)
    bad = bins.broken.copy()
    for values, present in components:
        ok = present[e0] & present[e1]
        bad |= in_bins(decreases(values, present), bins.edges)
        delta = values[e1] - values[e0]
        total[ok] += delta[ok].astype(np.float64)
        seen |= ok
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = total / bins.dt_s
    rate[bad | ~seen | (bins.dt_s <= 0)] = np.nan
    return rate


def gauge_mean(bins: Bins, components: Sequence[tuple[NDArray[np.int64], NDArray[np.bool_]]]) -> NDArray[np.float64]:
    """Mean over each bin's rows of the sum of gauges (NaN where null)."""
    total = np.zeros(bins.count)
    seen = np.zeros(bins.count, dtype=bool)
    lo, hi = bins.edges[:-1] + 1, bins.edges[1:] + 1
    for values, present in components:
        vsum = np.concatenate(([0.0], np.cumsum(np.where(present, values, 0).astype(np.float64))))
        n = np.concatenate(([0], np.cumsum(present, dtype=np.int64)))
        count = n[hi] - n[lo]
        ok = count > 0
        total[ok] += (vsum[hi] - vsum[lo])[ok] / count[ok]
        seen |= ok
    total[~seen | bins.broken] = np.nan
    return total


def histogram_deltas(rec: Recording, bins: Bins, columns: Sequence[str]) -> list[NDArray[np.uint64] | None]:
    """The merged distribution of ``columns`` in each bin (None where null)."""
    out: list[list[NDArray[np.uint64]] | None] = [[] for _ in range(bins.count)]
    for name in columns:
        index = rec.histogram_index(name)
        rows, present = rec.histogram_rows(name, bins.edges)
        dropped = in_bins(decreases(index.totals, index.present), bins.edges)
        for j in range(bins.count):
            parts = out[j]
            if parts is None or not (present[j] and present[j + 1]):
                continue
            diff, reset = histogram.delta(rows[j + 1], rows[j])
            if reset or dropped[j]:
                out[j] = None
            else:
                parts.append(diff)
    return [
        histogram.merge(*parts) if parts and not bins.broken[j] else None
        for j, parts in enumerate(out)
    ]


def percentile_lines(
    deltas: Sequence[NDArray[np.uint64] | None], wanted: Sequence[float], lay: histogram.Layout
) -> list[list[int | None]]:
    """One list per wanted percentile: each bin's answer (bucket upper bound) or None."""
    lines: list[list[int | None]] = [[] for _ in wanted]
    for d in deltas:
        answers = [None] * len(wanted) if d is None else histogram.percentiles(d, wanted, lay)
        for line, value in zip(lines, answers, strict=True):
            line.append(value)
    return lines


@dataclass(frozen=True)
class Heatmap:
    """Bucket rows (value ranges) and per-bin counts per second in each row."""

    lower: list[int]
    upper: list[int]
    grouping_power: int
    rates: list[list[float] | None]


def heatmap(
    deltas: Sequence[NDArray[np.uint64] | None], dt_s: NDArray[np.float64], lay: histogram.Layout,
    max_rows: int = HEATMAP_ROWS,
) -> Heatmap:
    """A heatmap of the non-empty bucket range, downsampled until it has at most ``max_rows`` rows."""
    present = [d for d in deltas if d is not None]
    if not present:
        return Heatmap([], [], lay.grouping_power, [None] * len(deltas))
    g = lay.grouping_power
    matrix = np.stack(present)
    while True:
        nz = np.flatnonzero(matrix.sum(axis=0, dtype=np.uint64))
        if nz.size == 0 or nz[-1] - nz[0] < max_rows or g == 0:
            break
        src = histogram.layout(g, lay.max_value_power)
        g -= 1
        matrix = np.stack([histogram.downsample(row, g, src) for row in matrix])
    cur = histogram.layout(g, lay.max_value_power)
    lo, hi = (int(nz[0]), int(nz[-1])) if nz.size else (0, 0)
    rates: list[list[float] | None] = []
    k = 0
    for j, d in enumerate(deltas):
        if d is None or dt_s[j] <= 0:
            rates.append(None)
            if d is not None:
                k += 1
            continue
        rates.append([round(float(v) / float(dt_s[j]), 3) for v in matrix[k, lo : hi + 1]])
        k += 1
    return Heatmap(
        [int(v) for v in cur.lower[lo : hi + 1]], [int(v) for v in cur.upper[lo : hi + 1]], g, rates
    )
