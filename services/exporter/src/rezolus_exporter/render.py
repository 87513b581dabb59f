"""Metric families for one window of frames, built for prometheus_client's exposition.

Invariants:
- Output depends only on (plan, window, settings): the same frames give the
  same families, so they are cached per (instance, newest seq, baseline seq).
- Counters and histogram buckets are exposed cumulative, as the agent sent
  them, converted to base units; gauges as their newest value.
- Summary quantiles cover the trailing window only: the bucket-wise delta
  between the newest and the baseline frame (``histogram.delta``), answered
  with ``histogram.percentiles`` and reported as the inclusive upper bound of
  the answering bucket, in base units.  With no baseline yet or no events in
  the window the quantile is NaN (the Prometheus convention for an empty
  summary).  ``_count`` is the cumulative count since the agent started.
- Full histograms are the cumulative buckets downsampled to the configured
  grouping power.  ``le`` is the inclusive upper bound U of each bucket in
  base units (U / 1e9 for nanoseconds): the bucket holds the integer values
  v <= U, which is exactly Prometheus's ``value <= le``.
- Full histograms are ``HistogramFamily`` objects: classic buckets when
  ``Settings.classic``, a native histogram per series (``native``) when
  ``Settings.native``; a family with neither classic buckets nor summaries is
  for protobuf answers only.
- A histogram series whose counts equal those of the previous rendering
  (same plan) reuses that rendering's numbers.
- ``_sum`` is an estimate (the agent's histograms keep no exact sum): each
  bucket contributes its count times the midpoint of its full-resolution
  range, so the error per value is below half a bucket width (6.25 % at g=3).
  It is in the exposed unit: base units, or the agent's own with
  ``naming = "rezolus"`` (the same estimate, not scaled).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from itertools import repeat
from typing import TYPE_CHECKING, Any

import numpy as np
from prometheus_client.core import Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from rezolus_core import histogram
from rezolus_exporter import naming, native
from rezolus_exporter.histfamily import BucketLabels, HistogramFamily, HistogramSeries, Shape
from rezolus_exporter.plan import COUNTER, GAUGE, SUMMARY

if TYPE_CHECKING:
    from collections.abc import Iterator

    from numpy.typing import NDArray

    from rezolus_core.frame import Frame
    from rezolus_exporter.plan import Family, Plan
    from rezolus_exporter.state import Snapshot, Window

NAN = math.nan
MAX_SHAPES = 1024


@dataclass(frozen=True)
class Settings:
    """The parts of the configuration that shape the exposition."""

    quantiles: tuple[float, ...]
    percents: tuple[float, ...]
    grouping_power: int
    classic: bool = True
    native: bool = False
    names: str = naming.PROMETHEUS

    @property
    def raw(self) -> bool:
        """Whether the original exporter's names, units and summary shape are used."""
        return self.names == naming.REZOLUS


def _go(value: float) -> str:
    """Format a float as Go's strconv does (how Prometheus prints label floats)."""
    return floatToGoString(value)  # type: ignore[no-any-return,no-untyped-call]


@cache
def _midpoints() -> NDArray[np.float64]:
    lay = histogram.layout()
    return (lay.lower.astype(np.float64) + lay.upper.astype(np.float64)) / 2.0


@cache
def _upper_bounds(grouping_power: int, multiplier: float, divisor: float) -> tuple[float, ...]:
    """Finite ``le`` bounds of the layout in base units (the last bucket is +Inf)."""
    upper = histogram.layout(grouping_power).upper.tolist()
    return tuple(u * multiplier / divisor for u in upper[:-1])


@cache
def _le_labels(grouping_power: int, multiplier: float, divisor: float, *, raw: bool = False) -> tuple[str, ...]:
    """``le`` texts: Go-formatted floats, or the original exporter's integers in the agent's unit (``raw``)."""
    if raw:
        upper = histogram.layout(grouping_power).upper.tolist()
        return (*(str(u) for u in upper[:-1]), "+Inf")
    return (*(_go(u) for u in _upper_bounds(grouping_power, multiplier, divisor)), "+Inf")


def _percentile_text(quantile: float) -> str:
    """A quantile as the original exporter prints its ``percentile`` label (0.99, never 9.9e-01)."""
    return format(Decimal(repr(quantile)), "f")


def _dense(frame: Frame | Snapshot | None) -> dict[int, NDArray[np.uint64]]:
    if frame is None:
        return {}
    return {h.id: histogram.to_dense(h.indices, h.counts) for h in frame.histograms}


def _values(ids: NDArray[np.uint32], values: NDArray[np.generic], size: int) -> list[float]:
    """Float value per catalog id, NaN where the frame has none."""
    out = np.full(size, NAN)
    out[ids.astype(np.intp)] = values.astype(np.float64)
    return out.tolist()


@dataclass(frozen=True)
class _Inputs:
    """The newest and baseline values of one window, indexed by catalog id."""

    window: Window
    settings: Settings
    counters: list[float]
    gauges: list[float]
    seen: list[bool]
    newest: dict[int, NDArray[np.uint64]]
    baseline: dict[int, NDArray[np.uint64]]
    quantile_labels: tuple[str, ...]
    label_sets: LabelSets
    shapes: dict[tuple[Any, ...], Shape]


LabelSets = dict[tuple[str, int], Any]


def render(
    plan: Plan,
    window: Window,
    settings: Settings,
    label_sets: LabelSets | None = None,
    shapes: dict[tuple[Any, ...], Shape] | None = None,
) -> list[Metric]:
    """Build every agent family for this window, in plan order (see ``render_each``)."""
    return list(render_each(plan, window, settings, label_sets, shapes))


def render_each(
    plan: Plan,
    window: Window,
    settings: Settings,
    label_sets: LabelSets | None = None,
    shapes: dict[tuple[Any, ...], Shape] | None = None,
) -> Iterator[Metric]:
    """Build every agent family for this window, in plan order, one at a time.

    ``label_sets`` caches the per-bucket and per-quantile label dicts of each
    series between calls; it must be emptied whenever the plan changes.
    ``shapes`` caches histogram shapes by content, across plans (the agent's
    catalog only grows, so most families outlive a plan change unchanged).
    """
    latest, size = window.latest, window.catalog.version
    inputs = _Inputs(
        window=window,
        settings=settings,
        counters=_values(latest.counter_ids, latest.counter_values, size),
        gauges=_values(latest.gauge_ids, latest.gauge_values, size),
        seen=window.seen.tolist(),
        newest=_dense(latest),
        baseline=_dense(window.baseline),
        quantile_labels=tuple((_percentile_text if settings.raw else _go)(q) for q in settings.quantiles),
        label_sets={} if label_sets is None else label_sets,
        shapes={} if shapes is None else shapes,
    )
    for family in plan.families:
        if family.kind not in {COUNTER, GAUGE, SUMMARY}:
            yield _histogram_family(family, inputs)
            continue
        kind = family.kind
        if settings.raw and kind != GAUGE:
            # The original's counters have no _total (untyped here, as OpenMetrics allows no such
            # counter) and its summaries are gauges with a percentile label.
            kind = "unknown" if kind == COUNTER else GAUGE
        metric = Metric(family.name, family.help, kind, family.unit.base or "")
        if family.kind == COUNTER:
            _counter(metric, family, inputs)
        elif family.kind == GAUGE:
            _gauge(metric, family, inputs)
        else:
            _summaries(metric, family, inputs)
        yield metric


def _counter(metric: Metric, family: Family, inputs: _Inputs) -> None:
    total = family.name if inputs.settings.raw else family.name + "_total"
    convert = family.unit.convert
    for sid, labels in family.series:
        value = inputs.counters[sid]
        if not math.isnan(value):
            metric.add_sample(total, labels, convert(value))
        elif not inputs.seen[sid]:
            metric.add_sample(total, labels, 0.0)


def _gauge(metric: Metric, family: Family, inputs: _Inputs) -> None:
    convert = family.unit.convert
    for sid, labels in family.series:
        value = inputs.gauges[sid]
        if not math.isnan(value):
            metric.add_sample(family.name, labels, convert(value))


def _series_counts(family: Family, inputs: _Inputs) -> Iterator[tuple[int, int, dict[str, str], NDArray[np.uint64]]]:
    """(position in family, catalog id, labels, newest dense counts) of every series to expose."""
    zero = histogram.empty()
    for position, (sid, labels) in enumerate(family.series):
        counts = inputs.newest.get(sid)
        if counts is None:
            if inputs.seen[sid]:
                continue
            counts = zero
        yield position, sid, labels, counts


def _summaries(metric: Metric, family: Family, inputs: _Inputs) -> None:
    for _position, sid, labels, counts in _series_counts(family, inputs):
        _summary(metric, family, sid, labels, counts, inputs.baseline.get(sid), inputs)


def _estimated_sum(counts: NDArray[np.uint64]) -> float:
    return float(np.dot(counts.astype(np.float64), _midpoints()))


def _summary(  # noqa: PLR0917 - one call site, all parts of one sample set
    metric: Metric,
    family: Family,
    sid: int,
    labels: dict[str, str],
    counts: NDArray[np.uint64],
    baseline: NDArray[np.uint64] | None,
    inputs: _Inputs,
) -> None:
    convert = family.unit.convert
    answers: list[int | None] = [None] * len(inputs.quantile_labels)
    if inputs.window.baseline is not None:
        older = histogram.empty() if baseline is None else baseline
        in_window, _reset = histogram.delta(counts, older)
        answers = histogram.percentiles(in_window, inputs.settings.percents)
    key = (family.name, sid)
    label_sets = inputs.label_sets.get(key)
    raw = inputs.settings.raw
    if label_sets is None:
        label_name = "percentile" if raw else "quantile"
        label_sets = [{**labels, label_name: q} for q in inputs.quantile_labels]
        inputs.label_sets[key] = label_sets
    values = [NAN if answer is None else convert(answer) for answer in answers]
    if raw:
        # The original exposes only the percentiles it has, as gauges, without _sum and _count.
        pairs = zip(label_sets, values, strict=True)
        metric.samples.extend(Sample(family.name, one, value) for one, value in pairs if not math.isnan(value))
        return
    metric.samples.extend(map(Sample, repeat(family.name), label_sets, values))
    metric.add_sample(family.name + "_sum", labels, convert(_estimated_sum(counts)))
    metric.add_sample(family.name + "_count", labels, float(histogram.total(counts)))


def _shape(family: Family, inputs: _Inputs) -> Shape:
    """The family's fixed parts, built once per plan."""
    key = (family.name, -1)
    shape = inputs.label_sets.get(key)
    if isinstance(shape, Shape):
        return shape
    unit, grouping_power = family.unit, inputs.settings.grouping_power
    labels = [series_labels for _sid, series_labels in family.series]
    content = (family.name, family.help, unit, grouping_power, inputs.settings.raw, *map(_items, labels))
    known = inputs.shapes.get(content)
    if known is not None:
        inputs.label_sets[key] = known
        return known
    les = _le_labels(grouping_power, unit.multiplier, unit.divisor, raw=inputs.settings.raw)
    shape = Shape(
        name=family.name,
        documentation=family.help,
        unit=unit.base or "",
        labels=labels,
        bucket_labels=BucketLabels(labels, les),
        upper_bounds=_upper_bounds(grouping_power, unit.multiplier, unit.divisor),
    )
    inputs.label_sets[key] = shape
    if len(inputs.shapes) >= MAX_SHAPES:
        inputs.shapes.clear()
    inputs.shapes[content] = shape
    return shape


def _items(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(labels.items())


def _histogram_family(family: Family, inputs: _Inputs) -> HistogramFamily:
    settings, unit = inputs.settings, family.unit
    metric = HistogramFamily(_shape(family, inputs), classic=settings.classic)
    keys = native.agent_keys(unit.multiplier, unit.divisor) if settings.native else None
    for position, _sid, _labels, counts in _series_counts(family, inputs):
        memo_key = (family.name + "\0series", position)
        previous = inputs.label_sets.get(memo_key)
        if previous is not None and np.array_equal(previous[0], counts):
            metric.series.append(previous[1])  # nothing recorded since the last frame
            continue
        count = float(histogram.total(counts))
        cumulative = None
        if settings.classic:
            coarse = counts
            if settings.grouping_power < histogram.GROUPING_POWER:
                coarse = histogram.downsample(counts, settings.grouping_power)
            cumulative = np.cumsum(coarse, dtype=np.uint64).astype(np.float64).tolist()
            count = cumulative[-1]
        buckets = None if keys is None else native.to_native(counts, keys)
        total = unit.convert(_estimated_sum(counts))
        series = HistogramSeries(position, cumulative, total, count, buckets)
        inputs.label_sets[memo_key] = (counts, series)
        metric.series.append(series)
    return metric
