"""The fast bucket-line path is byte-identical to prometheus_client's own encoding."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import exporter_helpers as h
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from test_exporter_render import feed

from rezolus_core.bus import MemoryBus
from rezolus_exporter import fasttext
from rezolus_exporter.collector import AgentCollector
from rezolus_exporter.histfamily import HistogramFamily, HistogramSeries, Shape
from rezolus_exporter.server import encoder_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from rezolus_core.frame import Frame

GOLDEN = Path(__file__).parent / "golden"
ACCEPTS = (
    (
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
        "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    ),
    "text/plain;version=0.0.4",
    "",
)


@pytest.mark.parametrize(
    ("name", "encode"), [("synthetic.prom", generate_latest), ("synthetic.om", generate_openmetrics)]
)
def test_fast_path_matches_the_golden_file(name, encode):
    """The reviewed golden exposition (made by the library) comes out of the fast path unchanged."""
    registry = feed([h.frame(i) for i in range(20)], grouping_power=1)[0]
    got = fasttext.generate(registry.collect(), encode).decode()
    assert "_bucket{" in got
    assert got == (GOLDEN / name).read_text()


@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("grouping_power", [0, 3])
def test_fast_path_matches_the_library_for_every_format(accept, grouping_power):
    """For each negotiated format and grouping power, whole answers are byte-identical (repeated: cached templates)."""
    frames = [h.frame(i) for i in range(6)]
    registry = feed(frames, grouping_power=grouping_power)[0]
    encoder, _ = encoder_for(accept)
    templates: fasttext.Templates = fasttext.Templates()
    for _ in range(2):
        assert fasttext.generate(registry.collect(), encoder, templates) == encoder(registry)
    assert templates  # counters, gauges and summaries took the fast path too


def test_templates_stay_right_as_frames_change_values():
    """One template cache over a growing frame sequence: every answer equals the library's."""
    registry, _collector, push = live()
    templates: fasttext.Templates = fasttext.Templates()
    encoder, _ = encoder_for(ACCEPTS[0])
    for step in range(8):
        push(h.frame(step))
        assert fasttext.generate(registry.collect(), encoder, templates) == encoder(registry)
    assert templates


def live() -> tuple[CollectorRegistry, AgentCollector, Callable[[Frame], None]]:
    """An empty fed registry and its collector, with a function that delivers one more frame to it."""
    registry, _clock, collector = feed([])
    bus = MemoryBus()
    subscription = bus.attach()
    bus.publish_catalog(h.catalog())

    def push(frame: Frame) -> None:
        bus.publish_frame(frame)
        for delivery in subscription.deliveries:
            collector.state.ingest(delivery)
        subscription.deliveries.clear()

    return registry, collector, push


label_values = st.text(alphabet=st.sampled_from('ab"\\\n\u00e9{}=, _0%s'), max_size=8)
SHARED: fasttext.Templates = fasttext.Templates()  # reused across examples: cached templates meet new values


@settings(max_examples=150, deadline=None)
@given(
    series=st.lists(
        st.tuples(label_values, st.lists(st.integers(min_value=0, max_value=2**60), min_size=3, max_size=3)),
        min_size=1,
        max_size=4,
        unique_by=lambda row: row[0],
    ),
    fraction=st.floats(min_value=0, max_value=1e12, allow_nan=False),
    accept=st.sampled_from(ACCEPTS),
    documentation=st.text(alphabet=st.sampled_from('ab\\\n" '), max_size=6),
)
def test_fast_path_is_byte_identical_for_any_labels_and_counts(series, fraction, accept, documentation):
    """Odd label values and help text, huge and fractional values: the library's bytes exactly."""
    les = ("0.5", "1e+06", "+Inf")
    labels = [{"op": value, "z": "1"} for value, _ in series]
    shape = Shape(
        name="thing_seconds",
        documentation=documentation,
        unit="seconds",
        labels=labels,
        bucket_labels=[[{**one, "le": le} for le in les] for one in labels],
        upper_bounds=(0.5, 1e6),
    )
    family = HistogramFamily(shape, classic=True)
    for index, (_value, increments) in enumerate(series):
        cumulative = [float(sum(increments[: k + 1])) for k in range(3)]
        family.series.append(HistogramSeries(index, cumulative, fraction * index, cumulative[-1], None))
    other = GaugeMetricFamily("other", "x", value=fraction)
    encoder, _ = encoder_for(accept)

    class Registry:
        def collect(self):
            return [other, family, other]

    assert fasttext.generate([other, family, other], encoder, SHARED) == encoder(Registry())


def test_native_only_families_are_left_out_of_text():
    """A histogram family without classic buckets is for protobuf answers only."""
    registry = feed([h.frame(i) for i in range(3)], histograms=False)[0]
    shape = Shape("x_seconds", "x", "seconds", [{}], [[]], ())
    family = HistogramFamily(shape, classic=False)
    family.series.append(HistogramSeries(0, None, 1.0, 1.0, None))
    encoder, _ = encoder_for("")
    assert fasttext.generate([*registry.collect(), family], encoder) == encoder(registry)


def test_a_long_lived_collector_answers_like_a_fresh_one():
    """Memoised series and text of idle families never go stale: same bytes as a collector built now."""
    registry, collector, push = live()
    templates: fasttext.Templates = fasttext.Templates()
    encoder, _ = encoder_for(ACCEPTS[0])
    for seq, step in enumerate((0, 1, 1, 2, 5, 5, 9)):  # repeated steps: idle histograms between frames
        push(h.frame(step, seq=seq))
        fresh = CollectorRegistry(auto_describe=False)
        fresh.register(AgentCollector(collector.state, collector.settings, summaries=True, histograms=True))
        assert fasttext.generate(registry.collect(), encoder, templates) == encoder(fresh)
