"""Catalog growth: the text of new histogram series is built a series at a time, never a whole family in one step.

Work is counted, not timed: every call of the library encoder is wrapped to
count the samples it encodes, and the count between two pieces of
``fasttext.parts`` (or two pauses of ``Answers.prerender``) is the work of one
step, whatever the machine's speed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from test_exporter_answer import Constant, drive, one_stream
from test_exporter_render import PERCENTS, Clock

from rezolus_core.frame import MetricType
from rezolus_core.tracker import Delivery
from rezolus_exporter import answer, fasttext
from rezolus_exporter.collector import AgentCollector
from rezolus_exporter.config import DEFAULT_QUANTILES
from rezolus_exporter.histfamily import HistogramFamily, HistogramSeries, Shape
from rezolus_exporter.render import Settings
from rezolus_exporter.state import AgentState
from support import synth

if TYPE_CHECKING:
    from collections.abc import Callable

    from prometheus_client.registry import Collector

    from rezolus_core.frame import Catalog

LES = ("0.001", "0.01", "0.1", "1.0", "+Inf")
PER_SERIES = len(LES) + 2  # buckets, _sum, _count
BEFORE, AFTER = 2, 48
RUN = 10  # samples per piece of a family other than a histogram (fasttext.PLAIN_RUN, set small here)


def counting(encoder: Callable[[Collector], bytes]) -> tuple[Callable[[Collector], bytes], list[int]]:
    """The encoder, and a list that gets the number of samples of every call."""
    calls: list[int] = []

    def encode(registry: Collector) -> bytes:
        calls.append(sum(len(family.samples) for family in registry.collect()))
        return encoder(registry)

    return encode, calls


def family(cgroups: int, generation: int = 0) -> HistogramFamily:
    """A histogram family with one series per cgroup, as a growing catalog gives it (names differ by generation)."""
    labels = [{"name": f"/svc/g{generation}/c{n}" if generation else f"/svc/c{n}"} for n in range(cgroups)]
    shape = Shape(
        name="cgroup_latency_seconds",
        documentation="Latency per cgroup.",
        unit="seconds",
        labels=labels,
        bucket_labels=[[{**one, "le": le} for le in LES] for one in labels],
        upper_bounds=tuple(float(le) for le in LES[:-1]),
    )
    out = HistogramFamily(shape, classic=True)
    for n in range(cgroups):
        cumulative = [float(n + k) for k in range(len(LES))]
        out.series.append(HistogramSeries(n, cumulative, 0.5 * n, cumulative[-1], None))
    return out


@pytest.mark.parametrize("library", [generate_openmetrics, generate_latest])
def test_a_grown_histogram_family_is_built_one_series_per_piece(library):
    """2 series, then 48, then 49 (new shapes): no piece encodes more than one series, only new series are encoded."""
    encoder, calls = counting(library)
    templates: fasttext.Templates = fasttext.Templates()
    for cgroups, new in ((BEFORE, BEFORE), (AFTER, AFTER - BEFORE), (AFTER + 1, 1), (AFTER + 1, 0)):
        grown = family(cgroups)
        eof = fasttext.end_of(library).encode()
        pieces, per_piece = [], []
        for piece in fasttext.parts([grown], encoder, templates):
            per_piece.append(sum(calls))
            calls.clear()
            pieces.append(piece)
        assert "".join(pieces).encode() + eof == library(fasttext.Families([grown]))
        assert len(pieces) >= cgroups
        assert max(per_piece) <= PER_SERIES
        assert sum(per_piece) == PER_SERIES * new  # the new series, each once


def cgroup_catalog(cgroups: int) -> Catalog:
    """One counter and a latency histogram per cgroup (ids of the old cgroups kept as the catalog grows)."""
    rows: list[synth.Row] = [("cpu_usage", MetricType.COUNTER, {"state": "user", "id": "0"}, "nanoseconds")]
    rows.extend(
        ("cgroup_latency", MetricType.HISTOGRAM, {"name": f"/svc/c{n}"}, "nanoseconds", "Latency per cgroup.")
        for n in range(cgroups)
    )
    return synth.catalog("agent-a", rows=rows)


@pytest.mark.parametrize("summaries", [False, True])
def test_prerendering_after_catalog_growth_encodes_at_most_one_series_per_step(summaries, monkeypatch):
    """46 histogram series appear at once: a step encodes one at most (or one run of samples); scrapes get the old."""
    monkeypatch.setattr(answer, "SLICE_S", 0.0)  # pause after every piece
    monkeypatch.setattr(fasttext, "PLAIN_RUN", RUN)
    clock = Clock()
    state = AgentState(15 * synth.SEC, clock=clock, keep_history=summaries)
    settings = Settings(DEFAULT_QUANTILES, PERCENTS, 1)
    collector = AgentCollector(state, settings, summaries=summaries, histograms=True)
    encoder, calls = counting(generate_openmetrics)
    now = [0.0]
    answers = answer.Answers(collector, Constant(), clock=lambda: now[0])
    small, large = cgroup_catalog(BEFORE), cgroup_catalog(AFTER)
    for seq, cat in enumerate((small, small, small, large)):
        before = answers.answer(encoder, gzipped=True)  # a scrape of the previous frame
        now[0] += 1.0
        clock.now = (seq + 1) * synth.SEC
        state.ingest(Delivery(synth.frame(cat, seq, clock.now), cat, 0, restarted=False))
        building = answers.prerender(1.0)
        calls.clear()
        per_step = []
        while True:
            try:
                building.send(None)
            except StopIteration:
                break
            per_step.append(sum(calls))
            calls.clear()
            assert answers.answer(encoder, gzipped=True) == before  # meanwhile: the previous frame's answer, whole
        per_step.append(sum(calls))
    (latency,) = (one for one in collector.families() if isinstance(one, HistogramFamily))
    made = latency.shape.bucket_labels.made
    assert sorted(made) == list(range(BEFORE, AFTER))  # the new shape made label sets for the new series only
    buckets = len(made[BEFORE])
    per_series = len(DEFAULT_QUANTILES) + 2
    kept = BEFORE * per_series // RUN * RUN  # the summary family's runs that were full before
    summary_samples = AFTER * per_series - kept if summaries else 0
    assert sum(per_step) == (AFTER - BEFORE) * (buckets + 2) + summary_samples  # each once, while prerendering
    assert max(per_step) <= max(buckets + 2, RUN)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(state, settings, summaries=summaries, histograms=True))
    registry.register(Constant())
    assert one_stream(answers.answer(encoder, gzipped=True)) == generate_openmetrics(registry)
    assert drive(answers.prerender(1.0)) == 0  # nothing left to build for this frame


def summary(cgroups: int) -> Metric:
    """A summary family with one series per cgroup (not a histogram: one template per run of samples)."""
    out = Metric("cgroup_wait_seconds", "Wait per cgroup.", "summary", "seconds")
    for n in range(cgroups):
        labels = {"name": f"/svc/c{n}"}
        for q in ("0.5", "0.9", "0.99", "0.999", "0.9999"):
            out.add_sample("cgroup_wait_seconds", {**labels, "quantile": q}, n * 0.001)
        out.add_sample("cgroup_wait_seconds_sum", labels, 1.5 * n)
        out.add_sample("cgroup_wait_seconds_count", labels, float(n))
    return out


@pytest.mark.parametrize("library", [generate_openmetrics, generate_latest])
def test_a_grown_summary_family_is_built_in_runs_of_samples(library, monkeypatch):
    """2 series, then 480, then 481: no piece encodes more than a run; growth at the end rebuilds the last run only."""
    monkeypatch.setattr(fasttext, "PLAIN_RUN", RUN)
    encoder, calls = counting(library)
    templates: fasttext.Templates = fasttext.Templates()
    per_series = 7
    for cgroups, most in ((2, 2 * per_series), (480, 480 * per_series), (481, RUN + per_series)):
        grown = summary(cgroups)
        per_piece = []
        pieces = []
        for piece in fasttext.parts([grown], encoder, templates):
            per_piece.append(sum(calls))
            calls.clear()
            pieces.append(piece)
        assert "".join(pieces).encode() + fasttext.end_of(library).encode() == library(fasttext.Families([grown]))
        assert max(per_piece) <= RUN
        assert sum(per_piece) <= most


@pytest.mark.parametrize("library", [generate_openmetrics, generate_latest])
def test_series_whose_template_is_refused_are_the_library_text(library, monkeypatch):
    """With every template refused as unusual, each piece is the library's own text, and the pieces join to it."""
    monkeypatch.setattr(fasttext, "_build", lambda *_args: None)
    other = GaugeMetricFamily("other", "x", value=2.5)
    families = [other, family(3), summary(20), other]
    assert fasttext.generate(families, library) == library(fasttext.Families(families))


def test_templates_of_series_that_are_gone_are_swept(monkeypatch):
    """Cgroups replaced by new ones, generation after generation: the table stays bounded, answers stay the library's.

    Each answer uses the family's header and one template per series; after
    a sweep the table holds at most twice that plus ``SLACK``.  Without the
    sweep it would hold every generation's series.
    """
    monkeypatch.setattr(fasttext.Templates, "SLACK", 4)
    templates = fasttext.Templates()
    for generation in range(1, 13):
        churned = family(10, generation)
        expected = generate_openmetrics(fasttext.Families([churned]))
        assert fasttext.generate([churned], generate_openmetrics, templates) == expected
        used = len(templates.used)
        assert used == 1 + 10
        templates.sweep()
        assert len(templates) <= 2 * used + 4, generation
    assert fasttext.generate([family(10, 12)], generate_openmetrics, templates) == expected
