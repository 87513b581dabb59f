"""Protobuf exposition: generated code is current, messages decode, negotiation picks it only when preferred."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import exporter_helpers as h
import pytest
from google.protobuf.internal.decoder import _DecodeVarint32
from test_exporter_render import feed

from rezolus_core import histogram
from rezolus_exporter import metrics_pb2 as pb
from rezolus_exporter import native, protobuf
from rezolus_exporter.collector import AgentCollector
from rezolus_exporter.config import DEFAULT_QUANTILES
from rezolus_exporter.render import Settings

SRC = Path(__file__).parents[2] / "services" / "exporter" / "src"
PROMETHEUS_242 = (
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)


def test_committed_generated_code_matches_the_proto(tmp_path):
    """metrics_pb2.py/.pyi are what scripts/gen_proto.sh makes from metrics.proto today."""
    package = tmp_path / "rezolus_exporter"
    package.mkdir()
    shutil.copy(SRC / "rezolus_exporter" / "metrics.proto", package)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            str(tmp_path),
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            str(package / "metrics.proto"),
        ],
        check=True,
    )
    for name in ("metrics_pb2.py", "metrics_pb2.pyi"):
        assert (package / name).read_text() == (SRC / "rezolus_exporter" / name).read_text(), name


def decode(body: bytes) -> list[pb.MetricFamily]:
    """Split a delimited stream into MetricFamily messages."""
    out, pos = [], 0
    while pos < len(body):
        size, pos = _DecodeVarint32(body, pos)
        family = pb.MetricFamily()
        family.ParseFromString(body[pos : pos + size])
        out.append(family)
        pos += size
    return out


@pytest.mark.parametrize("classic", [False, True])
def test_every_family_decodes_with_native_histograms(classic):
    """Counters with _total, gauges, summaries, and native (+ classic) histograms with the agent's counts."""
    frames = [h.frame(i) for i in range(6)]
    collector = feed(frames, histograms=classic)[2]
    agent = AgentCollector(
        collector.state,
        Settings(DEFAULT_QUANTILES, (50.0, 90.0, 99.0, 99.9, 99.99), 3),
        summaries=True,
        histograms=classic,
        native_histograms=True,
    )
    families = {f.name: f for f in decode(protobuf.generate(agent.families()))}
    assert families["cpu_usage_seconds_total"].type == pb.COUNTER
    assert families["memory_total_bytes"].metric[0].gauge.value == 8e9
    summary = families["syscall_latency_seconds"]
    assert summary.type == pb.SUMMARY
    assert [q.quantile for q in summary.metric[0].summary.quantile] == list(DEFAULT_QUANTILES)
    hist = families["syscall_latency_distribution_seconds"]
    assert hist.type == pb.HISTOGRAM
    (metric,) = [m for m in hist.metric if {(p.name, p.value) for p in m.label} == {("op", "read")}]
    counts = h.latency_counts(6)
    assert metric.histogram.sample_count == histogram.total(counts)
    assert metric.histogram.schema == native.SCHEMA
    assert metric.histogram.zero_threshold == native.ZERO_THRESHOLD
    spans = tuple((s.offset, s.length) for s in metric.histogram.positive_span)
    got = native.NativeBuckets(metric.histogram.zero_count, spans, tuple(metric.histogram.positive_delta))
    assert got == native.to_native(counts, native.agent_keys(1.0, 1e9))
    assert len(metric.histogram.bucket) == (histogram.layout().buckets - 1 if classic else 0)


@pytest.mark.parametrize(
    ("accept", "want"),
    [
        (PROMETHEUS_242, True),
        ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited", True),
        ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text", False),
        ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0", False),
        ("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1", False),
        (
            ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.4,"
            "text/plain;q=0.5"),
            False,
        ),
        ("", False),
        ("*/*", False),
    ],
)
def test_protobuf_only_when_it_is_the_preferred_format(accept, want):
    """Content negotiation on q-values; other clients keep text/OpenMetrics."""
    assert protobuf.prefers_protobuf(accept) is want


def test_http_answers_protobuf_only_with_native_histograms_on(tmp_path):
    """The content type follows the Accept header when native histograms are on, text otherwise."""
    source = f"tcp://127.0.0.1:{h.free_port()}"
    with h.SyntheticAgent(source, interval_ns=100_000_000):
        with h.Exporter(source, "[prometheus]\nnative_histograms = true\n", tmp_path) as exporter:
            h.wait_for(lambda: "syscall_latency_seconds" in exporter.metrics(), 15, "agent series")
            status, headers, body = h.http_get(exporter.url + "/metrics", {"Accept": PROMETHEUS_242})
            assert status == 200
            assert headers["content-type"] == protobuf.CONTENT_TYPE
            assert "syscall_latency_distribution_seconds" in {f.name for f in decode(body)}
            assert "syscall_latency_distribution" not in exporter.metrics({"Accept": "text/plain"})
        with h.Exporter(source) as exporter:
            h.wait_for(lambda: "syscall_latency_seconds" in exporter.metrics(), 15, "agent series")
            _status, headers, _body = h.http_get(exporter.url + "/metrics", {"Accept": PROMETHEUS_242})
            assert headers["content-type"].startswith("text/plain")
