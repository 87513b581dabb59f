"""cgroup_resources: CPU bandwidth and time, memory, block IO and pressure of every tracked cgroup.

Reads the cgroup interface files (``cgreader``: v2, v1 or hybrid, one source
per value) of up to ``max_cgroups`` cgroups under ``<sys>/fs/cgroup``.
Emits, labelled ``name`` (+ container/pod labels, see ``cgnames``):
``cgroup_cpu_bandwidth_quota``, ``cgroup_cpu_bandwidth_period_duration``
(gauges, ns; quota 0 = unlimited), ``cgroup_cpu_bandwidth_periods``,
``cgroup_cpu_bandwidth_throttled_periods``, ``cgroup_cpu_bandwidth_throttled_time``
(counters), ``cgroup_cpu_usage{state=user|system}`` (counter, ns),
``cgroup_memory_current``, ``cgroup_memory_limit`` (0 = unlimited),
``cgroup_memory_swap_current`` (gauges, bytes), ``cgroup_memory_events{event}``,
``cgroup_blockio_bytes{op}``, ``cgroup_blockio_operations{op}`` and
``cgroup_pressure_stall_time{resource,kind}`` (counters).

Invariants:
- The files are read at most once per ``interval`` (default 1s, its own
  cadence so a fast agent interval does not multiply their cost); frames in
  between repeat the last values read, so every frame carries every series.
- CPU time, throttling and memory in use are read at every read; the files
  of ``cgreader.SLOW`` (bandwidth and memory limits, memory event counters,
  block IO, swap, pressure) at most once per ``slow_interval`` (default 10s,
  never faster than ``interval``), and reads in between repeat their values.
  Each value is what its file said when last read.  With 1,000 cgroups the
  per-second reads are 2 files per cgroup on v2 and 4 on v1 instead of 10
  and 12 (docs/performance-history.md, "Hot-path and cgroup-file cost work").
- Between slow reads a cgroup's per-second files are read only when its
  parent's hierarchical CPU time or memory moved (``cgreader.read``); the
  others repeat their last values, so a value is at most ``slow_interval``
  late (docs/metrics.md says when).  Frames still carry every series.
- New cgroups are found by walking the hierarchies at most every
  ``rescan_interval`` (default 10s; a walk of 1,000 cgroups costs about as
  much as reading them); the v2 walk is shared with the BPF samplers when they
  run (every 1s).
- A cgroup that could not be read is left out of that read (see ``cgreader``).
- Files stay open between reads up to half the open-file limit (the soft
  limit is raised to the hard one at start); beyond that they are reopened at
  every read, which costs more but reads the same values.
- ``cgroup_cpu_usage`` without ``state`` is the sched_switch on-CPU time of
  ``scheduler_runqueue``; this sampler's series always carry ``state``.
"""

from __future__ import annotations

import contextlib
import errno
import resource
import time
from typing import TYPE_CHECKING

import numpy as np

from rezolus_agent import cgreader
from rezolus_agent.cgroups import CgroupIndex, CgroupLabeler, cgroup2_mount
from rezolus_agent.sampler import ProcSampler, SamplerUnavailable
from rezolus_core import log

if TYPE_CHECKING:
    from pathlib import Path

    from rezolus_agent.series import FrameBuilder

GAUGE, COUNTER = "gauge", "counter"
CPU_USAGE_TEXT = ("CPU time of the tasks of a cgroup: on-CPU time from sched_switch (no state label), "
                  "or user/system time from the cgroup's CPU accounting (state label).")
# canonical key -> (type, metric, extra labels, unit, description)
SERIES: dict[str, tuple[str, str, dict[str, str], str, str]] = {
    "quota": (GAUGE, "cgroup_cpu_bandwidth_quota", {}, "nanoseconds",
              "CPU time the cgroup may use per bandwidth period (0 = unlimited)."),
    "period": (GAUGE, "cgroup_cpu_bandwidth_period_duration", {}, "nanoseconds", "CPU bandwidth period length."),
    "periods": (COUNTER, "cgroup_cpu_bandwidth_periods", {}, "periods",
                "Bandwidth periods that elapsed while the cgroup had runnable tasks."),
    "throttled_periods": (COUNTER, "cgroup_cpu_bandwidth_throttled_periods", {}, "periods",
                          "Bandwidth periods in which the cgroup was throttled."),
    "throttled_time": (COUNTER, "cgroup_cpu_bandwidth_throttled_time", {}, "nanoseconds",
                       "Time the cgroup's tasks were throttled by its CPU quota."),
    "user": (COUNTER, "cgroup_cpu_usage", {"state": "user"}, "nanoseconds", CPU_USAGE_TEXT),
    "system": (COUNTER, "cgroup_cpu_usage", {"state": "system"}, "nanoseconds", CPU_USAGE_TEXT),
    "memory_current": (GAUGE, "cgroup_memory_current", {}, "bytes", "Memory charged to the cgroup."),
    "memory_limit": (GAUGE, "cgroup_memory_limit", {}, "bytes", "The cgroup's memory limit (0 = unlimited)."),
    "swap_current": (GAUGE, "cgroup_memory_swap_current", {}, "bytes", "Swap used by the cgroup."),
    **{f"event_{e}": (COUNTER, "cgroup_memory_events", {"event": e}, "events",
                      "Memory events of the cgroup (limit hits, OOMs, OOM kills).")
       for e in ("low", "high", "max", "oom", "oom_kill")},
    **{f"io_{op}_bytes": (COUNTER, "cgroup_blockio_bytes", {"op": op}, "bytes",
                          "Bytes the cgroup read/wrote on block devices (all devices).")
       for op in ("read", "write")},
    **{f"io_{op}_ops": (COUNTER, "cgroup_blockio_operations", {"op": op}, "operations",
                        "Block IO operations of the cgroup (all devices).")
       for op in ("read", "write")},
    **{f"{r}_{k}": (COUNTER, "cgroup_pressure_stall_time", {"resource": r, "kind": k}, "nanoseconds",
                    "Time tasks of the cgroup stalled on a resource (PSI total; some = at least one, full = all).")
       for r in ("cpu", "memory", "io") for k in ("some", "full")},
}


def fd_budget() -> int:
    """How many cgroup files may stay open: half the open-file limit, raised to its hard limit first."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if want > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
    return max(0, soft // 2 - 256)


def psi_status(proc: Path) -> str:
    """'' when the kernel has pressure stall information, else why not."""
    try:
        (proc / "pressure" / "cpu").read_bytes()
    except FileNotFoundError:
        return f"{proc}/pressure is missing (kernel built without CONFIG_PSI)"
    except OSError as exc:
        if exc.errno == errno.EOPNOTSUPP:
            return "PSI is disabled (psi=0 on the kernel command line)"
        return f"cannot read {proc}/pressure/cpu: {exc.strerror}"
    return ""


class CgroupResources(ProcSampler):
    """Resource accounting of every tracked cgroup from its interface files."""

    name = "cgroup_resources"
    clock = staticmethod(time.monotonic_ns)

    def options(self) -> None:
        """``max_cgroups`` (1024), ``interval`` (files read, 1s), ``slow_interval`` (10s), ``rescan_interval`` (10s)."""
        self.max_cgroups = self.ctx.options.integer("max_cgroups", 1024, minimum=1, maximum=65536)
        self.read_interval_ns = self.ctx.options.duration("interval", "1s", minimum_ns=10_000_000)
        self.slow_interval_ns = self.ctx.options.duration("slow_interval", "10s", minimum_ns=10_000_000)
        self.rescan_ns = self.ctx.options.duration("rescan_interval", "10s", minimum_ns=100_000_000)

    def start(self) -> None:
        """Find the hierarchies, plan the files, open the reader."""
        root = self.ctx.sys / "fs" / "cgroup"
        layout = cgreader.discover(root)
        if layout.v2 is None and not layout.v1:
            raise SamplerUnavailable(f"no cgroup v1 or v2 hierarchy under {root}")
        why_not_psi = psi_status(self.ctx.proc)
        specs = cgreader.plan(layout, pressure=not why_not_psi)
        gaps = [what for what, keys in (("CPU bandwidth", {"cpu.max", "cpu.cfs_quota_us"}),
                                        ("memory", {"memory.current", "memory.usage_in_bytes"}),
                                        ("block IO", {"io.stat", "blkio.throttle.io_service_bytes"}))
                if not keys & {s.name for s in specs}]
        reasons = [f"no {', '.join(gaps)} controller in any hierarchy"] if gaps else []
        if why_not_psi:
            reasons.append(f"no pressure: {why_not_psi}")
        self.degraded = "; ".join(reasons)
        index = self.ctx.extra.get("cgroup_index")
        if not isinstance(index, CgroupIndex) or index.mount != layout.v2:
            index = None
            if layout.v2 is not None and cgroup2_mount(self.ctx.proc) == layout.v2:
                index = self.ctx.extra["cgroup_index"] = CgroupIndex(layout.v2)
        self._reader = cgreader.CgroupReader(layout, specs, self.max_cgroups, v2_index=index, fd_budget=fd_budget(),
                                             rescan_s=self.rescan_ns / 1e9)
        labeler = self.ctx.extra.setdefault("cgroup_labeler", CgroupLabeler())
        assert isinstance(labeler, CgroupLabeler)  # noqa: S101 - only cgroups.py and this module store it
        self._labeler = labeler
        self._ids: dict[str, dict[str, tuple[int, bool]]] = {}
        self._owners: dict[int, str] = {}
        self._last_read = -(1 << 62)
        self._last_slow = -(1 << 62)
        self._slow: dict[str, tuple[list[int], list[int], list[int], list[int]]] = {}
        self._fast: dict[str, tuple[list[int], list[int], list[int], list[int]]] = {}
        self._pos: dict[str, tuple[int, int]] = {}
        self._cvals: list[int] = []
        self._gvals: list[int] = []
        self._generation = -1
        self._arrays: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._warned_untracked = False
        self._log = log.get()

    def _series(self, path: str, key: str) -> tuple[int, bool]:
        """(series id, is a gauge) of one value of one cgroup, registered on first sight.

        Two deep paths can share a shortened ``name`` (``.../b/c/d``) and so a
        series; the first cgroup keeps it and the other is not reported (id -1).
        """
        kind, metric, extra, unit, text = SERIES[key]
        labels = {**self._labeler.labels(path), **extra}
        reg = self.ctx.registry
        sid = (reg.gauge if kind == GAUGE else reg.counter)(metric, labels, unit, text)
        owner = self._owners.setdefault(sid, path)
        if owner != path and owner in self._ids:
            self._log.warning("cgroups share a name; only the first is reported", sampler=self.name,
                              name=labels["name"], reported=owner, skipped=path)
            return -1, False
        self._owners[sid] = path
        return sid, kind == GAUGE

    def _entries(self, path: str, values: dict[str, int]) -> tuple[list[int], list[int], list[int], list[int]]:
        """(counter ids, counter values, gauge ids, gauge values) of one cgroup's values."""
        cids: list[int] = []
        cvals: list[int] = []
        gids: list[int] = []
        gvals: list[int] = []
        ids = self._ids.get(path)
        if ids is None:
            ids = self._ids[path] = {}
        for key, value in values.items():
            entry = ids.get(key)
            if entry is None:
                entry = ids[key] = self._series(path, key)
            if entry[0] < 0:
                continue
            if entry[1]:
                gids.append(entry[0])
                gvals.append(value)
            else:
                cids.append(entry[0])
                cvals.append(value)
        return cids, cvals, gids, gvals

    def _read(self, *, slow: bool) -> None:
        reader = self._reader
        found, found_slow = reader.read(slow=slow)
        cached, fast = self._slow, self._fast
        for path in reader.left_out:
            fast.pop(path, None)
        for path, values in found_slow.items():
            cached[path] = self._entries(path, values)
        rebuild = bool(found_slow or reader.left_out) or self._arrays is None
        if reader.generation != self._generation:
            self._generation = reader.generation
            rebuild = True
            for gone in [p for p in self._ids if not reader.tracks(p)]:
                del self._ids[gone]
                cached.pop(gone, None)
                fast.pop(gone, None)
        entries, pos = self._entries, self._pos
        cvals, gvals = self._cvals, self._gvals
        for path, values in found.items():
            now = entries(path, values)
            old = fast.get(path)
            fast[path] = now
            if rebuild:
                continue
            at = pos.get(path)
            if at is None or old is None or old[0] != now[0] or old[2] != now[2]:
                rebuild = True
            else:
                cvals[at[0]:at[0] + len(now[1])] = now[1]
                gvals[at[1]:at[1] + len(now[3])] = now[3]
        if rebuild:
            self._rebuild()
        elif found:
            cids, _, gids, _ = self._arrays  # type: ignore[misc]
            self._arrays = (cids, np.array(cvals, dtype=np.uint64), gids, np.array(gvals, dtype=np.int64))

    def _rebuild(self) -> None:
        """The arrays emitted every frame: per cgroup its per-second values, then its slow ones."""
        reader, cached = self._reader, self._slow
        if reader.untracked and not self._warned_untracked:
            self._warned_untracked = True
            self._log.warning("more cgroups than max_cgroups; the deepest are not read",
                              sampler=self.name, untracked=reader.untracked, max_cgroups=self.max_cgroups)
        cids: list[int] = []
        cvals: list[int] = []
        gids: list[int] = []
        gvals: list[int] = []
        pos: dict[str, tuple[int, int]] = {}
        for path, now in self._fast.items():
            kept = cached[path]
            pos[path] = (len(cids), len(gids))
            cids += now[0]
            cids += kept[0]
            cvals += now[1]
            cvals += kept[1]
            gids += now[2]
            gids += kept[2]
            gvals += now[3]
            gvals += kept[3]
        self._pos = pos
        self._cvals, self._gvals = cvals, gvals
        self._arrays = (np.array(cids, dtype=np.uint32), np.array(cvals, dtype=np.uint64),
                        np.array(gids, dtype=np.uint32), np.array(gvals, dtype=np.int64))

    def sample(self, out: FrameBuilder) -> None:
        """Read the files when ``interval`` has passed, then emit the latest values."""
        now = self.clock()
        slack = min(self.read_interval_ns // 4, 50_000_000)
        if self._arrays is None or now - self._last_read >= self.read_interval_ns - slack:
            self._last_read = now
            slow = now - self._last_slow >= max(self.slow_interval_ns, self.read_interval_ns) - slack
            if slow:
                self._last_slow = now
            self._read(slow=slow)
        assert self._arrays is not None  # noqa: S101 - set just above
        cids, cvals, gids, gvals = self._arrays
        out.counters(cids, cvals)
        out.gauges(gids, gvals)

    def close(self) -> None:
        """Close the open cgroup files."""
        self._reader.close()


SAMPLER = CgroupResources
