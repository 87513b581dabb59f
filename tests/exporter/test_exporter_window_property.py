"""Property: for any frame timing, quantiles cover exactly the frames the window rule selects."""

from __future__ import annotations

import dataclasses
import math

import exporter_helpers as h
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from rezolus_core import histogram
from rezolus_core.frame import HistogramValue, encode_catalog, encode_frame
from rezolus_core.tracker import Tracker
from rezolus_exporter.collector import AgentCollector
from rezolus_exporter.config import DEFAULT_QUANTILES
from rezolus_exporter.render import Settings
from rezolus_exporter.state import AgentState

PERCENTS = (50.0, 90.0, 99.0, 99.9, 99.99)
MS = 1_000_000


@st.composite
def timelines(draw):
    """Frame gaps (ms), values recorded per frame, and a window (ms)."""
    count = draw(st.integers(1, 25))
    gaps = draw(st.lists(st.integers(50, 3000), min_size=count, max_size=count))
    values = draw(st.lists(st.lists(st.integers(0, 10**12), max_size=20), min_size=count, max_size=count))
    window = draw(st.integers(100, 20_000))
    return gaps, values, window


def build(gaps, values, interval_ns):
    """Cumulative frames for the given gaps and per-frame values."""
    frames, total, mono = [], histogram.empty(), 0
    base = h.frame(0)
    for seq, (gap, recorded) in enumerate(zip(gaps, values, strict=True)):
        mono += gap * MS
        if recorded:
            total = total + histogram.from_values(recorded)
        idx, cnt = histogram.to_sparse(total)
        hists = (HistogramValue(h.LATENCY_SERIES, idx, cnt), *base.histograms[1:])
        frame = dataclasses.replace(base, seq=seq, monotonic_ns=mono, interval_ns=interval_ns)
        frames.append(frame.with_histograms(hists))
    return frames


@settings(max_examples=40, deadline=None)
@given(timelines(), st.integers(100, 2000))
def test_quantiles_cover_the_selected_window(timeline, interval_ms):
    """The baseline is the oldest frame within window + interval/2; quantiles are its delta's."""
    gaps, values, window_ms = timeline
    interval_ns = interval_ms * MS
    frames = build(gaps, values, interval_ns)
    state = AgentState(window_ms * MS, clock=lambda: 0)
    tracker = Tracker(clock=None)  # irregular synthetic clocks: the window is under test, not plausibility
    tracker.feed(encode_catalog(h.catalog()))
    for frame in frames:
        for delivery in tracker.feed(encode_frame(frame)):
            state.ingest(delivery)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(state, Settings(DEFAULT_QUANTILES, PERCENTS, 3), summaries=True, histograms=True))
    text = generate_latest(registry).decode()

    newest = frames[-1]
    limit = newest.monotonic_ns - max(window_ms * MS, interval_ns) - interval_ns // 2
    inside = [i for i, f in enumerate(frames) if f.monotonic_ns >= limit]
    first = inside[0]
    recorded = [v for step in range(first + 1, len(frames)) for v in values[step]]
    want = histogram.percentiles(histogram.from_values(recorded), PERCENTS)
    for q, expected in zip(DEFAULT_QUANTILES, want, strict=True):
        got = h.sample_value(text, f'syscall_latency_seconds{{op="read",quantile="{q}"}}')
        assert got is not None
        if expected is None or first == len(frames) - 1:
            assert math.isnan(got)
        else:
            assert got == expected / 1e9
    everything = [v for step in values for v in step]
    assert h.sample_value(text, 'syscall_latency_seconds_count{op="read"}') == len(everything)
    buckets = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("syscall_latency_distribution_seconds_bucket{")
    ]
    assert len(buckets) == 496
    assert all(np.diff(buckets) >= 0)
    assert buckets[-1] == len(everything)
