"""Evaluate one planned chart over a time range of a recording into JSON-ready data.

Invariants:
- Only the columns the chart names are read (scalars whole and cached,
  histograms through their index and row groups).
- Null bins come out as ``None`` (JSON null), never as zero; the page draws
  them as gaps.
- ``top`` keeps the N series with the largest mean over the requested range,
  in descending order; a ``focus`` series outside them replaces the last one.
- x values are seconds since the Unix epoch (float), as the page's time axis wants.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from rezolus_core import histogram
from rezolus_viewer import compute
from rezolus_viewer.dashboard import PERCENTILES

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from rezolus_viewer.dashboard import Chart, Series
    from rezolus_viewer.source import Source as Recording


def _clean(values: NDArray[np.float64] | list[int | None]) -> list[float | None]:
    out: list[float | None] = []
    for v in values:
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            out.append(None)
        else:
            f = float(v)
            out.append(f if f == 0 else round(f, max(0, 6 - math.floor(math.log10(abs(f))))))
    return out


def _layout(rec: Recording, columns: tuple[str, ...]) -> histogram.Layout:
    lay = rec.columns[columns[0]].layout
    return lay if lay is not None else histogram.layout()


def _scalar_values(rec: Recording, bins: compute.Bins, series: Series) -> NDArray[np.float64]:
    data = rec.scalars(list(series.columns) + list(series.denominator))
    parts = [data[c] for c in series.columns]
    if series.kind == "gauge":
        return compute.gauge_mean(bins, parts) * series.scale  # type: ignore[arg-type]
    rate = compute.counter_rate(bins, parts)  # type: ignore[arg-type]
    if series.kind == "ratio":
        denominator = compute.counter_rate(bins, [data[c] for c in series.denominator])  # type: ignore[misc]
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(denominator > 0, rate / denominator, np.nan)
    return rate * series.scale


def series_values(rec: Recording, bins: compute.Bins, series: Series) -> list[float | None]:
    """Values of one line series in each bin."""
    if series.kind in {"rate", "gauge", "ratio"}:
        return _clean(_scalar_values(rec, bins, series))
    if series.kind == "percentile":
        deltas = compute.histogram_deltas(rec, bins, series.columns)
        return _clean(compute.percentile_lines(deltas, [series.percentile], _layout(rec, series.columns))[0])
    raise ValueError(f"series kind {series.kind!r} is not a line")


def _top(series: list[dict[str, Any]], n: int, focus: str = "") -> list[dict[str, Any]]:
    def mean(s: dict[str, Any]) -> float:
        vals = [v for v in s["values"] if v is not None]
        return sum(vals) / len(vals) if vals else -math.inf

    if not n:
        return series
    ranked = sorted(series, key=mean, reverse=True)
    kept = ranked[:n]
    focused = [s for s in ranked[n:] if s["label"] == focus]
    return kept[: n - len(focused)] + focused


def evaluate(
    rec: Recording, chart: Chart, start_ns: int, end_ns: int, points: int, *, focus: str = ""
) -> dict[str, Any]:
    """The chart's data over ``[start_ns, end_ns]`` in about ``points`` bins (``focus``: a series kept in the top)."""
    bins = compute.make_bins(rec.timestamps, rec.breaks, start_ns, end_ns, points=points, stride=rec.stride)
    out: dict[str, Any] = {
        "id": chart.id, "kind": chart.kind, "unit": chart.unit,
        "x": [round(int(x) / 1e9, 3) for x in bins.x_ns],
        "step_rows": int(bins.edges[1] - bins.edges[0]) if bins.count else 0,
    }
    if chart.kind == "heatmap":
        spec = chart.series[0]
        lay = _layout(rec, spec.columns)
        deltas = compute.histogram_deltas(rec, bins, spec.columns)
        lines = compute.percentile_lines(deltas, PERCENTILES, lay)
        out["series"] = [
            {"label": f"p{p:g}", "values": _clean(line)} for p, line in zip(PERCENTILES, lines, strict=True)
        ]
        heat = compute.heatmap(deltas, bins.dt_s, lay)
        out["heatmap"] = {
            "lower": heat.lower, "upper": heat.upper, "grouping_power": heat.grouping_power, "rates": heat.rates,
        }
        return out
    series = [{"label": s.label, "values": series_values(rec, bins, s)} for s in chart.series]
    if chart.kind == "cpu_heatmap":
        out["rows"] = [s["label"] for s in series]
        out["matrix"] = [s["values"] for s in series]
        busy = [
            sum(v for v in col if v is not None) if any(v is not None for v in col) else None
            for col in zip(*out["matrix"], strict=True)
        ] if series else []
        out["series"] = [{"label": "mean", "values": [None if b is None else b / len(series) for b in busy]}]
        return out
    out["series"] = _top(series, chart.top, focus)
    out["total_series"] = len(series)
    return out
