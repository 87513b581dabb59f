"""The viewer's series and value model for the shared synthetic agent (``support.synth``), and recordings of it.

Invariants:
- The catalog covers every section of the viewer (CPU with IPC, scheduler,
  syscalls, block IO, network/TCP, memory, containers, rezolus) with the
  agent's metric names, labels and units (docs/metrics.md).
- Counter increments and histogram samples are pure functions of
  (series, seq), so a test can recompute what any row must contain; counters
  and buckets are cumulative and start again from zero after a restart.
- Frames come from ``support.synth.Agent``; files are written through
  ``TableBuilder`` and ``write_table`` or a streaming ``ParquetWriter`` with
  ``write_options()``, exactly as the recorder writes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rezolus_core import histogram
from rezolus_core.frame import Catalog, MetricType, SeriesSpec
from rezolus_core.tracker import Delivery
from rezolus_recording.builder import TableBuilder
from rezolus_recording.writer import write_options, write_table
from support import synth

if TYPE_CHECKING:
    import pathlib

HOST = {"hostname": "viewer-synth", "kernel": "6.18.0-test"}
START_NS = 1_780_000_000_000_000_000
CPU_STATES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
SYSCALL_OPS = ("read", "write", "poll", "futex", "other")
BLOCK_OPS = ("read", "write", "flush", "discard")


def rows(*, cpus: int = 4, cgroups: int = 6) -> list[synth.Row]:
    """Series rows for every section the viewer draws (for ``support.synth.catalog``)."""
    specs: list[synth.Row] = []
    c, g, h = MetricType.COUNTER, MetricType.GAUGE, MetricType.HISTOGRAM
    for cpu in range(cpus):
        specs.extend(("cpu_usage", c, {"state": s, "id": str(cpu)}, "nanoseconds") for s in CPU_STATES)
        specs.append(("cpu_cycles", c, {"id": str(cpu)}, "cycles"))
        specs.append(("cpu_instructions", c, {"id": str(cpu)}, "instructions"))
        specs.append(("softirq", c, {"kind": "net_rx", "id": str(cpu)}, "interrupts"))
    specs.append(("cpu_cores", g, {}, "cpus"))
    specs.append(("scheduler_runqueue_latency", h, {}, "nanoseconds"))
    specs.append(("scheduler_running", h, {}, "nanoseconds"))
    specs.append(("scheduler_context_switch", c, {"kind": "involuntary"}, "switches"))
    specs.extend(("syscall", c, {"op": op}, "syscalls") for op in SYSCALL_OPS)
    specs.extend(("syscall_latency", h, {"op": op}, "nanoseconds") for op in SYSCALL_OPS)
    specs.extend(("blockio_operations", c, {"op": op}, "operations") for op in BLOCK_OPS)
    specs.extend(("blockio_bytes", c, {"op": op}, "bytes") for op in BLOCK_OPS)
    specs.extend(("blockio_latency", h, {"op": op}, "nanoseconds") for op in ("read", "write"))
    specs.extend(("network_bytes", c, {"direction": d}, "bytes") for d in ("receive", "transmit"))
    specs.extend(("network_packets", c, {"direction": d}, "packets") for d in ("receive", "transmit"))
    specs.append(("tcp_retransmit", c, {}, "segments"))
    specs.append(("tcp_connect_latency", h, {}, "nanoseconds"))
    specs.extend(
        (f"memory_{m}", g, {}, "bytes") for m in ("total", "free", "available", "buffers", "cached")
    )
    for n in range(cgroups):
        name = f"/system.slice/svc{n}.service"
        specs.extend(("cgroup_cpu_usage", c, {"name": name, "state": s}, "nanoseconds") for s in ("user", "system"))
        specs.append(("cgroup_syscall", c, {"name": name, "op": "read"}, "syscalls"))
    specs.extend(("rezolus_cpu_usage", c, {"state": s}, "nanoseconds") for s in ("user", "system"))
    specs.append(("rezolus_memory_usage_resident_set_size", g, {}, "bytes"))
    return specs


def plan_catalog(instance: str, plan: Plan) -> Catalog:
    """The shared builder's catalog of the viewer's series for ``plan``."""
    return synth.catalog(instance, rows=rows(cpus=plan.cpus, cgroups=plan.cgroups), host=HOST)


def increment(spec: SeriesSpec, seq: int, interval_ns: int) -> int:
    """Return how much counter ``spec`` grows between rows ``seq - 1`` and ``seq``."""
    phase = 0.5 + 0.4 * math.sin(seq / 97.0 + spec.id)
    if spec.unit == "nanoseconds":
        share = 0.05 + 0.1 * (spec.id % 5) if spec.labels.get("state") != "idle" else 0.3
        return int(interval_ns * share * phase)
    return int((spec.id % 13 + 1) * 1000 * phase * interval_ns / 1e9)


def gauge(spec: SeriesSpec, seq: int) -> int:
    """Return the value of gauge ``spec`` at row ``seq``."""
    if spec.name == "cpu_cores":
        return 4
    return (spec.id + 1) * 1_000_000_000 + (seq % 600) * 1_000_000


def samples(spec: SeriesSpec, seq: int) -> np.ndarray:
    """Return the bucket indices recorded into histogram ``spec`` between rows ``seq - 1`` and ``seq``."""
    base = 60 + (spec.id % 7) * 8 + int(16 * math.sin(seq / 120.0 + spec.id))
    return np.array([base, base, base + 1, base + 3, base + 12 + seq % 9], dtype=np.intp)


class Values(synth.Values):
    """Cumulative counters (``increment``) and buckets (``samples``), gauges from ``gauge``."""

    def __init__(self, interval_ns: int) -> None:
        self.interval_ns = interval_ns
        self.totals: dict[int, int] = {}
        self.buckets: dict[int, np.ndarray] = {}

    def counter(self, spec: SeriesSpec, seq: int) -> int:
        """Advance counter ``spec`` to ``seq``."""
        self.totals[spec.id] = self.totals.get(spec.id, 0) + increment(spec, seq, self.interval_ns)
        return self.totals[spec.id]

    def gauge(self, spec: SeriesSpec, seq: int) -> int:
        """Gauge ``spec`` at ``seq``."""
        return gauge(spec, seq)

    def histogram(self, spec: SeriesSpec, seq: int) -> tuple[np.ndarray, np.ndarray]:
        """Advance histogram ``spec`` to ``seq``; its sparse cumulative buckets."""
        counts = self.buckets.setdefault(spec.id, histogram.empty())
        np.add.at(counts, samples(spec, seq), np.uint64(1))
        nz = np.flatnonzero(counts)
        return nz.astype(np.uint16), counts[nz].copy()


def agent(cat: Catalog, interval_ns: int) -> synth.Agent:
    """A fresh agent instance of ``cat`` with the viewer's value model."""
    return synth.Agent(cat, interval_ns, Values(interval_ns), hostname=HOST["hostname"])


@dataclass(frozen=True)
class Plan:
    """What a synthetic recording contains: its length, gaps and restarts (row numbers)."""

    rows: int
    interval_ns: int = 1_000_000_000
    gaps: dict[int, int] = field(default_factory=dict)  # row -> rows missing just before it
    restarts: tuple[int, ...] = ()
    cpus: int = 4
    cgroups: int = 6


GAP_ROW, GAP_MISSED, RESTART_ROW = 200, 3, 400
FIXTURE_PLAN = Plan(rows=600, gaps={GAP_ROW: GAP_MISSED}, restarts=(RESTART_ROW,))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


def _feed(plan: Plan, builder: TableBuilder, flush: object = None, chunk: int = 1024) -> None:
    instance = 0
    source = agent(plan_catalog("inst-0", plan), plan.interval_ns)
    builder.declare(source.cat)
    slot = 0
    for row in range(plan.rows):
        slot += 1 + plan.gaps.get(row, 0)
        if row in plan.restarts:
            instance += 1
            source = agent(plan_catalog(f"inst-{instance}", plan), plan.interval_ns)
            builder.declare(source.cat)
        ts = START_NS + slot * plan.interval_ns
        delivery = Delivery(source.frame(slot, ts), source.cat, 0, restarted=False)
        builder.add(delivery, missed=plan.gaps.get(row, 0))
        if callable(flush) and builder.rows % chunk == 0:
            flush()
    if callable(flush) and builder.rows % chunk:
        flush()


def write(plan: Plan, path: pathlib.Path) -> pathlib.Path:
    """Write the planned recording to ``path`` (in memory; for small plans) and return the path."""
    builder = TableBuilder(source="synthetic", interval_ns=plan.interval_ns, host=HOST)
    _feed(plan, builder)
    write_table(builder.table(), path)
    return path


def write_streaming(plan: Plan, path: pathlib.Path, chunk: int = 1024) -> pathlib.Path:
    """Write a long planned recording in row groups of ``chunk`` rows, as the recorder does."""
    counting = TableBuilder(source="synthetic", interval_ns=plan.interval_ns, host=HOST)
    _feed(plan, counting, counting.discard, chunk)
    metadata = counting.file_metadata()
    builder = TableBuilder(source="synthetic", interval_ns=plan.interval_ns, host=HOST)
    writer: list[pq.ParquetWriter] = []

    def flush() -> None:
        table = builder.take().replace_schema_metadata(metadata)
        if not writer:
            writer.append(pq.ParquetWriter(path, table.schema, **write_options()))
        writer[0].write_table(table)

    _feed(plan, builder, flush, chunk)
    writer[0].close()
    return path


def write_uncomparable(root: pathlib.Path) -> None:
    """Beside ``root/base.parquet``, files that cannot be compared with it.

    ``v2`` (another layout version), ``disjoint`` (no series in common),
    ``empty`` (no rows), ``zero`` (no bytes), ``corrupt`` (truncated).
    """
    table = pq.read_table(root / "base.parquet")
    pq.write_table(table.replace_schema_metadata({**table.schema.metadata, b"layout": b"2"}), root / "v2.parquet")
    seconds = pa.array([START_NS + k * 1_000_000_000 for k in range(10)], pa.uint64())
    other = pa.Table.from_arrays([seconds, pa.array(range(10), pa.uint64())], schema=pa.schema([
        pa.field("timestamp", pa.uint64()),
        pa.field("other", pa.uint64(), metadata={"metric": "other", "metric_type": "counter"}),
    ]))
    pq.write_table(other, root / "disjoint.parquet")
    pq.write_table(table.slice(0, 0), root / "empty.parquet")
    (root / "zero.parquet").write_bytes(b"")
    (root / "corrupt.parquet").write_bytes((root / "base.parquet").read_bytes()[:5000])
