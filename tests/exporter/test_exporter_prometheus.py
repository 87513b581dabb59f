"""A real Prometheus scrapes the exporter: answers agree with the library and /proc/stat."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Self

import exporter_helpers as h
import pytest

from rezolus_core import histogram
from rezolus_exporter import native
from support.env import need_tool

pytestmark = pytest.mark.slow

QUANTILES = (0.5, 0.9, 0.99)


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    """Debian's prometheus (skipped locally when missing, a failure in CI)."""
    return need_tool("prometheus", "apt-get install prometheus")


def test_prometheus_quantiles_agree_with_the_histogram_library(prometheus_binary, tmp_path):
    """Summary quantiles equal the library's; histogram_quantile lands in the library's bucket."""
    source = f"tcp://127.0.0.1:{h.free_port()}"
    config = "[prometheus]\nsummaries = true\nhistograms = true\nwindow = '5s'\n"
    per_interval = histogram.from_values(h.latencies(0))
    percents = [q * 100 for q in QUANTILES]
    indices = histogram.percentile_indices(per_interval, percents)
    lay = histogram.layout()
    with (
        h.SyntheticAgent(source, interval_ns=250_000_000, stationary=True),
        h.Exporter(source, config, tmp_path) as exporter,
        h.Prometheus(prometheus_binary, tmp_path, {"rezolus": f"127.0.0.1:{exporter.port}"}) as prom,
    ):
        h.wait_for(
            lambda: (
                (prom.scalar('rezolus_exporter_agent_up{job="rezolus"}') == 1)
                and prom.query("count_over_time(syscall_latency_distribution_seconds_count[10s]) >= 8")
            ),
            60,
            "ten seconds of scrapes with the agent up",
            every=0.5,
        )
        for q, index in zip(QUANTILES, indices, strict=True):
            assert index is not None
            want = int(lay.upper[index]) / 1e9
            got = prom.scalar(f'syscall_latency_seconds{{op="read",quantile="{q}"}}')
            assert got == want, q
            estimated = prom.scalar(f"histogram_quantile({q}, rate(syscall_latency_distribution_seconds_bucket[8s]))")
            assert estimated is not None
            low = (int(lay.lower[index]) - 1) / 1e9
            assert low < estimated <= want, (q, estimated, low, want)
        rate = prom.scalar('rate(cpu_usage_seconds_total{id="0",state="user"}[8s])')
        assert rate == pytest.approx(h.COUNTER_RATES[0] / 1e9, rel=0.05)


def test_prometheus_ingests_native_histograms_and_their_p99_agrees(prometheus_binary, tmp_path):
    """Prometheus 2.42 scrapes protobuf: native samples, and histogram_quantile within native's stated error."""
    source = f"tcp://127.0.0.1:{h.free_port()}"
    config = "[prometheus]\nnative_histograms = true\nwindow = '5s'\n"
    per_interval = histogram.from_values(h.latencies(0))
    (index,) = histogram.percentile_indices(per_interval, [99.0])
    assert index is not None
    want = int(histogram.layout().upper[index]) / 1e9
    series = 'syscall_latency_distribution_seconds{op="read"}'
    with (
        h.SyntheticAgent(source, interval_ns=250_000_000, stationary=True),
        h.Exporter(source, config, tmp_path) as exporter,
        h.Prometheus(
            prometheus_binary, tmp_path, {"rezolus": f"127.0.0.1:{exporter.port}"}, features=("native-histograms",)
        ) as prom,
    ):
        h.wait_for(
            lambda: prom.query(f"count_over_time({series}[10s]) >= 8"),
            60,
            "ten seconds of native histogram scrapes",
            every=0.5,
        )
        (raw,) = prom.query(series)
        assert "histogram" in raw, raw  # a native sample, not a float
        assert float(raw["histogram"][1]["count"]) > 0  # type: ignore[index]
        assert not prom.query("syscall_latency_distribution_seconds_bucket")  # no classic buckets ingested
        estimated = prom.scalar(f"histogram_quantile(0.99, rate({series}[8s]))")
        assert estimated is not None
        print(f"agent p99 {want} s, native histogram_quantile {estimated} s")
        assert abs(estimated / want - 1) < native.MAX_RELATIVE_ERROR, (estimated, want)
        assert prom.scalar('syscall_latency_seconds{op="read",quantile="0.99"}') == want
        rate = prom.scalar('rate(cpu_usage_seconds_total{id="0",state="user"}[8s])')
        assert rate == pytest.approx(h.COUNTER_RATES[0] / 1e9, rel=0.05)
        assert prom.scalar('rezolus_exporter_agent_up{job="rezolus"}') == 1


class ProcStat:
    """Records host-wide /proc/stat CPU ticks by state, with wall-clock times, from a thread."""

    STATES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")

    def __init__(self, every: float = 0.01) -> None:
        self.every = every
        self.readings: list[tuple[float, dict[str, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @classmethod
    def read(cls) -> dict[str, int]:
        """Ticks per state summed over the cpuN lines."""
        totals = dict.fromkeys(cls.STATES, 0)
        for line in Path("/proc/stat").read_text().splitlines():
            fields = line.split()
            if fields and fields[0].startswith("cpu") and fields[0] != "cpu":
                for state, value in zip(cls.STATES, fields[1:], strict=False):
                    totals[state] += int(value)
        return totals

    def _run(self) -> None:
        while not self._stop.is_set():
            before = time.time()
            ticks = self.read()
            self.readings.append(((before + time.time()) / 2, ticks))
            self._stop.wait(self.every)

    def at(self, when: float, state: str) -> float:
        """Ticks of a state at a wall-clock time, interpolated between readings."""
        for (t0, r0), (t1, r1) in itertools.pairwise(self.readings):
            if t0 <= when <= t1:
                return r0[state] + (r1[state] - r0[state]) * (when - t0) / (t1 - t0)
        raise AssertionError(f"no /proc/stat readings around {when}")

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def test_rate_of_cpu_usage_matches_proc_stat(prometheus_binary, agent_factory, tmp_path):
    """rate() of the live agent's cpu_usage matches /proc/stat over the same frames within 2 %."""
    window = 30
    agent = agent_factory(interval="100ms")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        with (
            ProcStat() as stat,
            h.Exporter(agent.endpoint) as exporter,
            h.Prometheus(prometheus_binary, tmp_path, {"rezolus": f"127.0.0.1:{exporter.port}"}) as prom,
        ):
            h.wait_for(
                lambda: prom.query(
                    f"count_over_time(rezolus_exporter_last_frame_timestamp_seconds[{window}s]) >= {window}"
                ),
                window + 30,
                f"{window} s of scrapes",
                every=0.5,
            )
            at = time.time()
            rates = {
                item["metric"]["state"]: float(item["value"][1])
                for item in prom.query(f"sum by (state) (rate(cpu_usage_seconds_total[{window}s]))", at)
            }
            (frames,) = prom.query(f"rezolus_exporter_last_frame_timestamp_seconds[{window}s]", at)
            stamps = [float(value) for _, value in frames["values"]]
    finally:
        busy.kill()
        busy.wait()
    first, last = stamps[0], stamps[-1]
    hz = os.sysconf("SC_CLK_TCK")

    def reference(states: tuple[str, ...]) -> float:
        ticks = sum(stat.at(last, s) - stat.at(first, s) for s in states)
        return ticks / hz / (last - first)

    groups = {state: (state,) for state in ProcStat.STATES}
    groups["busy"] = tuple(s for s in ProcStat.STATES if s not in {"idle", "iowait"})
    groups["all"] = ProcStat.STATES
    compared = []
    for name, states in groups.items():
        want = reference(states)
        if want < 0.2:
            continue
        got = sum(rates.get(s, 0.0) for s in states)
        print(f"{name}: rate() {got:.4f} /proc/stat {want:.4f}")
        assert got == pytest.approx(want, rel=0.02), (name, rates, want)
        compared.append(name)
    assert {"user", "busy", "all"} <= set(compared), rates
