"""Text exposition on a fast path: the library's text for labels, cached; only values formatted per scrape.

prometheus_client formats every sample on its own (label sorting and
escaping, float formatting): ~16,000 lines a scrape with full histograms at
grouping power 3.  Here each family is written from a template instead.

Invariants:
- Every byte comes from prometheus_client: once per family shape (names,
  labels, HELP, type, unit) and format, the chosen library encoder encodes
  the family with every value 0.0, and the text around each value is kept as
  a ``%``-pattern.  A scrape fills the pattern with the values formatted by
  the library's own ``floatToGoString``, so the answer is byte-identical to
  the library's encoding of the same families (tested: golden files and a
  property test).
- A histogram family's pattern is cut per series (other families are one
  piece), so a frame's text is built in small steps; a piece whose values
  equal those of the previous answer gets that answer's text again.
- A template is used only if the library's output for it has exactly one
  line per sample, each starting with the sample's name and ending in
  `` 0.0``; families with timestamps, exemplars, native samples or the text
  format's relocated ``_created``/``_gsum``/``_gcount`` samples go through
  the library as they are.
- ``Templates`` is keyed by content (a ``HistogramFamily`` by its
  ``Shape.key``), so a plan change rebuilds only the families it changed; it
  is bounded (``MAX_TEMPLATES``; cleared when full).
- A ``HistogramFamily`` without classic buckets is left out (it is served in
  protobuf answers only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from prometheus_client.core import Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from rezolus_exporter.histfamily import HistogramFamily

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from prometheus_client.registry import Collector

MAX_TEMPLATES = 4096
_ZERO = " 0.0"
_RELOCATED = ("_created", "_gsum", "_gcount")


@dataclass
class _Template:
    pattern: str
    texts: dict[float, str] = field(default_factory=dict)
    last_values: list[float] = field(default_factory=list)
    last_text: str = ""


Templates = dict[Any, "list[_Template] | None"]


class Families:
    """A collector over a fixed list of families (what the library encoders take)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        """The families, in order."""
        return self.families


def format_key(encoder: Callable[[Collector], bytes]) -> Any:
    """What tells two encoders apart (equal partials of one function are one format)."""
    if isinstance(encoder, partial):
        return (encoder.func, tuple(sorted(encoder.keywords.items())), encoder.args)
    return encoder


def _build(
    metric: Metric, sizes: list[int], encoder: Callable[[Collector], bytes], eof: str
) -> list[_Template] | None:
    """Encode the family with zero values and cut the text into patterns of ``sizes`` lines each, or None if unusual."""
    samples = metric.samples
    blank = Metric(metric.name, metric.documentation, metric.type, metric.unit)
    blank.samples = [Sample(s.name, s.labels, 0.0) for s in samples]
    text = encoder(Families([blank])).decode("utf-8").removesuffix(eof)
    lines = text.split("\n")[:-1]
    header = [line for line in lines if line.startswith("# ")]
    body = lines[len(header) :]
    if len(body) != len(samples):
        return None
    for line, sample in zip(body, samples, strict=True):
        if not (line.startswith(sample.name) and line.endswith(_ZERO)):
            return None
    escaped = [line[: -len(_ZERO) + 1].replace("%", "%%") + "%s\n" for line in body]
    chunks, start = [], 0
    for size in sizes:
        chunks.append(_Template("".join(escaped[start : start + size])))
        start += size
    chunks[0].pattern = "".join(line.replace("%", "%%") + "\n" for line in header) + chunks[0].pattern
    return chunks


def _plain_key(metric: Metric) -> tuple[Any, ...] | None:
    """What the text of a family's labels depends on, or None if the fast path cannot take it."""
    parts = []
    for s in metric.samples:
        if s.timestamp is not None or s.exemplar is not None or s.native_histogram is not None:
            return None
        if s.name.endswith(_RELOCATED):
            return None
        parts.append((s.name, tuple(s.labels.items())))
    return (metric.name, metric.documentation, metric.type, metric.unit, tuple(parts))


def _histogram_values(family: HistogramFamily) -> tuple[list[float], list[int]]:
    """The values of every sample in order, and how many belong to each series."""
    out: list[float] = []
    sizes: list[int] = []
    for series in family.series:
        start = len(out)
        if series.cumulative is not None:
            out.extend(series.cumulative)
        out.append(series.sum)
        out.append(series.count)
        sizes.append(len(out) - start)
    return out, sizes or [0]


def _fill(template: _Template, values: list[float]) -> str:
    """The template with the values, texts of values seen in the last scrape reused."""
    if values == template.last_values:  # an idle family: same text as last time
        return template.last_text
    previous, texts = template.texts, {}
    for value in set(values):
        text = previous.get(value)
        texts[value] = floatToGoString(value) if text is None else text  # type: ignore[no-untyped-call]
    template.texts = texts
    text = template.pattern % tuple(map(texts.__getitem__, values))
    template.last_values, template.last_text = values, text
    return text


def _fast(
    metric: Metric, encoder: Callable[[Collector], bytes], eof: str, fmt: Any, templates: Templates
) -> Iterator[str] | None:
    """The family's text, one piece per series of a histogram (one for other families), or None."""
    if isinstance(metric, HistogramFamily):
        present = tuple((s.index, s.cumulative is None) for s in metric.series)
        key: Any = (fmt, metric.shape.key, present)
        values, sizes = _histogram_values(metric)
    else:
        plain = _plain_key(metric)
        if plain is None:
            return None
        key = (fmt, plain)
        values = [s.value for s in metric.samples]
        sizes = [len(values)]
    if key not in templates:
        if len(templates) >= MAX_TEMPLATES:
            templates.clear()
        templates[key] = _build(metric, sizes, encoder, eof)
    chunks = templates[key]
    if chunks is None:
        return None
    starts = accumulate(sizes[:-1], initial=0)
    return (_fill(chunk, values[a : a + n]) for chunk, a, n in zip(chunks, starts, sizes, strict=True))


def end_of(encoder: Callable[[Collector], bytes]) -> str:
    """What the encoder writes after the last family (``# EOF`` for OpenMetrics, nothing for 0.0.4)."""
    return encoder(Families([])).decode("utf-8")


def parts(families: Iterable[Metric], encoder: Callable[[Collector], bytes], templates: Templates) -> Iterator[str]:
    """The families' text in pieces (a histogram's per series), exactly as the library encoder writes it.

    Without the end (see ``end_of``).
    """
    eof = end_of(encoder)
    key = format_key(encoder)
    for family in families:
        if isinstance(family, HistogramFamily) and not family.classic:
            continue
        pieces = _fast(family, encoder, eof, key, templates)
        if pieces is None:
            yield encoder(Families([family])).decode("utf-8").removesuffix(eof)
        else:
            yield from pieces


def generate(
    families: Iterable[Metric], encoder: Callable[[Collector], bytes], templates: Templates | None = None
) -> bytes:
    """Encode the families exactly as the library encoder would (``templates`` carries the cache between calls)."""
    templates = {} if templates is None else templates
    return ("".join(parts(families, encoder, templates)) + end_of(encoder)).encode("utf-8")
