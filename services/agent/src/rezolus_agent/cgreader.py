"""Reading cgroup resource files of every tracked cgroup, on v2, v1 or hybrid hosts.

Invariants:
- ``discover(root)`` takes the cgroup root (``/sys/fs/cgroup`` or a fixture
  tree): the root itself is v2 when it has ``cgroup.controllers``; otherwise
  each child directory is a v1 hierarchy (controllers told by their files,
  ``cpu,cpuacct`` style co-mounts included) or the hybrid v2 mount.
- ``plan`` picks one source per kind of value: v2 files when the v2 root has
  the controller, else the v1 hierarchy; CPU user/system time comes from v1
  cpuacct when mounted, else v2 ``cpu.stat``; pressure is v2 only.  So a
  value is never reported twice for one cgroup path.
- Cgroups are identified by their path below the hierarchy root; a path found
  in several hierarchies is one cgroup.  Hierarchies are walked for new
  cgroups at most every ``rescan_s`` (the v2 walk may be the BPF samplers'
  shared one); a removed cgroup is dropped at its first failed read.  At most ``capacity`` paths are read,
  shallowest first (the order the BPF samplers' slot tables use).
- Files stay open between reads (``pread`` at offset 0 re-generates a kernfs
  file), several times cheaper than open/read/close, for at most ``fd_budget``
  files; the files of cgroups beyond the budget are opened, read and closed
  at every read.  A file that does not exist in a cgroup (the v2 root has no
  ``memory.current``) is simply not read.
- A cgroup whose read fails (removed, unreadable, unparseable) is left out of
  that read whole, never half-reported; each cause (file and error) is logged
  once per reader, not once per frame.
- Two cadences: ``read(slow=False)`` skips the files of ``SLOW`` (settings,
  rare-event counters, block IO, swap, pressure) of cgroups already read
  once; the caller repeats their last values.  Per-second and slow values are
  returned apart, so a caller can keep the slow ones without re-handling
  them every second.  v1 swap (``memsw`` minus usage) is derived from the
  usage read in the same pass.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rezolus_agent import cgfiles
from rezolus_agent.cgroups import CgroupIndex
from rezolus_core import log

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

V1_MARKERS = {"cpu": "cpu.cfs_quota_us", "cpuacct": "cpuacct.usage", "memory": "memory.usage_in_bytes",
              "blkio": "blkio.throttle.io_service_bytes"}
_GONE = (errno.ENODEV, errno.ENOENT)
_CHUNK = 4096


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
    """

    name: str
    hierarchy: str
    parse: Callable[[bytes], dict[str, int]]
    slow: bool = False


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
    return [FileSpec(s.name, s.hierarchy, s.parse, slow=s.name in SLOW) for s in specs]


class _Cgroup:
    __slots__ = ("blocked", "files", "path", "slow_read")

    def __init__(self, path: str) -> None:
        self.path = path
        self.files: list[tuple[int, FileSpec, Path]] = []
        self.blocked: list[tuple[Path, FileSpec]] = []
        self.slow_read = False  # its slow files were read at least once

    def close(self) -> int:
        """Close the held files; returns how many were held."""
        held = [fd for fd, _, _ in self.files if fd >= 0]
        for fd in held:
            os.close(fd)
        self.files = []
        return len(held)


class CgroupReader:
    """Reads the planned files of up to ``capacity`` cgroups of a layout."""

    def __init__(self, layout: Layout, specs: list[FileSpec], capacity: int, *,
                 v2_index: CgroupIndex | None = None, fd_budget: int = 1 << 30, rescan_s: float = 1.0) -> None:
        self.layout = layout
        self.fd_budget = fd_budget
        self.open_fds = 0
        self.specs = specs
        self.capacity = capacity
        self.untracked = 0
        self._roots = {"v2": layout.v2, **layout.v1} if layout.v2 else dict(layout.v1)
        wanted = {s.hierarchy for s in specs}
        indexes: dict[Path, CgroupIndex] = {}
        for name, root in self._roots.items():
            if name in wanted and root is not None and root.resolve() not in indexes:
                index = v2_index if name == "v2" and v2_index is not None else CgroupIndex(root, rescan_s)
                indexes[root.resolve()] = index
        self._indexes = list(indexes.values())
        self._seen: list[dict[int, str]] = []
        self._cgroups: dict[str, _Cgroup] = {}
        self._warned: set[tuple[str, str]] = set()
        self._log = log.get()

    def _warn(self, spec: FileSpec, cause: str, path: str) -> None:
        if (spec.name, cause) not in self._warned:
            self._warned.add((spec.name, cause))
            self._log.warning("cgroup file skipped", file=spec.name, cause=cause, cgroup=path,
                              note="further cgroups with this cause are skipped silently")

    def _refresh(self) -> None:
        seen = [index.refresh() for index in self._indexes]
        if len(seen) == len(self._seen) and all(a is b for a, b in zip(seen, self._seen, strict=True)):
            return
        self._seen = seen
        paths = sorted({p for found in seen for p in found.values()}, key=lambda p: (p.count("/"), p))
        tracked = paths[: self.capacity]
        keep = set(tracked)
        self.untracked = max(0, len(paths) - self.capacity)
        for path in [p for p in self._cgroups if p not in keep]:
            self.open_fds -= self._cgroups.pop(path).close()
        for path in tracked:
            cgroup = self._cgroups.get(path)
            if cgroup is None or not (cgroup.files or cgroup.blocked):
                self._cgroups[path] = self._open(path)

    def _open(self, path: str) -> _Cgroup:
        cgroup = _Cgroup(path)
        rel = path.lstrip("/")
        for spec in self.specs:
            root = self._roots.get(spec.hierarchy)
            if root is None:
                continue
            file = root / rel / spec.name
            try:
                fd = os.open(file, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            except OSError as exc:
                cgroup.blocked.append((file, spec))
                self._warn(spec, errno.errorcode.get(exc.errno or 0, str(exc)), path)
                continue
            cgroup.files.append(self._hold(fd, spec, file))
        return cgroup

    def _hold(self, fd: int, spec: FileSpec, file: Path) -> tuple[int, FileSpec, Path]:
        """Keep ``fd`` open if the budget allows, else close it (the file is then opened at each read)."""
        if self.open_fds < self.fd_budget:
            self.open_fds += 1
            return fd, spec, file
        os.close(fd)
        return -1, spec, file

    def _forget(self, cgroup: _Cgroup) -> None:
        """Drop a removed cgroup now; the next rescan reopens it if its path is back (a restarted unit)."""
        self.open_fds -= cgroup.close()
        self._cgroups.pop(cgroup.path, None)
        self._seen = []

    def _retry_blocked(self, cgroup: _Cgroup) -> bool:
        """Open files that failed before; True when none is still blocked."""
        still: list[tuple[Path, FileSpec]] = []
        for file, spec in cgroup.blocked:
            try:
                fd = os.open(file, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            except OSError:
                still.append((file, spec))
                continue
            cgroup.files.append(self._hold(fd, spec, file))
        cgroup.blocked = still
        return not still

    @staticmethod
    def _pread(held: int, file: Path) -> bytes:
        """The file's content, through its held descriptor or (beyond the budget) a fresh one."""
        fd = held if held >= 0 else os.open(file, os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = os.pread(fd, _CHUNK, 0)
            return os.pread(fd, 1 << 20, 0) if len(data) == _CHUNK else data
        finally:
            if held < 0:
                os.close(fd)

    def _read_one(self, cgroup: _Cgroup, *, slow: bool) -> tuple[dict[str, int], dict[str, int] | None] | None:
        slow = slow or not cgroup.slow_read
        values: dict[str, int] = {}
        slow_values: dict[str, int] = {}
        for i, (held, spec, file) in enumerate(cgroup.files):
            if spec.slow and not slow:
                continue
            try:
                data = os.pread(held, _CHUNK, 0) if held >= 0 else self._pread(held, file)
                if len(data) == _CHUNK:
                    data = self._pread(held, file)
                (slow_values if spec.slow else values).update(spec.parse(data))
            except OSError as exc:
                if exc.errno in _GONE:
                    self._forget(cgroup)
                    self._warn(spec, "removed", cgroup.path)
                else:
                    self._warn(spec, errno.errorcode.get(exc.errno or 0, str(exc)), cgroup.path)
                    self._block(cgroup, i)
                return None
            except ValueError as exc:
                self._warn(spec, f"unparseable: {exc}", cgroup.path)
                return None
        if not slow:
            return values, None
        memsw = slow_values.pop("memsw_current", None)
        if memsw is not None and "memory_current" in values:
            slow_values["swap_current"] = max(0, memsw - values["memory_current"])
        cgroup.slow_read = True
        return values, slow_values

    def _block(self, cgroup: _Cgroup, i: int) -> None:
        """Close a file that failed to read; it is reopened at the next read."""
        held, spec, file = cgroup.files.pop(i)
        if held >= 0:
            os.close(held)
            self.open_fds -= 1
        cgroup.blocked.append((file, spec))

    def read(self, *, slow: bool = True) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
        """(path → values of the per-second files, path → values of the slow files) of the cgroups that read cleanly.

        Every cgroup that read cleanly is in the first; it is in the second
        when its slow files were read now: always with ``slow``, else only
        when it is new (a cgroup reads its slow files at once when first seen).
        """
        self._refresh()
        found: dict[str, dict[str, int]] = {}
        found_slow: dict[str, dict[str, int]] = {}
        for path, cgroup in list(self._cgroups.items()):
            if cgroup.blocked and not self._retry_blocked(cgroup):
                continue
            got = self._read_one(cgroup, slow=slow)
            if got is not None:
                found[path] = got[0]
                if got[1] is not None:
                    found_slow[path] = got[1]
        return found, found_slow

    def tracks(self, path: str) -> bool:
        """Whether ``path`` is among the cgroups read."""
        return path in self._cgroups

    def close(self) -> None:
        """Close every open file."""
        for cgroup in self._cgroups.values():
            cgroup.close()
        self._cgroups.clear()
        self.open_fds = 0
        self._seen = []
