"""Which cgroup interface files to read, from which hierarchy: layouts (v2, v1, hybrid) and the read plan.

Invariants:
- ``discover(root)`` takes the cgroup root (``/sys/fs/cgroup`` or a fixture
  tree): the root itself is v2 when it has ``cgroup.controllers``; otherwise
  each child directory is a v1 hierarchy (controllers told by their files,
  ``cpu,cpuacct`` style co-mounts included) or the hybrid v2 mount.
- ``plan`` picks one source per kind of value: v2 files when the v2 root has
  the controller, else the v1 hierarchy; CPU user/system time comes from v1
  cpuacct when mounted, else v2 ``cpu.stat``; pressure is v2 only.  So a
  value is never reported twice for one cgroup path.
- Each file is either slow (``SLOW``) or per-second with an ``activity``:
  ``cpu`` (CPU time, hierarchical), ``memory`` (memory in use,
  hierarchical) or ``bandwidth`` (throttling counters, the cgroup's own).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rezolus_agent import cgfiles

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

V1_MARKERS = {"cpu": "cpu.cfs_quota_us", "cpuacct": "cpuacct.usage", "memory": "memory.usage_in_bytes",
              "blkio": "blkio.throttle.io_service_bytes"}


@dataclass(frozen=True)
class Layout:
    """Where each hierarchy of a cgroup root is."""

    v2: Path | None = None
    v2_controllers: frozenset[str] = frozenset()
    v1: dict[str, Path] = field(default_factory=dict)


def _controllers(path: Path) -> frozenset[str]:
    try:
        return frozenset((path / "cgroup.controllers").read_text(encoding="ascii").split())
    except OSError:
        return frozenset()


def discover(root: Path) -> Layout:
    """The hierarchies under a cgroup root (pure v2, hybrid, or v1)."""
    if (root / "cgroup.controllers").is_file():
        return Layout(root, _controllers(root))
    v2: Path | None = None
    v1: dict[str, Path] = {}
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir())
    except OSError:
        return Layout()
    for child in children:
        if (child / "cgroup.controllers").is_file():
            v2 = v2 or child
            continue
        for controller, marker in V1_MARKERS.items():
            if controller not in v1 and (child / marker).is_file():
                v1[controller] = child
    return Layout(v2, _controllers(v2) if v2 else frozenset(), v1)


@dataclass(frozen=True)
class FileSpec:
    """One interface file: its name, which hierarchy it lives in (``v2`` or a v1 controller), its parser.

    ``slow``: read only on slow reads (see ``SLOW`` and the module head).
    ``activity``: what gates a per-second file (``cgprune``): ``cpu`` (CPU
    time), ``bandwidth`` (throttling counters alone), ``memory`` (memory in
    use); slow files have none.
    """

    name: str
    hierarchy: str
    parse: Callable[[bytes], dict[str, int]]
    slow: bool = False
    activity: str = ""


# Files read on the slow cadence: settings an operator writes (quota, period,
# memory limit), counters of rare events (memory limit hits, OOM kills), block
# IO, swap and pressure.  CPU time, throttling and memory in use are read at
# every read.
SLOW = frozenset({
    "cpu.max", "cpu.cfs_quota_us", "cpu.cfs_period_us", "memory.max", "memory.limit_in_bytes",
    "memory.swap.current", "memory.memsw.usage_in_bytes", "memory.events", "memory.failcnt", "memory.oom_control",
    "io.stat", "blkio.throttle.io_service_bytes", "blkio.throttle.io_serviced",
    "cpu.pressure", "memory.pressure", "io.pressure",
})


def plan(layout: Layout, *, pressure: bool) -> list[FileSpec]:
    """The files to read in every cgroup, one source per value (see the module head)."""
    v2c, v1 = layout.v2_controllers, layout.v1
    specs: list[FileSpec] = []
    usage_v2 = layout.v2 is not None and "cpuacct" not in v1
    if "cpuacct" in v1:
        specs += [FileSpec("cpuacct.usage_user", "cpuacct", cgfiles.single("user")),
                  FileSpec("cpuacct.usage_sys", "cpuacct", cgfiles.single("system"))]
    if "cpu" in v2c:
        stat = cgfiles.v2_cpu_stat if usage_v2 else cgfiles.v2_cpu_bandwidth
        specs += [FileSpec("cpu.stat", "v2", stat), FileSpec("cpu.max", "v2", cgfiles.v2_cpu_max)]
    else:
        if usage_v2:
            specs.append(FileSpec("cpu.stat", "v2", cgfiles.v2_cpu_usage))
        if "cpu" in v1:
            specs += [FileSpec("cpu.stat", "cpu", cgfiles.v1_cpu_stat),
                      FileSpec("cpu.cfs_quota_us", "cpu", cgfiles.single("quota", unlimited=b"-1", scale=1000)),
                      FileSpec("cpu.cfs_period_us", "cpu", cgfiles.single("period", scale=1000))]
    if "memory" in v2c:
        specs += [FileSpec("memory.current", "v2", cgfiles.single("memory_current")),
                  FileSpec("memory.max", "v2", cgfiles.single("memory_limit", unlimited=b"max")),
                  FileSpec("memory.swap.current", "v2", cgfiles.single("swap_current")),
                  FileSpec("memory.events", "v2", cgfiles.v2_memory_events)]
    elif "memory" in v1:
        specs += [FileSpec("memory.usage_in_bytes", "memory", cgfiles.single("memory_current")),
                  FileSpec("memory.limit_in_bytes", "memory", cgfiles.single("memory_limit", unlimited=b"-1")),
                  FileSpec("memory.memsw.usage_in_bytes", "memory", cgfiles.single("memsw_current")),
                  FileSpec("memory.failcnt", "memory", cgfiles.single("event_max")),
                  FileSpec("memory.oom_control", "memory", cgfiles.v1_oom_control)]
    if "io" in v2c:
        specs.append(FileSpec("io.stat", "v2", cgfiles.v2_io_stat))
    elif "blkio" in v1:
        specs += [FileSpec("blkio.throttle.io_service_bytes", "blkio", cgfiles.v1_blkio("bytes")),
                  FileSpec("blkio.throttle.io_serviced", "blkio", cgfiles.v1_blkio("ops"))]
    if pressure and layout.v2 is not None:
        specs += [FileSpec(f"{r}.pressure", "v2", cgfiles.pressure(r)) for r in ("cpu", "memory", "io")]
    return [FileSpec(s.name, s.hierarchy, s.parse, slow=s.name in SLOW, activity=_activity(s)) for s in specs]


def _activity(spec: FileSpec) -> str:
    if spec.name in SLOW:
        return ""
    if spec.name in ("memory.current", "memory.usage_in_bytes"):
        return "memory"
    if spec.parse in (cgfiles.v1_cpu_stat, cgfiles.v2_cpu_bandwidth):
        return "bandwidth"
    return "cpu"
