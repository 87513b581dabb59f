"""Helpers for the exporter tests: a synthetic agent, processes, ports and polling.

The synthetic catalog mimics the agent's (units, labels, types); its frames
are cumulative and deterministic, so expected values can be computed from
the same definitions the frames are built from.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Self

import numpy as np

from rezolus_core import histogram
from rezolus_core.frame import Catalog, Frame, HistogramValue, MetricType
from support import synth
from support.synth import bind_publisher

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from rezolus_core.bus import ZmqPublisher

SECOND = 1_000_000_000
C, G, H = MetricType.COUNTER, MetricType.GAUGE, MetricType.HISTOGRAM
ROWS = [
    ("cpu_usage", C, {"state": "user", "id": "0"}, "nanoseconds", "CPU time spent, by state."),
    ("cpu_usage", C, {"state": "system", "id": "0"}, "nanoseconds", "CPU time spent, by state."),
    ("cpu_usage", C, {"state": "user", "id": "1"}, "nanoseconds", "CPU time spent, by state."),
    ("syscall", C, {"op": "read"}, "syscalls", "System calls, by family."),
    ("blockio_bytes", C, {"op": "write"}, "bytes", "Bytes of completed block requests."),
    ("memory_total", G, {}, "bytes", "Total memory."),
    ("cpu_cores", G, {}, "cpus", "Online CPUs."),
    ("widget_level", G, {}, "widgets", "A metric with a unit nobody knows."),
    ("syscall_latency", H, {"op": "read"}, "nanoseconds", "System call latency."),
    ("blockio_size", H, {"op": "write"}, "bytes", "Block request sizes."),
]
# Per second of agent time: cpu_usage user/0, system/0, user/1 (ns), syscalls, bytes.
COUNTER_RATES = (250_000_000, 50_000_000, 900_000_000, 1000, 4096)
LATENCY_SERIES, SIZE_SERIES = 8, 9


def catalog(instance: str = "agent-a") -> Catalog:
    """Counters, gauges and histograms with the agent's units and labels."""
    return synth.catalog(instance, rows=ROWS, host={"hostname": "synthetic"})


def latencies(step: int) -> list[int]:
    """Latency values (ns) recorded during interval ``step``."""
    return [1000 * (step + 1) + 37 * k for k in range(50)] + [2_000_000 + step]


def latency_counts(steps: int, *, stationary: bool = False) -> np.ndarray:
    """Cumulative latency buckets after ``steps`` intervals."""
    if stationary:
        return histogram.from_values(latencies(0)) * np.uint64(steps)
    out = histogram.empty()
    for k in range(steps):
        out += histogram.from_values(latencies(k))
    return out


def frame(
    step: int,
    instance: str = "agent-a",
    *,
    seq: int | None = None,
    interval_ns: int = SECOND,
    stationary: bool = False,
    clock: tuple[int, int] | None = None,
) -> Frame:
    """Build the cumulative frame after ``step + 1`` intervals of the synthetic workload."""
    n = step + 1
    scale = interval_ns / SECOND
    counters = np.array([round(n * r * scale) for r in COUNTER_RATES], dtype=np.uint64)
    sizes = histogram.from_values([4096] * (3 * n) + [65536] * n)
    hists = []
    for sid, dense in (
        (LATENCY_SERIES, latency_counts(n, stationary=stationary)),
        (SIZE_SERIES, sizes),
    ):
        idx, cnt = histogram.to_sparse(dense)
        hists.append(HistogramValue(sid, idx, cnt))
    wall, mono = clock or (1_700_000_000 * SECOND + n * interval_ns, 5 * SECOND + n * interval_ns)
    return Frame(
        instance=instance,
        seq=step if seq is None else seq,
        timestamp_ns=wall,
        monotonic_ns=mono,
        interval_ns=interval_ns,
        host="synthetic",
        catalog_version=len(ROWS),
        counter_ids=np.arange(5, dtype=np.uint32),
        counter_values=counters,
        gauge_ids=np.array([5, 6, 7], dtype=np.uint32),
        gauge_values=np.array([8_000_000_000, 2, -3], dtype=np.int64),
    ).with_histograms(hists)


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], object], timeout: float, what: str, every: float = 0.05) -> object:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (OSError, ValueError, KeyError) as exc:
            last_error, value = exc, None
        if value:
            return value
        threading.Event().wait(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last_error})")


def http_get(
    url: str, headers: dict[str, str] | None = None, timeout: float = 5.0
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and (decompressed) body of a GET."""
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback test URL
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - loopback test URL
    except urllib.error.HTTPError as error:
        with error:  # an HTTP error status still holds an open connection
            return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()
    with response:
        body = response.read()
        head = {k.lower(): v for k, v in response.headers.items()}
        if head.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        return response.status, head, body


class SyntheticAgent:
    """Publishes the synthetic catalog and frames on a ZeroMQ endpoint from a thread."""

    def __init__(
        self,
        endpoint: str,
        *,
        instance: str = "agent-a",
        interval_ns: int = 200_000_000,
        stationary: bool = True,
        first_step: int = 0,
    ) -> None:
        self.endpoint = endpoint
        self.instance = instance
        self.interval_ns = interval_ns
        self.stationary = stationary
        self.sent = 0
        self.first_step = first_step
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._publisher: ZmqPublisher | None = None

    def __enter__(self) -> Self:
        self._publisher = bind_publisher(self.endpoint, catalog_every_s=0.5)
        self._publisher.publish_catalog(catalog(self.instance))
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        assert self._publisher is not None
        period = self.interval_ns / SECOND
        start = time.monotonic()
        while not self._stop.is_set():
            clock = (time.time_ns(), time.monotonic_ns())
            self._publisher.publish_frame(
                frame(
                    self.first_step + self.sent,
                    self.instance,
                    interval_ns=self.interval_ns,
                    stationary=self.stationary,
                    clock=clock,
                )
            )
            self.sent += 1
            self._stop.wait(max(0.0, start + self.sent * period - time.monotonic()))

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._publisher is not None:
            self._publisher.close()


class Exporter:
    """A ``rezolus-exporter`` child process on a free loopback port."""

    def __init__(self, source: str, config_text: str | None = None, tmp: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [
            sys.executable,
            "-m",
            "rezolus_exporter.main",
            "--listen",
            f"127.0.0.1:{self.port}",
            "--source",
            source,
        ]
        if config_text is not None:
            assert tmp is not None
            path = tmp / f"exporter-{self.port}.toml"
            path.write_text(config_text)
            self.args += ["--config", str(path)]
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        wait_for(self._ready, 20, "the exporter to answer /healthz")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"exporter exited: {self.process.communicate()[1].decode()}")
        return http_get(self.url + "/healthz", timeout=1)[0] == 200

    def metrics(self, headers: dict[str, str] | None = None) -> str:
        """Fetch the /metrics text."""
        return http_get(self.url + "/metrics", headers)[2].decode()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> tuple[int, str]:
        """SIGTERM the process; return its exit code and stderr."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        if self.process.poll() is None:
            self.process.kill()
        _out, err = self.process.communicate()
        return int(self.process.returncode), err.decode()


def scrape_until(exporter: Exporter, predicate: Callable[[str], bool], what: str, timeout: float = 15.0) -> str:
    """Scrape until the text satisfies ``predicate``; return that text."""
    found: list[str] = []

    def check() -> bool:
        text = exporter.metrics()
        if predicate(text):
            found.append(text)
            return True
        return False

    wait_for(check, timeout, what)
    return found[-1]


def sample_value(text: str, series: str) -> float | None:
    """Return the value of one series (``name{labels}`` as printed), if present."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def iter_families(text: str) -> Iterator[str]:
    """Family names declared by ``# TYPE`` lines."""
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            yield line.split()[2]


class Prometheus:
    """A real Prometheus server on a free loopback port, scraping given targets every second."""

    def __init__(
        self,
        binary: str,
        tmp: Path,
        targets: dict[str, str],
        interval: str = "1s",
        features: tuple[str, ...] = (),
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        jobs = "\n".join(
            f"  - job_name: {job}\n    scrape_interval: {interval}\n"
            f"    scrape_timeout: {interval}\n"
            f"    static_configs:\n      - targets: ['{target}']"
            for job, target in targets.items()
        )
        config = tmp / f"prometheus-{self.port}.yml"
        config.write_text(f"global:\n  scrape_interval: {interval}\nscrape_configs:\n{jobs}\n")
        self.args = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / f'tsdb-{self.port}'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
            *(f"--enable-feature={feature}" for feature in features),
        ]
        self.log = tmp / f"prometheus-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self._ready, 30, "Prometheus to become ready", every=0.2)
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited: {self.log.read_text()[-2000:]}")
        return http_get(self.url + "/-/ready", timeout=1)[0] == 200

    def query(self, promql: str, at: float | None = None) -> list[dict[str, object]]:
        """Run an instant query (vector or matrix result), failing on API errors."""
        import json  # noqa: PLC0415 - only queries need it
        import urllib.parse  # noqa: PLC0415 - only queries need it

        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}"
        body = json.loads(http_get(url, timeout=10)[2])
        if body.get("status") != "success":
            raise AssertionError(f"query {promql!r} failed: {body}")
        return body["data"]["result"]  # type: ignore[no-any-return]

    def scalar(self, promql: str, at: float | None = None) -> float | None:
        """Return the single value of an instant vector query, or None when empty."""
        result = self.query(promql, at)
        if not result:
            return None
        assert len(result) == 1, result
        return float(result[0]["value"][1])  # type: ignore[index]

    def __exit__(self, *_exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
