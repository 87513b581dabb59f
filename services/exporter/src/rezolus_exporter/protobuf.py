"""Prometheus's protobuf exposition (delimited ``io.prometheus.client.MetricFamily``).

Invariants:
- Pure: families in, bytes out.  Each family is one ``MetricFamily`` message
  prefixed by its length as a varint (the protobuf library's encoder); the
  messages are independent, so the encoding of a list of families is the
  concatenation of the encodings of its parts (``parts``).
- Counters are named with ``_total`` (the protobuf format has no suffixes:
  the family name is the series name), summaries and histograms without.
- A ``HistogramFamily`` carries its native histogram (schema, zero bucket,
  spans, deltas: ``native``) when it has one, and its classic buckets (``le``
  without +Inf) when classic histograms are on; Prometheus 2.42 with native
  histograms enabled ingests the native one.
- Other families are converted from their prometheus_client samples; types
  this exporter never produces (info, stateset, gaugehistogram) are untyped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from google.protobuf.internal.encoder import _VarintBytes  # type: ignore[attr-defined]  # the library's varint

from rezolus_exporter import metrics_pb2 as pb
from rezolus_exporter import native
from rezolus_exporter.histfamily import HistogramFamily

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from prometheus_client.core import Metric

CONTENT_TYPE = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
MEDIA_TYPE = "application/vnd.google.protobuf"
_TYPES = {"counter": pb.COUNTER, "gauge": pb.GAUGE, "summary": pb.SUMMARY, "histogram": pb.HISTOGRAM}


def _labels(metric: pb.Metric, labels: dict[str, str]) -> None:
    for name in sorted(labels):
        metric.label.add(name=name, value=labels[name])


def _histogram_family(family: HistogramFamily) -> pb.MetricFamily:
    out = pb.MetricFamily(name=family.name, help=family.documentation, type=pb.HISTOGRAM)
    shape = family.shape
    for series in family.series:
        metric = out.metric.add()
        _labels(metric, shape.labels[series.index])
        hist = metric.histogram
        hist.sample_count = int(series.count)
        hist.sample_sum = series.sum
        if series.cumulative is not None:
            for bound, cumulative in zip(shape.upper_bounds, series.cumulative, strict=False):
                hist.bucket.add(cumulative_count=int(cumulative), upper_bound=bound)
        buckets = series.native
        if buckets is not None:
            hist.schema = native.SCHEMA
            hist.zero_threshold = native.ZERO_THRESHOLD
            hist.zero_count = buckets.zero_count
            for offset, length in buckets.spans:
                hist.positive_span.add(offset=offset, length=length)
            hist.positive_delta.extend(buckets.deltas)
    return out


def _split(sample_labels: dict[str, str], reserved: str) -> tuple[tuple[tuple[str, str], ...], str | None]:
    labels = tuple(sorted((k, v) for k, v in sample_labels.items() if k != reserved))
    return labels, sample_labels.get(reserved)


def _generic_family(family: Metric) -> pb.MetricFamily:
    kind = family.type
    name = family.name + "_total" if kind == "counter" else family.name
    out = pb.MetricFamily(name=name, help=family.documentation, type=_TYPES.get(kind, pb.UNTYPED))
    series: dict[tuple[tuple[str, str], ...], pb.Metric] = {}
    reserved = {"summary": "quantile", "histogram": "le"}.get(kind, "")
    for sample in family.samples:
        key, special = _split(sample.labels, reserved)
        metric = series.get(key)
        if metric is None:
            metric = out.metric.add()
            _labels(metric, dict(key))
            series[key] = metric
        suffix = sample.name[len(family.name) :]
        value = sample.value
        if kind == "counter":
            if suffix == "_total":
                metric.counter.value = value
        elif kind == "gauge":
            metric.gauge.value = value
        elif kind in {"summary", "histogram"}:
            _aggregate(metric, kind, suffix, special, value)
        else:
            metric.untyped.value = value
    return out


def _aggregate(metric: pb.Metric, kind: str, suffix: str, special: str | None, value: float) -> None:
    part = metric.summary if kind == "summary" else metric.histogram
    if suffix == "_sum":
        part.sample_sum = value
    elif suffix == "_count":
        part.sample_count = int(value)
    elif kind == "summary" and special is not None:
        metric.summary.quantile.add(quantile=float(special), value=value)
    elif suffix == "_bucket" and special is not None and special != "+Inf":
        metric.histogram.bucket.add(cumulative_count=int(value), upper_bound=float(special))


def parts(families: Iterable[Metric]) -> Iterator[bytes]:
    """Each family as one length-prefixed MetricFamily message (none for a family without series)."""
    for family in families:
        message = _histogram_family(family) if isinstance(family, HistogramFamily) else _generic_family(family)
        if not message.metric:
            continue
        body = message.SerializeToString()
        yield _VarintBytes(len(body)) + body


def generate(families: Iterable[Metric]) -> bytes:
    """Encode the families as delimited MetricFamily messages."""
    return b"".join(parts(families))


def _quality(params: list[str]) -> float:
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def prefers_protobuf(accept: str) -> bool:
    """Whether an Accept header asks for delimited MetricFamily protobuf above every text format."""
    best_protobuf, best_other = 0.0, 0.0
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        q = _quality(params)
        if media.lower() == MEDIA_TYPE:
            options = dict(p.partition("=")[::2] for p in params)
            if options.get("proto") == "io.prometheus.client.MetricFamily" and options.get("encoding") == "delimited":
                best_protobuf = max(best_protobuf, q)
        elif media and media != "*/*":
            best_other = max(best_other, q)
    return best_protobuf > 0 and best_protobuf >= best_other
