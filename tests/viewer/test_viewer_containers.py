"""The Containers section leads with throttling, memory and pressure, and never sums CPU time of two sources."""

from __future__ import annotations

from rezolus_viewer import dashboard
from rezolus_viewer.recording import Column


def col(metric: str, mtype: str, unit: str, **labels: str) -> Column:
    """A recording column of a metric with labels."""
    name = metric + "/" + "/".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return Column(name, metric, mtype, unit, labels)


def test_container_charts_order_and_sources() -> None:
    """Throttling, memory and pressure charts come first; CPU time sources are never summed."""
    columns = []
    for cg in ("/a", "/b"):
        columns += [
            col("cgroup_cpu_usage", "counter", "nanoseconds", name=cg),
            col("cgroup_cpu_usage", "counter", "nanoseconds", name=cg, state="user"),
            col("cgroup_cpu_usage", "counter", "nanoseconds", name=cg, state="system"),
            col("cgroup_cpu_bandwidth_throttled_time", "counter", "nanoseconds", name=cg),
            col("cgroup_memory_current", "gauge", "bytes", name=cg),
            col("cgroup_syscall", "counter", "syscalls", name=cg, op="read"),
            *(col("cgroup_memory_events", "counter", "events", name=cg, event=e) for e in ("max", "oom_kill")),
            *(col("cgroup_pressure_stall_time", "counter", "nanoseconds", name=cg, resource=r, kind=k)
              for r in ("cpu", "memory", "io") for k in ("some", "full")),
        ]
    dash = dashboard.plan(columns)
    charts = next(c for sid, _, c in dash.sections if sid == "containers")
    ids = [c.id for c in charts]
    assert ids[:3] == ["containers.cgroup_cpu_bandwidth_throttled_time", "containers.cgroup_memory_current",
                       "containers.cgroup_memory_oom_kill"]
    assert ids.index("containers.cgroup_pressure_cpu") < ids.index("containers.cgroup_cpu_usage")
    split = dash.charts["containers.cgroup_cpu_usage"]
    assert all("state=" in name for s in split.series for name in s.columns)
    oncpu = dash.charts["containers.cgroup_cpu_usage-oncpu"]
    assert all("state=" not in name for s in oncpu.series for name in s.columns)
    pressure = dash.charts["containers.cgroup_pressure_io"]
    assert [len(s.columns) for s in pressure.series] == [1, 1]
    assert "containers.cgroup_syscall" in ids
    assert len(ids) == len(set(ids))
