"""Exposition content for synthetic frames: values, quantiles, buckets and a golden file."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import exporter_helpers as h
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from rezolus_core import histogram
from rezolus_core.bus import MemoryBus
from rezolus_core.tracker import Delivery
from rezolus_exporter.collector import AgentCollector
from rezolus_exporter.config import DEFAULT_QUANTILES
from rezolus_exporter.render import Settings
from rezolus_exporter.server import encoder_for
from rezolus_exporter.state import AgentState

GOLDEN = Path(__file__).parent / "golden"
PERCENTS = (50.0, 90.0, 99.0, 99.9, 99.99)


class Clock:
    """A settable monotonic clock in nanoseconds."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        """Return the current time."""
        return self.now


def feed(frames, *, grouping_power=3, histograms=True, summaries=True, window_ns=15 * h.SECOND):
    """Build a registry holding only the agent collector, fed the frames through a MemoryBus."""
    clock = Clock()
    state = AgentState(window_ns, clock=clock, keep_history=summaries)
    bus = MemoryBus()
    subscription = bus.attach()
    catalogs = {}
    for frame in frames:
        if frame.instance not in catalogs:
            catalogs[frame.instance] = h.catalog(frame.instance)
            bus.publish_catalog(catalogs[frame.instance])
        bus.publish_frame(frame)
        for delivery in subscription.deliveries:
            state.ingest(delivery)
        subscription.deliveries.clear()
    registry = CollectorRegistry(auto_describe=False)
    collector = AgentCollector(
        state,
        Settings(DEFAULT_QUANTILES, PERCENTS, grouping_power),
        summaries=summaries,
        histograms=histograms,
    )
    registry.register(collector)
    return registry, clock, collector


def text(registry) -> str:
    """Render the Prometheus text exposition."""
    return generate_latest(registry).decode()


def test_counters_are_converted_to_base_units_and_cumulative():
    """Nanosecond counters become seconds, other counters keep their values, all get _total."""
    out = text(feed([h.frame(i) for i in range(20)])[0])
    assert h.sample_value(out, 'cpu_usage_seconds_total{id="0",state="user"}') == 20 * 0.25
    assert h.sample_value(out, 'cpu_usage_seconds_total{id="1",state="user"}') == 20 * 0.9
    assert h.sample_value(out, 'syscall_total{op="read"}') == 20 * 1000
    assert h.sample_value(out, 'blockio_bytes_total{op="write"}') == 20 * 4096
    assert h.sample_value(out, "memory_total_bytes") == 8e9
    assert h.sample_value(out, "widget_level") == -3


def test_summary_quantiles_cover_exactly_the_trailing_window():
    """Quantiles equal the library's answer for the values of the last 15 intervals only."""
    out = text(feed([h.frame(i) for i in range(20)])[0])
    # Newest frame is after 20 intervals; the window keeps frames back to 15 s
    # before it, so the baseline is the frame after 5 intervals.
    in_window = histogram.empty()
    for step in range(5, 20):
        in_window += histogram.from_values(h.latencies(step))
    expected = histogram.percentiles(in_window, PERCENTS)
    for q, want in zip(DEFAULT_QUANTILES, expected, strict=True):
        got = h.sample_value(out, f'syscall_latency_seconds{{op="read",quantile="{q}"}}')
        assert want is not None
        assert got == want / 1e9
    everything = histogram.percentiles(h.latency_counts(20), PERCENTS)
    assert everything[0] != expected[0], "the synthetic workload must tell the window from all time"
    assert h.sample_value(out, 'syscall_latency_seconds_count{op="read"}') == 20 * 51


def test_summary_quantiles_are_nan_until_a_window_exists():
    """With one frame there is no interval to summarise, so quantiles are NaN, not made up."""
    out = text(feed([h.frame(0)])[0])
    value = h.sample_value(out, 'syscall_latency_seconds{op="read",quantile="0.5"}')
    assert value is not None
    assert math.isnan(value)
    assert h.sample_value(out, 'syscall_latency_seconds_count{op="read"}') == 51


@pytest.mark.parametrize("grouping_power", [0, 1, 2, 3])
def test_histogram_buckets_count_values_at_or_below_le(grouping_power):
    """Each bucket holds exactly the recorded values v with v <= le (le in seconds, v in ns)."""
    out = text(feed([h.frame(i) for i in range(7)], grouping_power=grouping_power)[0])
    values = [v for step in range(7) for v in h.latencies(step)]
    prefix = 'syscall_latency_distribution_seconds_bucket{le="'
    buckets = []
    for line in out.splitlines():
        if line.startswith(prefix):
            le = line[len(prefix) :].split('"', 1)[0]
            buckets.append((le, float(line.rsplit(" ", 1)[1])))
    assert len(buckets) == histogram.layout(grouping_power).buckets
    assert buckets[-1] == ("+Inf", len(values))
    for le, count in buckets[:-1]:
        upper = round(float(le) * 1e9)
        assert count == sum(1 for v in values if v <= upper), le
    total = h.sample_value(out, 'syscall_latency_distribution_seconds_count{op="read"}')
    assert total == len(values)
    estimated = h.sample_value(out, 'syscall_latency_distribution_seconds_sum{op="read"}')
    assert estimated is not None
    assert abs(estimated - sum(values) / 1e9) <= 0.0625 * sum(values) / 1e9


def test_agent_series_vanish_when_frames_stop_for_three_intervals():
    """No frame for more than 3 intervals: nothing from the agent is served."""
    registry, clock, _ = feed([h.frame(i) for i in range(3)])
    clock.now += 3 * h.SECOND
    assert "cpu_usage_seconds_total" in text(registry)
    clock.now += 1
    assert text(registry) == ""


def test_restart_resets_the_window_and_never_mixes_instances():
    """After a new instance appears, values and quantiles come from it alone."""
    frames = [h.frame(i, "agent-a") for i in range(10)] + [h.frame(0, "agent-b")]
    out = text(feed(frames)[0])
    assert h.sample_value(out, 'cpu_usage_seconds_total{id="0",state="user"}') == 0.25
    assert h.sample_value(out, 'syscall_latency_seconds_count{op="read"}') == 51
    assert math.isnan(h.sample_value(out, 'syscall_latency_seconds{op="read",quantile="0.5"}'))
    more = text(feed([*frames, h.frame(1, "agent-b")])[0])
    only_b = histogram.from_values(h.latencies(1))
    want = histogram.percentiles(only_b, [50.0])[0]
    assert h.sample_value(more, 'syscall_latency_seconds{op="read",quantile="0.5"}') == want / 1e9


def test_series_never_seen_are_zero_and_series_gone_missing_are_omitted():
    """A catalog counter without a value yet is 0; one that had a value and lost it is left out."""
    first = h.frame(0)
    without = h.frame(1)
    drop_first_counter = dataclasses.replace(
        without, counter_ids=without.counter_ids[1:], counter_values=without.counter_values[1:]
    )
    out = text(feed([drop_first_counter])[0])
    assert h.sample_value(out, 'cpu_usage_seconds_total{id="0",state="user"}') == 0.0
    out = text(feed([first, drop_first_counter])[0])
    assert h.sample_value(out, 'cpu_usage_seconds_total{id="0",state="user"}') is None
    assert h.sample_value(out, 'cpu_usage_seconds_total{id="0",state="system"}') == 0.1


def test_families_are_built_once_per_frame():
    """Repeated scrapes of one frame reuse the rendered families."""
    _, _, collector = feed([h.frame(i) for i in range(3)])
    first = list(collector.collect())
    assert next(iter(collector.collect())) is first[0]


@pytest.mark.parametrize(
    ("name", "encode"),
    [("synthetic.prom", generate_latest), ("synthetic.om", generate_openmetrics)],
)
def test_exposition_matches_the_golden_file(name, encode):
    """The full exposition of a fixed frame sequence is byte-for-byte the reviewed golden file."""
    registry = feed([h.frame(i) for i in range(20)], grouping_power=1)[0]
    got = encode(registry).decode()
    path = GOLDEN / name
    if os.environ.get("REZOLUS_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(got)
    assert got == path.read_text()


@pytest.mark.parametrize(
    "accept",
    [
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        "application/openmetrics-text",
        "text/plain;version=0.0.4",
        "",
    ],
)
def test_fast_openmetrics_path_is_byte_identical_to_the_library_choice(accept):
    """encoder_for's escaping shortcut changes nothing in the output or the content type."""
    registry = feed([h.frame(i) for i in range(5)], grouping_power=0)[0]
    ours, our_type = encoder_for(accept)
    theirs, their_type = choose_encoder(accept)
    assert our_type == their_type
    assert ours(registry) == theirs(registry)


def test_a_new_catalog_never_reuses_label_sets_of_the_old_one():
    """After a restart whose catalog labels a histogram differently, the new labels are served."""
    registry, _, collector = feed([h.frame(i) for i in range(3)])
    assert 'syscall_latency_seconds{op="read",quantile="0.5"}' in text(registry)
    relabelled = h.catalog("agent-b")
    specs = list(relabelled.series)
    specs[h.LATENCY_SERIES] = type(specs[0])(
        h.LATENCY_SERIES, "syscall_latency", h.H, {"op": "write"}, "nanoseconds", "Latency."
    )
    catalog = type(relabelled)(relabelled.instance, tuple(specs), relabelled.host)
    delivery = Delivery(h.frame(0, "agent-b"), catalog, missed_before=0, restarted=True)
    collector.state.ingest(delivery)
    out = text(registry)
    assert 'syscall_latency_seconds{op="write",quantile="0.5"}' in out
    assert 'op="read",quantile' not in out


def test_without_summaries_only_the_newest_frame_is_kept():
    """Full histograms alone need no history, so none is kept; buckets stay cumulative."""
    registry, _, collector = feed([h.frame(i) for i in range(10)], summaries=False)
    assert len(collector.state._history) == 1
    out = text(registry)
    assert "quantile=" not in out
    assert h.sample_value(out, 'syscall_latency_seconds_bucket{le="+Inf",op="read"}') == 10 * 51


def test_old_frames_keep_only_their_histograms():
    """The window holds snapshots of histograms, not the older frames' counters and gauges."""
    _, _, collector = feed([h.frame(i) for i in range(20)])
    history = list(collector.state._history)
    assert len(history) == 16
    assert all(not hasattr(snapshot, "counter_values") for snapshot in history)


def test_a_growing_catalog_adds_series_without_losing_the_window():
    """An agent that announces more series mid-run gets them exported; quantiles keep their window."""
    full = h.catalog()
    small = type(full)(full.instance, full.series[: h.SIZE_SERIES], full.host)
    clock = Clock()
    state = AgentState(15 * h.SECOND, clock=clock)
    bus = MemoryBus()
    subscription = bus.attach()
    bus.publish_catalog(small)
    for step in range(5):
        frame = h.frame(step)
        bus.publish_frame(
            dataclasses.replace(frame, catalog_version=small.version).with_histograms(frame.histograms[:1])
        )
    bus.publish_catalog(full)
    for step in range(5, 8):
        bus.publish_frame(h.frame(step))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(state, Settings(DEFAULT_QUANTILES, PERCENTS, 3), summaries=True, histograms=False))
    for delivery in subscription.deliveries[:5]:
        state.ingest(delivery)
    assert "blockio_size_bytes" not in text(registry)
    for delivery in subscription.deliveries[5:]:
        state.ingest(delivery)
    out = text(registry)
    assert h.sample_value(out, 'blockio_size_bytes_count{op="write"}') == 8 * 4
    in_window = histogram.empty()
    for step in range(8):
        in_window += histogram.from_values(h.latencies(step))
    in_window -= histogram.from_values(h.latencies(0))
    want = histogram.percentiles(in_window, [50.0])[0]
    assert h.sample_value(out, 'syscall_latency_seconds{op="read",quantile="0.5"}') == want / 1e9
