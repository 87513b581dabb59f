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
- A family is its header (the library's text of the family with no
  samples), then pieces: one per series of a histogram, one per run of
  ``PLAIN_RUN`` samples of any other family.  Each piece's pattern is built
  from the library's text of a family holding only that piece's samples,
  when ``parts`` reaches it: the library writes a family as its header and
  then one line per sample, each from that sample alone, so the pieces join
  to the family's text.  No piece of ``parts`` encodes more than one
  histogram series or one run through the library, so a catalog that grows
  by many series at once costs many small steps, not one (tested by
  counting encoded samples per piece).  A piece whose values equal those of
  the previous answer gets that answer's text again.
- A template is used only if the library's output for it has exactly one
  line per sample after the header, each starting with the sample's name
  and ending in `` 0.0``; a piece failing this is encoded by the library on
  its own (minus the header); families with timestamps, exemplars, native
  samples or the text format's relocated ``_created``/``_gsum``/``_gcount``
  samples go through the library as they are.
- ``Templates`` is keyed by content (a histogram's header by
  ``Shape.head_key``, each series by ``Shape.series_key``; another family's
  header by its name, HELP, type and unit, each run by its samples' names
  and labels too), so a plan change rebuilds only the pieces it changed (for
  a run, from the first sample that moved).  Templates no answer used
  since the last ``Templates.sweep`` (after each agent part) are dropped
  once they outnumber the used ones, so series that are gone do not pile
  up; ``MAX_TEMPLATES`` bounds the table in any case (cleared when full).
- A ``HistogramFamily`` without classic buckets is left out (it is served in
  protobuf answers only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, ParamSpec

from prometheus_client.core import Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from rezolus_exporter.histfamily import HistogramFamily

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from prometheus_client.registry import Collector

    from rezolus_exporter.histfamily import HistogramSeries

P = ParamSpec("P")
MAX_TEMPLATES = 1 << 16
PLAIN_RUN = 64
_ZERO = " 0.0"
_RELOCATED = ("_created", "_gsum", "_gcount")


@dataclass
class _Template:
    pattern: str
    texts: dict[float, str] = field(default_factory=dict)
    last_values: list[float] = field(default_factory=list)
    last_text: str = ""


class Templates(dict[Any, "_Template | str | None"]):
    """Text templates keyed by content, and the keys used since the last ``sweep``."""

    SLACK = 1024

    def __init__(self) -> None:
        super().__init__()
        self.used: set[Any] = set()

    def sweep(self) -> None:
        """Forget the templates nothing used since the last sweep, once they outnumber the used ones (plus ``SLACK``).

        Series of cgroups that are gone leave their templates behind; this
        keeps the table within about twice what one answer needs.
        """
        if len(self) > 2 * len(self.used) + self.SLACK:
            for key in [key for key in self if key not in self.used]:
                del self[key]
        self.used = set()


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


def _encode_blank(metric: Metric, samples: list[Sample], encoder: Callable[[Collector], bytes], eof: str) -> str:
    """The library's text of the family's header and the samples, every value 0.0."""
    blank = Metric(metric.name, metric.documentation, metric.type, metric.unit)
    blank.samples = [Sample(s.name, s.labels, 0.0) for s in samples]
    return encoder(Families([blank])).decode("utf-8").removesuffix(eof)


def _head(metric: Metric, encoder: Callable[[Collector], bytes], eof: str) -> str:
    """The library's header of the family (HELP, TYPE, UNIT lines)."""
    return _encode_blank(metric, [], encoder, eof)


def _build(metric: Metric, encoder: Callable[[Collector], bytes], eof: str, head: str) -> _Template | None:
    """A pattern for the family's sample lines (after ``head``, which the library writes first), or None if unusual."""
    samples = metric.samples
    text = _encode_blank(metric, samples, encoder, eof)
    if not text.startswith(head):
        return None
    lines = text[len(head) :].split("\n")[:-1]
    if len(lines) != len(samples):
        return None
    for line, sample in zip(lines, samples, strict=True):
        if not (line.startswith(sample.name) and line.endswith(_ZERO)):
            return None
    return _Template("".join(line[: -len(_ZERO) + 1].replace("%", "%%") + "%s\n" for line in lines))


def _plain_ok(samples: list[Sample]) -> bool:
    """Whether the fast path can take a family of these samples."""
    return not any(
        s.timestamp is not None
        or s.exemplar is not None
        or s.native_histogram is not None
        or s.name.endswith(_RELOCATED)
        for s in samples
    )


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


def _cached(
    templates: Templates, key: Any, build: Callable[P, _Template | str | None], *args: P.args, **kwargs: P.kwargs
) -> _Template | str | None:
    """The template stored under ``key`` (marked used), ``build(*args)`` first if there is none."""
    templates.used.add(key)
    if key in templates:
        return templates[key]
    if len(templates) >= MAX_TEMPLATES:
        templates.clear()
    made = templates[key] = build(*args, **kwargs)
    return made


def _header(templates: Templates, key: Any, metric: Metric, encoder: Callable[[Collector], bytes], eof: str) -> str:
    """The family's header text, built once per ``key`` (format and what the header depends on)."""
    head = _cached(templates, key, _head, metric, encoder, eof)
    if not isinstance(head, str):
        raise TypeError(head)
    return head


def _histogram(
    family: HistogramFamily, encoder: Callable[[Collector], bytes], eof: str, fmt: Any, templates: Templates
) -> Iterator[str]:
    """The family's text: its header, then one piece per series, each series' pattern built when first needed."""
    shape = family.shape
    head = _header(templates, (fmt, shape.head_key), family, encoder, eof)
    yield head
    series_key = shape.series_key
    for series in family.series:
        cumulative = series.cumulative
        key = (fmt, series_key(series.index), cumulative is None)
        template = _cached(templates, key, _build_series, family, series, encoder, eof, head)
        if not isinstance(template, _Template):
            text = encoder(Families([_one_series(family, series)])).decode("utf-8")
            yield text.removesuffix(eof).removeprefix(head)
        elif cumulative is None:
            yield _fill(template, [series.sum, series.count])
        else:
            yield _fill(template, [*cumulative, series.sum, series.count])


def _build_series(
    family: HistogramFamily, series: HistogramSeries, encoder: Callable[[Collector], bytes], eof: str, head: str
) -> _Template | None:
    """A pattern for one series' lines."""
    return _build(_one_series(family, series), encoder, eof, head)


def _one_series(family: HistogramFamily, series: HistogramSeries) -> HistogramFamily:
    """A family of the same shape holding only this series."""
    one = HistogramFamily(family.shape, classic=family.classic)
    one.series.append(series)
    return one


def _plain(
    metric: Metric, encoder: Callable[[Collector], bytes], eof: str, fmt: Any, templates: Templates
) -> Iterator[str] | None:
    """A family other than a histogram in pieces (see ``_runs``), or None if the fast path cannot take it."""
    return _runs(metric, encoder, eof, fmt, templates) if _plain_ok(metric.samples) else None


def _runs(
    metric: Metric, encoder: Callable[[Collector], bytes], eof: str, fmt: Any, templates: Templates
) -> Iterator[str]:
    """The header, then one piece per run of ``PLAIN_RUN`` samples, each pattern built when first reached."""
    meta = (metric.name, metric.documentation, metric.type, metric.unit)
    head = _header(templates, (fmt, meta), metric, encoder, eof)
    yield head
    samples = metric.samples
    for start in range(0, len(samples), PLAIN_RUN):
        run = Metric(metric.name, metric.documentation, metric.type, metric.unit)
        run.samples = samples[start : start + PLAIN_RUN]
        key = (fmt, meta, tuple((one.name, tuple(one.labels.items())) for one in run.samples))
        template = _cached(templates, key, _build, run, encoder, eof, head)
        if isinstance(template, _Template):
            yield _fill(template, [s.value for s in run.samples])
        else:
            yield encoder(Families([run])).decode("utf-8").removesuffix(eof).removeprefix(head)


def _fast(
    metric: Metric, encoder: Callable[[Collector], bytes], eof: str, fmt: Any, templates: Templates
) -> Iterator[str] | None:
    """The family's text in pieces of a bounded number of samples (a histogram's per series), or None."""
    if isinstance(metric, HistogramFamily):
        return _histogram(metric, encoder, eof, fmt, templates)
    return _plain(metric, encoder, eof, fmt, templates)


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
    templates = Templates() if templates is None else templates
    return ("".join(parts(families, encoder, templates)) + end_of(encoder)).encode("utf-8")
