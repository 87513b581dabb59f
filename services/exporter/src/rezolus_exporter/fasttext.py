"""Text exposition with a fast path for classic histogram buckets.

prometheus_client formats every sample on its own (label escaping, sorting,
float formatting), which for full histograms at grouping power 3 is ~8,000
``_bucket`` lines a scrape.  Here, those lines are written from a template:

Invariants:
- Every byte comes from prometheus_client: the families other than
  ``HistogramFamily`` are encoded by the chosen library encoder; for a
  ``HistogramFamily`` the library encodes, once per shape and format, a
  template of the family with every value 0.0, and each sample line's text
  before the value is kept.  A scrape then joins those prefixes with the
  values formatted by the library's own ``floatToGoString``, so the answer is
  byte-identical to the library's encoding of the same families (tested).
- The template is trusted only if the library's lines for it are exactly one
  per sample, each ending in `` 0.0``; otherwise the family goes through the
  library's slow path.
- A ``HistogramFamily`` without classic buckets is left out (it is served in
  protobuf answers only).
"""

from __future__ import annotations

import math
from functools import partial
from typing import TYPE_CHECKING, Any

from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from rezolus_exporter.histfamily import HistogramFamily

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from prometheus_client.core import Metric
    from prometheus_client.registry import Collector

_ZERO = " 0.0"


class _Families:
    """A collector over a fixed list of families (what the library encoders take)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        """The families, in order."""
        return self.families


def _format_key(encoder: Callable[[Collector], bytes]) -> Any:
    if isinstance(encoder, partial):
        return (encoder.func, tuple(sorted(encoder.keywords.items())), encoder.args)
    return encoder


def _template(family: HistogramFamily, encoder: Callable[[Collector], bytes], eof: str) -> tuple[str, list[str]] | None:
    """Header text and per-sample prefixes for the family's shape, or None if the library's output is unusual."""
    present = tuple((s.index, s.cumulative is None) for s in family.series)
    key = (_format_key(encoder), present)
    shape = family.shape
    cached = shape.templates.get(key)
    if cached is not None or key in shape.templates:
        return cached
    blank = HistogramFamily(shape, classic=True)
    blank.series = family.series
    zeros = [Sample(s.name, s.labels, 0.0) for s in blank.samples]
    blank.samples = zeros
    text = encoder(_Families([blank])).decode("utf-8")
    text = text.removesuffix(eof)
    lines = text.split("\n")[:-1]
    header = [line for line in lines if line.startswith("# ")]
    body = lines[len(header) :]
    result: tuple[str, list[str]] | None = None
    if len(body) == len(zeros) and all(line.endswith(_ZERO) for line in body):
        result = ("".join(line + "\n" for line in header), [line[: -len(_ZERO) + 1] for line in body])
    shape.templates[key] = result
    return result


def _values(family: HistogramFamily) -> tuple[list[float], list[float]]:
    """Every sample value in template order, and the ``_sum`` values (the only ones that can be NaN)."""
    out: list[float] = []
    sums: list[float] = []
    for series in family.series:
        if series.cumulative is not None:
            out.extend(series.cumulative)
        out.append(series.sum)
        out.append(series.count)
        sums.append(series.sum)
    return out, sums


def _fast(family: HistogramFamily, encoder: Callable[[Collector], bytes], eof: str) -> str | None:
    template = _template(family, encoder, eof)
    if template is None:
        return None
    header, prefixes = template
    values, sums = _values(family)
    if len(values) != len(prefixes) or any(math.isnan(v) for v in sums):
        return None
    # Most bucket counts are unchanged from one frame to the next: keep last scrape's texts.
    previous: dict[float, str] = family.shape.templates.get("values", {})
    texts = {}
    for value in set(values):
        text = previous.get(value)
        texts[value] = floatToGoString(value) + "\n" if text is None else text  # type: ignore[no-untyped-call]
    family.shape.templates["values"] = texts
    return header + "".join(map(str.__add__, prefixes, map(texts.__getitem__, values)))


def generate(families: Iterable[Metric], encoder: Callable[[Collector], bytes]) -> bytes:
    """Encode the families as the library encoder would, histogram buckets on the fast path."""
    eof = encoder(_Families([])).decode("utf-8")
    parts: list[str] = []
    batch: list[Metric] = []

    def flush() -> None:
        if batch:
            parts.append(encoder(_Families(batch)).decode("utf-8").removesuffix(eof))
            batch.clear()

    for family in families:
        if isinstance(family, HistogramFamily):
            if not family.classic:
                continue
            flush()
            text = _fast(family, encoder, eof)
            if text is None:
                batch.append(family)
                continue
            parts.append(text)
        else:
            batch.append(family)
    flush()
    parts.append(eof)
    return "".join(parts).encode("utf-8")
