"""The page's sections and charts, derived from the series present in one recording.

Invariants:
- A chart is planned only when every column it names exists in the file, so
  only metrics present in the recording are drawn; every series column of a
  known section ends up in at least one chart (curated or generic).
- Sections come in a fixed order: overview, CPU, scheduler, syscalls, block
  IO, network/TCP, memory, containers, rezolus, other.
- Chart ids are stable for a file and safe in URLs; the API looks them up here.
- Counters are drawn as per-second rates: nanosecond counters as cores
  (CPU time) or seconds per second, byte counters as bytes/s, others as
  ``<unit>/s``.  Histograms are heatmaps with p50/p99/p99.9 lines.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from rezolus_viewer.recording import Column

PERCENTILES = (50.0, 99.0, 99.9)
TOP_N = 10
BUSY_EXCLUDED = {"idle", "iowait", "guest", "guest_nice"}
CAPACITY_EXCLUDED = {"guest", "guest_nice"}
SECTIONS = (
    ("overview", "Overview"), ("cpu", "CPU"), ("scheduler", "Scheduler"), ("syscall", "Syscalls"),
    ("blockio", "Block IO"), ("network", "Network / TCP"), ("memory", "Memory"),
    ("containers", "Containers"), ("rezolus", "Rezolus"), ("other", "Other"),
)
_PREFIXES = (
    ("cgroup_", "containers"), ("rezolus_", "rezolus"), ("cpu_", "cpu"), ("softirq", "cpu"),
    ("scheduler_", "scheduler"), ("syscall", "syscall"), ("blockio_", "blockio"),
    ("network_", "network"), ("tcp_", "network"), ("memory_", "memory"),
)


@dataclass(frozen=True)
class Series:
    """One drawn line: a rate, gauge, ratio of rates or histogram percentile over some columns."""

    label: str
    kind: str  # rate | gauge | ratio | histogram | percentile
    columns: tuple[str, ...]
    denominator: tuple[str, ...] = ()
    scale: float = 1.0
    percentile: float = 0.0


@dataclass(frozen=True)
class Chart:
    """One chart: its kind (line, heatmap, cpu_heatmap), display unit and series."""

    id: str
    title: str
    kind: str
    unit: str
    series: tuple[Series, ...]
    top: int = 0

    def describe(self) -> dict[str, object]:
        """What the page needs to lay the chart out before its data arrives."""
        return {"id": self.id, "title": self.title, "kind": self.kind, "unit": self.unit}


@dataclass
class Dashboard:
    """Sections in page order, each a list of charts, and every chart by id."""

    sections: list[tuple[str, str, list[Chart]]] = field(default_factory=list)
    charts: dict[str, Chart] = field(default_factory=dict)

    def describe(self) -> list[dict[str, object]]:
        """The page layout as JSON-ready data."""
        return [
            {"id": sid, "title": title, "charts": [c.describe() for c in charts]}
            for sid, title, charts in self.sections if charts
        ]


def section_of(metric: str) -> str:
    """The section a metric's generic charts go to."""
    return next((s for prefix, s in _PREFIXES if metric.startswith(prefix)), "other")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "-", text.lower()).strip("-")


def _group_label(col: Column, skip: Iterable[str] = ("id",)) -> str:
    return " ".join(v for k, v in sorted(col.labels.items()) if k not in skip) or col.metric


def _rate_unit(col: Column) -> tuple[str, float]:
    if col.unit == "nanoseconds":
        return ("cores", 1e-9) if "cpu_usage" in col.metric else ("s/s", 1e-9)
    if col.unit == "bytes":
        return "bytes/s", 1.0
    return f"{col.unit or 'events'}/s", 1.0


class _Planner:
    def __init__(self, columns: Iterable[Column]) -> None:
        self.by_metric: dict[str, list[Column]] = defaultdict(list)
        for col in sorted(columns, key=lambda c: c.name):
            self.by_metric[col.metric].append(col)
        self.dash = Dashboard(sections=[(sid, title, []) for sid, title in SECTIONS])
        self.curated: set[str] = set()

    def add(self, section: str, chart: Chart) -> None:
        for sid, _, charts in self.dash.sections:
            if sid == section and chart.id not in self.dash.charts:
                charts.append(chart)
                self.dash.charts[chart.id] = chart

    def cols(self, metric: str, **labels: str) -> list[Column]:
        return [c for c in self.by_metric.get(metric, []) if all(c.labels.get(k) == v for k, v in labels.items())]

    def names(self, cols: Iterable[Column]) -> tuple[str, ...]:
        return tuple(c.name for c in cols)

    def grouped(self, cols: list[Column], key: str | None = None) -> dict[str, list[Column]]:
        groups: dict[str, list[Column]] = defaultdict(list)
        for c in cols:
            groups[c.labels.get(key, c.metric) if key else _group_label(c)].append(c)
        return dict(sorted(groups.items()))

    def heatmap(self, section: str, metric: str, title: str, cols: list[Column] | None = None) -> None:
        cols = self.by_metric.get(metric, []) if cols is None else cols
        if not cols:
            return
        self.curated.add(metric)
        unit = "ns" if cols[0].unit == "nanoseconds" else cols[0].unit
        cid = f"{section}.{_slug(metric)}" + ("" if len(cols) == len(self.by_metric[metric]) else "-part")
        self.add(section, Chart(cid, title, "heatmap", unit, (Series(metric, "histogram", self.names(cols)),)))

    def rates(self, section: str, metric: str, title: str, key: str | None = None, top: int = 0) -> None:
        cols = self.by_metric.get(metric, [])
        if not cols:
            return
        self.curated.add(metric)
        unit, scale = _rate_unit(cols[0])
        series = tuple(
            Series(label, "rate", self.names(group), scale=scale) for label, group in self.grouped(cols, key).items()
        )
        self.add(section, Chart(f"{section}.{_slug(metric)}", title, "line", unit, series, top))

    def per_cpu(self, section: str, metric: str, title: str, exclude: set[str] | None = None) -> None:
        cols = [c for c in self.by_metric.get(metric, []) if "id" in c.labels]
        cols = [c for c in cols if c.labels.get("state") not in (exclude or set())]
        ids = sorted({c.labels["id"] for c in cols}, key=lambda v: (len(v), v))
        if len(ids) < 2:
            return
        unit, scale = _rate_unit(cols[0])
        unit, scale = ("percent", scale * 100) if unit == "cores" else (unit, scale)
        series = tuple(
            Series(f"cpu {i}", "rate", self.names(c for c in cols if c.labels["id"] == i), scale=scale) for i in ids
        )
        self.add(section, Chart(f"{section}.{_slug(metric)}-per-cpu", title, "cpu_heatmap", unit, series))


def _cpu_charts(p: _Planner) -> None:
    usage = p.by_metric.get("cpu_usage", [])
    if usage:
        states = {c.labels.get("state", "") for c in usage}
        busy = p.names(c for c in usage if c.labels.get("state") not in BUSY_EXCLUDED)
        if "idle" in states:
            capacity = p.names(c for c in usage if c.labels.get("state") not in CAPACITY_EXCLUDED)
            line = Series("busy", "ratio", busy, capacity, 100.0)
            p.add("overview", Chart("overview.cpu", "CPU utilisation", "line", "percent", (line,)))
            by_state = tuple(
                Series(s, "ratio", p.names(g), capacity, 100.0)
                for s, g in p.grouped(usage, "state").items() if s not in CAPACITY_EXCLUDED | {"idle"}
            )
            p.add("cpu", Chart("cpu.usage-by-state", "CPU usage by state", "line", "percent", by_state))
        else:
            line = Series("busy", "rate", busy, scale=1e-9)
            p.add("overview", Chart("overview.cpu", "CPU busy", "line", "cores", (line,)))
            p.rates("cpu", "cpu_usage", "CPU usage by state", key="state")
        p.curated.add("cpu_usage")
        p.per_cpu("cpu", "cpu_usage", "CPU utilisation per CPU", exclude=BUSY_EXCLUDED)
    ins, cyc = p.by_metric.get("cpu_instructions", []), p.by_metric.get("cpu_cycles", [])
    if ins and cyc:
        ipc = Chart("overview.ipc", "Instructions per cycle", "line", "ratio",
                    (Series("IPC", "ratio", p.names(ins), p.names(cyc)),))
        p.add("overview", ipc)
        p.add("cpu", Chart("cpu.ipc", "Instructions per cycle", "line", "ratio", ipc.series))


def _overview(p: _Planner) -> None:
    p.heatmap("overview", "scheduler_runqueue_latency", "Runqueue latency")
    if p.by_metric.get("syscall"):
        total = Series("syscalls", "rate", p.names(p.by_metric["syscall"]))
        p.add("overview", Chart("overview.syscalls", "Syscall rate", "line", "syscalls/s", (total,)))
    for metric, title in (("blockio_bytes", "Block IO throughput"), ("blockio_operations", "Block IO operations")):
        if p.by_metric.get(metric):
            unit, scale = _rate_unit(p.by_metric[metric][0])
            groups = p.grouped(p.by_metric[metric], "op")
            series = tuple(Series(op, "rate", p.names(g), scale=scale) for op, g in groups.items())
            p.add("overview", Chart(f"overview.{_slug(metric)}", title, "line", unit, series))
            break
    if p.by_metric.get("network_bytes"):
        series = tuple(
            Series(d, "rate", p.names(g)) for d, g in p.grouped(p.by_metric["network_bytes"], "direction").items()
        )
        p.add("overview", Chart("overview.network", "Network throughput", "line", "bytes/s", series))


def _histogram_family(p: _Planner, section: str, metric: str, title: str) -> None:
    cols = p.by_metric.get(metric, [])
    if not cols:
        return
    p.heatmap(section, metric, title)
    groups = p.grouped(cols)
    if len(groups) > 1:
        unit = "ns" if cols[0].unit == "nanoseconds" else cols[0].unit
        series = tuple(Series(f"{label} p99", "percentile", p.names(g), percentile=99.0) for label, g in groups.items())
        p.add(section, Chart(f"{section}.{_slug(metric)}-p99", f"{title}: p99 by label", "line", unit, series))


def _per_cgroup_rates(p: _Planner, cid: str, title: str, cols: list[Column]) -> None:
    """One line per cgroup (``name``), each the summed rate of the given columns (top N)."""
    if not cols:
        return
    unit, scale = _rate_unit(cols[0])
    series = tuple(Series(n, "rate", p.names(g), scale=scale) for n, g in p.grouped(cols, "name").items())
    p.add("containers", Chart(f"containers.{cid}", f"{title} (top {TOP_N})", "line", unit, series, TOP_N))


def _per_cgroup_gauges(p: _Planner, metric: str, title: str) -> None:
    cols = p.by_metric.get(metric, [])
    if cols:
        series = tuple(Series(n, "gauge", p.names(g)) for n, g in p.grouped(cols, "name").items())
        p.add("containers", Chart(f"containers.{_slug(metric)}", f"{title} (top {TOP_N})", "line", cols[0].unit,
                                  series, TOP_N))
        p.curated.add(metric)


def _container_resources(p: _Planner) -> None:
    """Throttling, memory and pressure per cgroup first, then CPU time split by its two sources."""
    _per_cgroup_rates(p, "cgroup_cpu_bandwidth_throttled_time", "CPU throttled time per cgroup",
                      p.cols("cgroup_cpu_bandwidth_throttled_time"))
    _per_cgroup_rates(p, "cgroup_cpu_bandwidth_throttled_periods", "Throttled periods per cgroup",
                      p.cols("cgroup_cpu_bandwidth_throttled_periods"))
    _per_cgroup_gauges(p, "cgroup_memory_current", "Memory per cgroup")
    _per_cgroup_gauges(p, "cgroup_memory_limit", "Memory limit per cgroup (0 = none)")
    _per_cgroup_rates(p, "cgroup_memory_oom_kill", "OOM kills per cgroup",
                      p.cols("cgroup_memory_events", event="oom_kill"))
    for resource in ("cpu", "memory", "io"):
        _per_cgroup_rates(p, f"cgroup_pressure_{resource}", f"{resource.upper()} pressure (some) per cgroup",
                          p.cols("cgroup_pressure_stall_time", resource=resource, kind="some"))
    # cgroup_cpu_usage has two sources: user/system (state label) and sched_switch on-CPU time (none);
    # summing both per cgroup would count CPU time twice.
    usage = p.by_metric.get("cgroup_cpu_usage", [])
    split = [c for c in usage if c.labels.get("state")]
    oncpu = [c for c in usage if not c.labels.get("state")]
    _per_cgroup_rates(p, "cgroup_cpu_usage", "cpu usage per cgroup", split or oncpu)
    if split:
        _per_cgroup_rates(p, "cgroup_cpu_usage-oncpu", "on-CPU time per cgroup (sched_switch)", oncpu)
    p.curated.update(("cgroup_cpu_bandwidth_throttled_time", "cgroup_cpu_bandwidth_throttled_periods",
                      "cgroup_memory_events", "cgroup_pressure_stall_time", "cgroup_cpu_usage"))
    events = p.by_metric.get("cgroup_memory_events", [])
    for event in sorted({c.labels.get("event", "") for c in events} - {"oom_kill"}):
        _per_cgroup_rates(p, f"cgroup_memory_events-{event}", f"Memory {event} events per cgroup",
                          p.cols("cgroup_memory_events", event=event))


def _containers(p: _Planner) -> None:
    _container_resources(p)
    for metric in [m for m in p.by_metric if m.startswith("cgroup_") and m not in p.curated]:
        cols = p.by_metric[metric]
        title = metric.removeprefix("cgroup_").replace("_", " ")
        if cols[0].type == "counter":
            p.rates("containers", metric, f"{title} per cgroup (top {TOP_N})", key="name", top=TOP_N)
        elif cols[0].type == "gauge":
            series = tuple(Series(n, "gauge", p.names(g)) for n, g in p.grouped(cols, "name").items())
            p.add("containers", Chart(f"containers.{_slug(metric)}", f"{title} per cgroup (top {TOP_N})",
                                      "line", cols[0].unit, series, TOP_N))
        else:
            unit = "ns" if cols[0].unit == "nanoseconds" else cols[0].unit
            groups = p.grouped(cols, "name")
            series = tuple(Series(n, "percentile", p.names(g), percentile=99.0) for n, g in groups.items())
            p.add("containers", Chart(f"containers.{_slug(metric)}", f"{title} p99 per cgroup (top {TOP_N})",
                                      "line", unit, series, TOP_N))
        p.curated.add(metric)


def _generic(p: _Planner) -> None:
    for metric, cols in p.by_metric.items():
        if metric in p.curated:
            continue
        section = section_of(metric)
        title = metric.replace("_", " ")
        if cols[0].type == "histogram":
            _histogram_family(p, section, metric, title)
        elif cols[0].type == "counter":
            p.rates(section, metric, title, top=12)
            if section == "cpu":
                p.per_cpu(section, metric, f"{title} per CPU")
        else:
            series = tuple(Series(label, "gauge", p.names(g)) for label, g in p.grouped(cols).items())
            p.add(section, Chart(f"{section}.{_slug(metric)}", title, "line", cols[0].unit, series, 12))


def plan(columns: Iterable[Column]) -> Dashboard:
    """Plan every section and chart for the given series columns."""
    p = _Planner(columns)
    _cpu_charts(p)
    _overview(p)
    p.heatmap("scheduler", "scheduler_runqueue_latency", "Runqueue latency")
    for metric, title in (("syscall_latency", "Syscall latency"), ("blockio_latency", "Block IO latency"),
                          ("blockio_size", "Block IO size")):
        _histogram_family(p, section_of(metric), metric, title)
    p.rates("syscall", "syscall", "Syscalls by family", key="op")
    memory = [m for m in ("memory_total", "memory_available", "memory_free", "memory_cached", "memory_buffers")
              if p.by_metric.get(m)]
    if memory:
        series = tuple(Series(m.removeprefix("memory_"), "gauge", p.names(p.by_metric[m])) for m in memory)
        p.add("memory", Chart("memory.usage", "Memory", "line", "bytes", series))
        p.curated.update(memory)
    _containers(p)
    _generic(p)
    return p.dash
