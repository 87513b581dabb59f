"""The exporter process over HTTP, fed by a synthetic agent on a real ZeroMQ socket."""

from __future__ import annotations

import gzip
import json
import time
import urllib.request

import exporter_helpers as h
import pytest
import zmq

from rezolus_core.bus import TOPIC_CATALOG, TOPIC_FRAME
from rezolus_core.frame import encode_catalog, encode_frame

pytestmark = pytest.mark.slow

USER0 = 'cpu_usage_seconds_total{id="0",state="user"}'
UP = "rezolus_exporter_agent_up"


def endpoint() -> str:
    """Return a fresh loopback bus endpoint."""
    return f"tcp://127.0.0.1:{h.free_port()}"


def test_agent_down_at_start_then_picked_up_then_stale():
    """Up=0 without an agent, its series once it appears, nothing from it once it stops."""
    source = endpoint()
    with h.Exporter(source) as exporter:
        text = exporter.metrics()
        assert h.sample_value(text, UP) == 0
        assert "cpu_usage" not in text
        with h.SyntheticAgent(source, interval_ns=100_000_000):
            text = h.scrape_until(exporter, lambda t: h.sample_value(t, UP) == 1, "up=1")
            assert h.sample_value(text, USER0) is not None
        text = h.scrape_until(exporter, lambda t: h.sample_value(t, UP) == 0, "up=0", timeout=5)
        assert "cpu_usage" not in text
        assert "syscall_latency" not in text
        code, stderr = exporter.stop()
    assert code == 0, stderr
    events = [json.loads(line)["event"] for line in stderr.splitlines() if line.startswith("{")]
    health = [e for e in events if e.startswith("agent ")]
    assert health[0] == "agent up"
    assert health[1].startswith("agent stale")


def test_agent_restart_resets_counters_and_is_counted():
    """A new agent instance replaces the old: counters start over, the restart is counted."""
    source = endpoint()
    with h.Exporter(source) as exporter:
        with h.SyntheticAgent(source, instance="first", interval_ns=100_000_000, first_step=10_000):
            h.wait_for(
                lambda: (h.sample_value(exporter.metrics(), USER0) or 0) > 250,
                15,
                "first agent values",
            )
        high = h.sample_value(exporter.metrics(), USER0)
        with h.SyntheticAgent(source, instance="second", interval_ns=1_000_000_000):
            text = h.scrape_until(
                exporter,
                lambda t: h.sample_value(t, "rezolus_exporter_agent_restarts_total") == 1,
                "the restart to be counted",
            )
            value = h.sample_value(text, USER0)
            assert value is not None
            assert value < high
            assert value == pytest.approx(0.25 * round(value / 0.25))


def test_content_negotiation_and_gzip():
    """OpenMetrics when asked, text 0.0.4 otherwise (including garbage), gzip only when allowed."""
    source = endpoint()
    with h.Exporter(source) as exporter, h.SyntheticAgent(source):
        h.wait_for(lambda: h.sample_value(exporter.metrics(), UP) == 1, 15, "up=1")
        url = exporter.url + "/metrics"
        cases = {
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5": (
                "application/openmetrics-text"
            ),
            "text/plain": "text/plain; version=0.0.4",
            "garbage;;;=,/**;q=x": "text/plain; version=0.0.4",
            "application/openmetrics-text; version=banana": "text/plain; version=0.0.4",
            "": "text/plain; version=0.0.4",
        }
        for accept, content_type in cases.items():
            status, head, body = h.http_get(url, {"Accept": accept})
            assert status == 200
            assert head["content-type"].startswith(content_type), accept
            assert body.rstrip().endswith(b"# EOF") == content_type.startswith("application/openmetrics")
        request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})  # noqa: S310 - loopback
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            assert response.headers["Content-Encoding"] == "gzip"
            assert b"rezolus_exporter_agent_up" in gzip.decompress(response.read())
        for refused in ("identity", "gzip;q=0", "br"):
            request = urllib.request.Request(url, headers={"Accept-Encoding": refused})  # noqa: S310 - loopback
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
                assert "Content-Encoding" not in response.headers
                assert b"rezolus_exporter_agent_up" in response.read()
        status, head, body = h.http_get(exporter.url + "/")
        assert status == 200
        assert b'href="/metrics"' in body
        status, head, body = h.http_get(exporter.url + "/healthz")
        assert status == 200
        assert b'"agent_up": true' in body


def test_malformed_messages_are_counted_and_dropped():
    """Garbage on the bus is counted as decode errors while valid frames keep flowing."""
    source = endpoint()
    pub = zmq.Context.instance().socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.bind(source)
    step = 0
    try:
        with h.Exporter(source) as exporter:

            def publish_and_check() -> bool:
                nonlocal step
                for payload in (b"\xc1not msgpack", b"\x93\x01\x02\x03", b""):
                    pub.send_multipart([TOPIC_FRAME, payload])
                pub.send_multipart([TOPIC_CATALOG, encode_catalog(h.catalog())])
                clock = (time.time_ns(), time.monotonic_ns())
                pub.send_multipart([TOPIC_FRAME, encode_frame(h.frame(step, clock=clock))])
                step += 1
                text = exporter.metrics()
                return (h.sample_value(text, "rezolus_exporter_decode_errors_total") or 0) >= 6 and (
                    h.sample_value(text, UP) == 1
                )

            h.wait_for(publish_and_check, 15, "decode errors and frames", every=0.2)
            text = exporter.metrics()
            assert (h.sample_value(text, "rezolus_exporter_frames_received_total") or 0) >= 1
            assert h.sample_value(text, USER0) is not None
            code, stderr = exporter.stop()
            assert code == 0, stderr
            assert "Traceback" not in stderr
    finally:
        pub.close(linger=0)
