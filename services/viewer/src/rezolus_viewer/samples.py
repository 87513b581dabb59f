"""Per-interval samples of every series of a recording over a window, for ``compare``.

Invariants:
- An interval is ``step`` consecutive row steps inside the window; with
  ``step > 1`` (the coarser recording's interval, when the two differ)
  counters give the mean rate and gauges the mean over the interval.
- An interval is NaN (never zero) where ``compute`` nulls a bin: a break
  (first row, restart, gap) inside it, a counter or histogram that went
  down, or a series absent at either edge.  NaNs are dropped by the tests.
- Histogram columns give, per quantile, the per-interval quantile of each
  interval's distribution (NaN for an interval without samples) and the
  quantile of the distribution merged over the whole window.
- Everything here reads through ``Recording``; the arithmetic is numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from rezolus_core import histogram
from rezolus_viewer import compute

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from rezolus_viewer.source import Source as Recording

QUANTILES = (50.0, 90.0, 99.0, 99.9)


@dataclass(frozen=True)
class Samples:
    """One comparable series: its per-interval samples and the value reported for the window."""

    column: str
    kind: str
    quantile: float | None
    values: NDArray[np.float64]
    reported: float

    @property
    def key(self) -> tuple[str, float | None]:
        """What matches a series between two recordings."""
        return self.column, self.quantile


def window_rows(rec: Recording, start_ns: int, end_ns: int) -> tuple[int, int]:
    """First and last row whose timestamps lie in ``[start_ns, end_ns]`` (last < first when none do)."""
    first = int(np.searchsorted(rec.timestamps, start_ns, side="left"))
    last = int(np.searchsorted(rec.timestamps, end_ns, side="right")) - 1
    return first, last


def interval_quantiles(cumulative: NDArray[np.int64], lay: histogram.Layout, quantile: float) -> NDArray[np.float64]:
    """Per-row quantile (bucket upper bound) of distributions given as cumulative counts; NaN for empty rows."""
    share = Fraction(str(quantile)) / 100
    totals = cumulative[:, -1] if cumulative.shape[1] else np.zeros(len(cumulative), dtype=np.int64)
    target = np.maximum(1, -(-share.numerator * totals // share.denominator))
    index = (cumulative < target[:, None]).sum(axis=1)
    out: NDArray[np.float64] = lay.upper[np.minimum(index, lay.buckets - 1)].astype(np.float64)
    out[totals <= 0] = np.nan
    return out


def _histogram(rec: Recording, bins: compute.Bins, name: str) -> list[Samples]:
    lay = rec.columns[name].layout or histogram.layout()
    index = rec.histogram_index(name)
    rows, present = rec.histogram_rows(name, bins.edges)
    signed = rows.astype(np.int64)
    deltas = signed[1:] - signed[:-1]
    dropped = compute.in_bins(compute.decreases(index.totals, index.present), bins.edges)
    bad = bins.broken | dropped | ~(present[1:] & present[:-1]) | (deltas < 0).any(axis=1)
    deltas[bad] = 0
    merged = deltas.sum(axis=0, dtype=np.int64).astype(np.uint64)
    reported = histogram.percentiles(merged, QUANTILES, lay)
    cumulative = np.cumsum(deltas, axis=1)
    out = []
    for quantile, whole in zip(QUANTILES, reported, strict=True):
        values = interval_quantiles(cumulative, lay, quantile)
        values[bad] = np.nan
        out.append(Samples(name, "histogram", quantile, values, np.nan if whole is None else float(whole)))
    return out


def collect(rec: Recording, start_ns: int, end_ns: int, step: int = 1) -> list[Samples]:
    """Samples of every series column over ``[start_ns, end_ns]`` in intervals of ``step`` rows."""
    first, last = window_rows(rec, start_ns, end_ns)
    bins = compute.step_bins(rec.timestamps, rec.breaks, first, last, step)
    scalars = sorted(n for n, c in rec.columns.items() if c.type != "histogram")
    data = rec.scalars(scalars) if bins.count else {}
    out: list[Samples] = []
    for name in scalars:
        kind = rec.columns[name].type
        if not bins.count:
            values = np.zeros(0)
        elif kind == "gauge":
            values = compute.gauge_mean(bins, [data[name]])  # type: ignore[list-item]
        else:
            values = compute.counter_rate(bins, [data[name]])  # type: ignore[list-item]
        finite = values[np.isfinite(values)]
        out.append(Samples(name, kind, None, values, float(finite.mean()) if finite.size else np.nan))
    for name in sorted(n for n, c in rec.columns.items() if c.type == "histogram"):
        if bins.count:
            out.extend(_histogram(rec, bins, name))
        else:
            out.extend(Samples(name, "histogram", q, np.zeros(0), np.nan) for q in QUANTILES)
    return out
