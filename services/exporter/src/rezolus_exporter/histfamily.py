"""A histogram family as data: per-series buckets for the fast text path and for protobuf.

Invariants:
- A ``Shape`` is built once per plan and family (name, HELP, unit, every
  series' labels, the ``le`` texts) and never changes; building it costs
  nothing per bucket (``BucketLabels`` makes a series' bucket label sets
  when something first reads them); ``head_key`` and
  ``series_key`` say what the text of its header and of each series depends
  on, so text templates (``fasttext``) of a series outlive a plan change
  that added or removed other series.
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
from typing import TYPE_CHECKING, Protocol

from prometheus_client.core import Metric
from prometheus_client.samples import Sample

if TYPE_CHECKING:
    from rezolus_exporter.native import NativeBuckets


class SeriesBucketLabels(Protocol):
    """Per series, the label sets of its buckets (a list, or ``BucketLabels``)."""

    def __getitem__(self, index: int, /) -> list[dict[str, str]]:
        """The bucket label sets of series ``index``."""
        ...  # pragma: no cover - a protocol


class BucketLabels:
    """Every series' bucket label sets (its labels plus ``le``), each series' made when first read."""

    def __init__(self, labels: list[dict[str, str]], les: tuple[str, ...]) -> None:
        self.labels = labels
        self.les = les
        self.made: dict[int, list[dict[str, str]]] = {}

    def __getitem__(self, index: int, /) -> list[dict[str, str]]:
        """The bucket label sets of series ``index``."""
        sets = self.made.get(index)
        if sets is None:
            labels = self.labels[index]
            sets = self.made[index] = [{**labels, "le": le} for le in self.les]
        return sets


@dataclass(eq=False)
class Shape:
    """What stays fixed for one histogram family while the plan does."""

    name: str
    documentation: str
    unit: str
    labels: list[dict[str, str]]
    bucket_labels: SeriesBucketLabels
    upper_bounds: tuple[float, ...]
    _series_keys: dict[int, tuple[str, ...]] = field(default_factory=dict, repr=False)
    _les: dict[tuple[str, ...], str] = field(default_factory=dict, repr=False)

    @property
    def head_key(self) -> tuple[str, str, str]:
        """What the family's header text depends on."""
        return (self.name, self.documentation, self.unit)

    def series_key(self, index: int) -> tuple[str, ...]:
        """Everything the label text of series ``index`` depends on (equal in every shape that has the series).

        Strings only, so hashing it costs a handful of cached string hashes;
        series with equal ``le`` texts share one string of them.  Made when
        first asked for, so a new shape costs one series' work per call.
        """
        key = self._series_keys.get(index)
        if key is None:
            buckets = self.bucket_labels
            les = buckets.les if isinstance(buckets, BucketLabels) else tuple(one["le"] for one in buckets[index])
            text = self._les.setdefault(les, "\0".join(les))
            key = (self.name, self.documentation, self.unit, text, repr(tuple(self.labels[index].items())))
            self._series_keys[index] = key
        return key


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
