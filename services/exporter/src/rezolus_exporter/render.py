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
- ``_sum`` is an estimate (the agent's histograms keep no exact sum): each
  bucket contributes its count times the midpoint of its full-resolution
  range, so the error per value is below half a bucket width (6.25 % at g=3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from itertools import repeat
from typing import TYPE_CHECKING

import numpy as np
from prometheus_client.core import Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from rezolus_core import histogram
from rezolus_exporter.plan import COUNTER, GAUGE, SUMMARY

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from rezolus_core.frame import Frame
    from rezolus_exporter.plan import Family, Plan
    from rezolus_exporter.state import Snapshot, Window

NAN = math.nan


@dataclass(frozen=True)
class Settings:
    """The parts of the configuration that shape the exposition."""

    quantiles: tuple[float, ...]
    percents: tuple[float, ...]
    grouping_power: int


def _go(value: float) -> str:
    """Format a float as Go's strconv does (how Prometheus prints label floats)."""
    return floatToGoString(value)  # type: ignore[no-any-return,no-untyped-call]


@cache
def _midpoints() -> NDArray[np.float64]:
    lay = histogram.layout()
    return (lay.lower.astype(np.float64) + lay.upper.astype(np.float64)) / 2.0


@cache
def _le_labels(grouping_power: int, multiplier: float, divisor: float) -> tuple[str, ...]:
    upper = histogram.layout(grouping_power).upper.tolist()
    return (*(_go(u * multiplier / divisor) for u in upper[:-1]), "+Inf")


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


LabelSets = dict[tuple[str, int], list[dict[str, str]]]


def render(plan: Plan, window: Window, settings: Settings, label_sets: LabelSets | None = None) -> list[Metric]:
    """Build every agent family for this window, in plan order.

    ``label_sets`` caches the per-bucket and per-quantile label dicts of each
    series between calls; it must be emptied whenever the plan changes.
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
        quantile_labels=tuple(_go(q) for q in settings.quantiles),
        label_sets={} if label_sets is None else label_sets,
    )
    out: list[Metric] = []
    for family in plan.families:
        metric = Metric(family.name, family.help, family.kind, family.unit.base or "")
        if family.kind == COUNTER:
            _counter(metric, family, inputs)
        elif family.kind == GAUGE:
            _gauge(metric, family, inputs)
        else:
            _distribution(metric, family, inputs)
        out.append(metric)
    return out


def _counter(metric: Metric, family: Family, inputs: _Inputs) -> None:
    total, convert = family.name + "_total", family.unit.convert
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


def _distribution(metric: Metric, family: Family, inputs: _Inputs) -> None:
    zero = histogram.empty()
    for sid, labels in family.series:
        counts = inputs.newest.get(sid)
        if counts is None:
            if inputs.seen[sid]:
                continue
            counts = zero
        if family.kind == SUMMARY:
            _summary(metric, family, sid, labels, counts, inputs.baseline.get(sid), inputs)
        else:
            _histogram(metric, family, sid, labels, counts, inputs)


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
    if label_sets is None:
        label_sets = [{**labels, "quantile": q} for q in inputs.quantile_labels]
        inputs.label_sets[key] = label_sets
    values = [NAN if answer is None else convert(answer) for answer in answers]
    metric.samples.extend(map(Sample, repeat(family.name), label_sets, values))
    metric.add_sample(family.name + "_sum", labels, convert(_estimated_sum(counts)))
    metric.add_sample(family.name + "_count", labels, float(histogram.total(counts)))


def _histogram(  # noqa: PLR0917 - one call site, all parts of one sample set
    metric: Metric,
    family: Family,
    sid: int,
    labels: dict[str, str],
    counts: NDArray[np.uint64],
    inputs: _Inputs,
) -> None:
    unit = family.unit
    grouping_power = inputs.settings.grouping_power
    coarse = counts
    if grouping_power < histogram.GROUPING_POWER:
        coarse = histogram.downsample(counts, grouping_power)
    cumulative = np.cumsum(coarse, dtype=np.uint64).astype(np.float64).tolist()
    key = (family.name, sid)
    label_sets = inputs.label_sets.get(key)
    if label_sets is None:
        les = _le_labels(grouping_power, unit.multiplier, unit.divisor)
        label_sets = [{**labels, "le": le} for le in les]
        inputs.label_sets[key] = label_sets
    metric.samples.extend(map(Sample, repeat(family.name + "_bucket"), label_sets, cumulative))
    metric.add_sample(family.name + "_sum", labels, unit.convert(_estimated_sum(counts)))
    metric.add_sample(family.name + "_count", labels, cumulative[-1])
