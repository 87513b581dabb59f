"""Catalog names, units and labels in Prometheus conventions, and the plan built from them."""

from __future__ import annotations

import exporter_helpers as h
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from test_exporter_render import PERCENTS, feed

from rezolus_core.frame import Catalog, MetricType, SeriesSpec
from rezolus_exporter import naming, plan
from rezolus_exporter.collector import AgentCollector
from rezolus_exporter.config import DEFAULT_QUANTILES
from rezolus_exporter.render import Settings

C, G, H = MetricType.COUNTER, MetricType.GAUGE, MetricType.HISTOGRAM


@pytest.mark.parametrize(
    ("name", "unit", "counter", "exposed"),
    [
        ("cpu_usage", "nanoseconds", True, "cpu_usage_seconds"),
        ("softirq_time", "nanoseconds", True, "softirq_time_seconds"),
        ("syscall_latency", "nanoseconds", False, "syscall_latency_seconds"),
        ("blockio_bytes", "bytes", True, "blockio_bytes"),
        ("memory_total", "bytes", False, "memory_total_bytes"),
        ("blockio_operations", "operations", True, "blockio_operations"),
        ("syscall", "syscalls", True, "syscall"),
        ("network_packets", "packets", True, "network_packets"),
        ("cpu_cores", "cpus", False, "cpu_cores"),
        ("odd_thing", "furlongs", False, "odd_thing"),
        ("wait_ms", "milliseconds", False, "wait_seconds"),
        ("requests_total", "requests", True, "requests"),
        ("cpuUsage", "nanoseconds", True, "cpu_usage_seconds"),
        ("disk:io", "", True, "disk_io"),
        ("9lives", "", False, "_9lives"),
        ("util", "percent", False, "util_ratio"),
    ],
)
def test_metric_names_follow_prometheus_conventions(name, unit, counter, exposed):
    """Base units are appended once, source units and _total are not doubled, bad characters go."""
    assert naming.metric_name(name, naming.unit_of(unit), counter=counter) == exposed


def test_units_convert_exactly_to_base_units():
    """Nanoseconds divide by 1e9 exactly; percent becomes a ratio; unknown units pass through."""
    assert naming.unit_of("nanoseconds").convert(1_500_000_000) == 1.5
    assert naming.unit_of("nanoseconds").convert(1023) == 1023 / 1e9
    assert naming.unit_of("percent").convert(50) == 0.5
    assert naming.unit_of("KiB").convert(2) == 2048
    assert naming.unit_of("widgets") == naming.Unit(None)


def test_help_names_units_that_are_not_in_the_name():
    """Dimensionless units are named in HELP; base units are already in the name."""
    assert naming.help_text("System calls.", "syscalls", naming.unit_of("syscalls")) == "System calls. (syscalls)"
    assert naming.help_text("Time.", "nanoseconds", naming.unit_of("nanoseconds")) == "Time."
    assert naming.help_text("", "", naming.unit_of("")) == "Rezolus agent metric"


@pytest.mark.parametrize(
    ("label", "exposed"),
    [
        ("op", "op"),
        ("cgroupName", "cgroup_name"),
        ("le", "exported_le"),
        ("__name__", "exported_name__"),
        ("a-b", "a_b"),
    ],
)
def test_label_names_are_valid_and_not_reserved(label, exposed):
    """Label keys become valid snake_case names that never collide with le/quantile/__*."""
    assert naming.label_name(label) == exposed


def spec(sid, name, kind, labels=None, unit="nanoseconds"):
    """Build a catalog row."""
    return SeriesSpec(sid, name, kind, labels or {}, unit, f"{name} description")


def test_plan_drops_conflicting_series_with_a_reason():
    """Type clashes, duplicate label sets and the exporter's namespace are reported, not served."""
    catalog = Catalog(
        "i",
        (
            spec(0, "cpu_usage", C, {"id": "0"}),
            spec(1, "cpu_usage", G, {"id": "1"}),
            spec(2, "cpu_usage", C, {"id": "0"}),
            spec(3, "rezolus_exporter_up", G, unit=""),
            spec(4, "cpu_usage_seconds_total", G, unit=""),
            spec(5, "lat", H, {"op": "read"}),
        ),
    )
    built = plan.build(catalog, summaries=True, histograms=True)
    names = [f.name for f in built.families]
    assert names == ["cpu_usage_seconds", "lat_distribution_seconds", "lat_seconds"]
    reasons = dict(built.dropped)
    assert len(built.dropped) == 4
    assert "already a counter" in reasons["cpu_usage{id=1}"]
    assert "duplicate label set" in reasons["cpu_usage{id=0}"]
    assert "own namespace" in reasons["rezolus_exporter_up{}"]
    assert "already used" in reasons["cpu_usage_seconds_total{}"]


def test_histograms_alone_keep_the_plain_name():
    """Without summaries the full histogram takes the metric's own name."""
    catalog = Catalog("i", (spec(0, "lat", H),))
    built = plan.build(catalog, summaries=False, histograms=True)
    assert [(f.name, f.kind) for f in built.families] == [("lat_seconds", "histogram")]
    assert plan.build(catalog, summaries=False, histograms=False).families == ()



def test_rezolus_naming_keeps_the_original_exporters_names_labels_and_units():
    """With naming = "rezolus": no _total, percentile gauges in ns, _distribution buckets with integer le in ns."""
    state = feed([h.frame(i) for i in range(20)])[2].state
    outputs = {}
    for names in naming.NAMINGS:
        registry = CollectorRegistry(auto_describe=False)
        settings = Settings(DEFAULT_QUANTILES, PERCENTS, 3, names=names)
        registry.register(AgentCollector(state, settings, summaries=True, histograms=True))
        outputs[names] = generate_latest(registry).decode()
    out, conventional = outputs["rezolus"], outputs["prometheus"]
    assert h.sample_value(out, 'cpu_usage{id="0",state="user"}') == 20 * 0.25 * 1e9
    assert "cpu_usage_total" not in out
    assert "syscall_total" not in out
    assert "# TYPE cpu_usage untyped" in out
    assert "quantile=" not in out
    assert "# TYPE syscall_latency gauge" in out
    for q in ("0.5", "0.99", "0.9999"):
        seconds = h.sample_value(conventional, f'syscall_latency_seconds{{op="read",quantile="{q}"}}')
        assert seconds is not None
        assert h.sample_value(out, f'syscall_latency{{op="read",percentile="{q}"}}') == round(seconds * 1e9)
    assert h.sample_value(out, 'syscall_latency_distribution_bucket{le="1023",op="read"}') is not None
    assert h.sample_value(out, 'syscall_latency_distribution_count{op="read"}') == h.sample_value(
        conventional, 'syscall_latency_distribution_seconds_count{op="read"}'
    )


def test_rezolus_naming_sum_is_the_midpoint_estimate_in_the_agents_unit():
    """_sum with naming = "rezolus": same estimate as by default, in ns; native sample_sum too; mean within 6.25 %."""
    steps = 20
    state = feed([h.frame(i) for i in range(steps)])[2].state
    raw = AgentCollector(
        state, Settings(DEFAULT_QUANTILES, PERCENTS, 3, names=naming.REZOLUS), summaries=True, histograms=True
    )
    default = AgentCollector(state, Settings(DEFAULT_QUANTILES, PERCENTS, 3), summaries=True, histograms=True)
    out = generate_latest_of(raw)
    conventional = generate_latest_of(default)
    nanoseconds = h.sample_value(out, 'syscall_latency_distribution_sum{op="read"}')
    seconds = h.sample_value(conventional, 'syscall_latency_distribution_seconds_sum{op="read"}')
    assert nanoseconds is not None
    assert seconds is not None
    assert nanoseconds == pytest.approx(seconds * 1e9, rel=1e-12)
    values = [v for step in range(steps) for v in h.latencies(step)]
    assert h.sample_value(out, 'syscall_latency_distribution_count{op="read"}') == len(values)
    assert abs(nanoseconds - sum(values)) <= 0.0625 * sum(values)
    bytes_sum = h.sample_value(out, 'blockio_size_distribution_sum{op="write"}')
    assert bytes_sum == h.sample_value(conventional, 'blockio_size_distribution_bytes_sum{op="write"}')
    assert "syscall_latency_sum" not in out  # the summary keeps the original's shape: percentile gauges only
    native = AgentCollector(
        state,
        Settings(DEFAULT_QUANTILES, PERCENTS, 3, names=naming.REZOLUS),
        summaries=True,
        histograms=False,
        native_histograms=True,
    )
    (family,) = [f for f in native.families() if f.name == "syscall_latency_distribution"]
    (series,) = [s for s in family.series if family.shape.labels[s.index] == {"op": "read"}]
    assert series.sum == nanoseconds


def generate_latest_of(collector: AgentCollector) -> str:
    """The text exposition of one collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry).decode()
