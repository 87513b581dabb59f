"""A histogram family as data: per-series buckets for the fast text path and for protobuf.

Invariants:
- A ``Shape`` is built once per plan and family (name, HELP, unit, every
  series' labels, the ``le`` texts) and never changes; ``key`` says what its
  text depends on, so text templates (``fasttext``) outlive a plan change
  that left the family as it was.
- ``HistogramFamily.samples`` is the exact sample list prometheus_client
  expects (per series: every ``_bucket``, then ``_sum``, then ``_count``),
  built only when something asks for it; the fast text path and the protobuf
  encoder read ``series`` instead.
- A family without classic buckets (native histograms only) has no
  ``_bucket`` samples; such a family is served in protobuf answers only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import repeat
from typing import TYPE_CHECKING, Any

from prometheus_client.core import Metric
from prometheus_client.samples import Sample

if TYPE_CHECKING:
    from rezolus_exporter.native import NativeBuckets


@dataclass(eq=False)
class Shape:
    """What stays fixed for one histogram family while the plan does."""

    name: str
    documentation: str
    unit: str
    labels: list[dict[str, str]]
    bucket_labels: list[list[dict[str, str]]]
    upper_bounds: tuple[float, ...]
    _key: tuple[Any, ...] | None = field(default=None, repr=False)

    @property
    def key(self) -> tuple[Any, ...]:
        """Everything the family's label text depends on (equal shapes of two plans share templates)."""
        if self._key is None:
            les = tuple(labels["le"] for labels in self.bucket_labels[0]) if self.bucket_labels else ()
            series = tuple(tuple(labels.items()) for labels in self.labels)
            self._key = (self.name, self.documentation, self.unit, series, les)
        return self._key


@dataclass(frozen=True)
class HistogramSeries:
    """One series' numbers for one window."""

    index: int
    cumulative: list[float] | None
    sum: float
    count: float
    native: NativeBuckets | None


class HistogramFamily(Metric):
    """A histogram family whose samples are materialised lazily."""

    _samples: list[Sample] | None

    def __init__(self, shape: Shape, *, classic: bool) -> None:
        super().__init__(shape.name, shape.documentation, "histogram", shape.unit)
        self.shape = shape
        self.classic = classic
        self.series: list[HistogramSeries] = []

    @property
    def samples(self) -> list[Sample]:
        """prometheus_client's view: buckets (when classic), sum and count of every series."""
        if self._samples is None:
            out: list[Sample] = []
            name = self.shape.name
            for series in self.series:
                labels = self.shape.labels[series.index]
                if series.cumulative is not None:
                    bucket_labels = self.shape.bucket_labels[series.index]
                    out.extend(map(Sample, repeat(name + "_bucket"), bucket_labels, series.cumulative))
                out.append(Sample(name + "_sum", labels, series.sum))
                out.append(Sample(name + "_count", labels, series.count))
            self._samples = out
        return self._samples

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        self._samples = value or None
