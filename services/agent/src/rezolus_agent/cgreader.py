"""Reading cgroup resource files of every tracked cgroup, on v2, v1 or hybrid hosts.

Invariants:
- Layouts and the plan of files are ``cgplan``'s (re-exported here).
- Cgroups are identified by their path below the hierarchy root; a path found
  in several hierarchies is one cgroup.  Hierarchies are walked for new
  cgroups at most every ``rescan_s`` (the v2 walk may be the BPF samplers'
  shared one); a removed cgroup is dropped at its first failed read.  At most
  ``capacity`` paths are read, shallowest first (the order the BPF samplers'
  slot tables use), and parents before children.
- Files stay open between reads (``pread`` at offset 0 re-generates a kernfs
  file), several times cheaper than open/read/close, for at most ``fd_budget``
  files; the files of cgroups beyond the budget are opened, read and closed
  at every read.  A file that does not exist in a cgroup (the v2 root has no
  ``memory.current``) is simply not read.
- A cgroup whose read fails (removed, unreadable, unparseable) is left out of
  that read whole, never half-reported, and its files are all read at its
  next read; each cause (file and error) is logged once per reader, not once
  per frame.
- Two cadences: ``read(slow=False)`` skips the files of ``SLOW`` (settings,
  rare-event counters, block IO, swap, pressure) of cgroups already read
  once; the caller repeats their last values.  Per-second and slow values are
  returned apart, so a caller can keep the slow ones without re-handling
  them every second.  v1 swap (``memsw`` minus usage) is derived from the
  usage read in the same pass.
- Activity pruning of the per-second files (``read``): CPU time and memory in
  use are hierarchical (a parent's include every descendant's, charged in the
  same kernel update), so a cgroup's per-second files are read only when its
  parent's value of the same kind, in the same hierarchy, changed in this
  read.  A change whose effects cancel in the parent (two children's memory
  moving by opposite amounts), or throttling counters that move without CPU
  time moving, is read at the next ``slow`` read at the latest; values
  are cumulative or current, never lost, only late.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

from rezolus_agent.cgplan import SLOW, FileSpec, Layout, discover, plan
from rezolus_agent.cgroups import CgroupIndex
from rezolus_core import log

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["SLOW", "WITNESS", "CgroupReader", "FileSpec", "Layout", "discover", "plan"]

_GONE = (errno.ENODEV, errno.ENOENT)
_CHUNK = 4096


Gate = tuple[str, str]
# The hierarchical values that witness activity below a cgroup, by kind of gate.
WITNESS = {"cpu": ("user", "system"), "memory": ("memory_current",)}


class _Cgroup:
    __slots__ = ("blocked", "files", "fresh", "gates", "gone", "moved", "parent", "parents", "path", "quota", "sig",
                 "slow_read", "values")

    def __init__(self, path: str) -> None:
        self.path = path
        self.files: list[tuple[int, FileSpec, Path, Gate | None]] = []
        self.blocked: list[tuple[Path, FileSpec]] = []
        self.slow_read = False  # its slow files were read at least once
        self.fresh = True  # read every per-second file next time (new, or its last read failed)
        self.gone = False
        self.parent: _Cgroup | None = None
        self.parents = False  # some tracked cgroup is its child (only then are its witness values kept)
        self.values: dict[str, int] = {}  # the per-second values last read
        self.sig: dict[Gate, tuple[int, ...]] = {}  # witness values last read, per gate
        self.moved: dict[Gate, int] = {}  # per gate with a witness: the read in which it last changed
        self.quota: int | None = None
        self.gates: list[tuple[Gate, bool]] = []  # (gate, throttling only) of its per-second files

    def idle(self, now: int) -> bool:
        """Whether no per-second file is due: every one is gated by a parent's witness that did not move now."""
        parent = self.parent
        if parent is None or parent.gone:
            return False
        moved = parent.moved
        for gate, bandwidth in self.gates:
            if bandwidth and self.quota == 0:
                continue
            at = moved.get(gate)
            if at is None or at == now:
                return False
        return True

    def close(self) -> int:
        """Close the held files; returns how many were held."""
        held = [fd for fd, _, _, _ in self.files if fd >= 0]
        for fd in held:
            os.close(fd)
        self.files = []
        return len(held)

    def wants(self, spec: FileSpec, gate: Gate, now: int) -> bool:
        """Whether a per-second file must be read now (see ``CgroupReader.read``)."""
        if spec.activity == "bandwidth" and self.quota == 0:
            return False
        parent = self.parent
        if parent is None or parent.gone:
            return True
        moved = parent.moved.get(gate)
        return moved is None or moved == now


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
        self._gate_roots = {name: str(root.resolve()) for name, root in self._roots.items() if root is not None}
        witness = {self._gate(s): WITNESS[s.activity] for s in specs
                   if s.activity in WITNESS and s.hierarchy in self._gate_roots and self._hierarchical(s)}
        self._witness = [(gate, keys) for gate, keys in witness.items() if gate is not None]
        wanted = {s.hierarchy for s in specs}
        indexes: dict[Path, CgroupIndex] = {}
        for name, root in self._roots.items():
            if name in wanted and root is not None and root.resolve() not in indexes:
                index = v2_index if name == "v2" and v2_index is not None else CgroupIndex(root, rescan_s)
                indexes[root.resolve()] = index
        self._indexes = list(indexes.values())
        self._seen: list[dict[int, str]] = []
        self._cgroups: dict[str, _Cgroup] = {}
        self._order: list[_Cgroup] = []
        self._now = 0
        self.generation = 0
        self.left_out: list[str] = []
        self._warned: set[tuple[str, str]] = set()
        self._log = log.get()

    def _hierarchical(self, spec: FileSpec) -> bool:
        """Whether a witness file is hierarchical: v1 memory is not under ``memory.use_hierarchy`` 0 (before 5.11)."""
        if spec.hierarchy != "memory":
            return True
        try:
            return (self._roots["memory"] / "memory.use_hierarchy").read_bytes().strip() != b"0"
        except OSError:
            return True

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
            self._drop(self._cgroups.pop(path))
        for path in tracked:
            cgroup = self._cgroups.get(path)
            if cgroup is None or not (cgroup.files or cgroup.blocked):
                if cgroup is not None:
                    self._drop(cgroup)
                self._cgroups[path] = self._open(path)
        cgroups = self._cgroups
        for path in tracked:
            cgroups[path].parents = False
        for path in tracked:
            cgroup = cgroups[path]
            cgroup.parent = None if path == "/" else cgroups.get(path.rsplit("/", 1)[0] or "/")
            if cgroup.parent is not None:
                cgroup.parent.parents = True
        self._order = [cgroups[p] for p in tracked]
        self.generation += 1

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
        self._gates(cgroup)
        return cgroup

    @staticmethod
    def _gates(cgroup: _Cgroup) -> None:
        cgroup.gates = list({(gate, spec.activity == "bandwidth") for _, spec, _, gate in cgroup.files if gate})

    def _gate(self, spec: FileSpec) -> Gate | None:
        if not spec.activity:
            return None
        return self._gate_roots[spec.hierarchy], "memory" if spec.activity == "memory" else "cpu"

    def _hold(self, fd: int, spec: FileSpec, file: Path) -> tuple[int, FileSpec, Path, Gate | None]:
        """Keep ``fd`` open if the budget allows, else close it (the file is then opened at each read)."""
        if self.open_fds < self.fd_budget:
            self.open_fds += 1
            return fd, spec, file, self._gate(spec)
        os.close(fd)
        return -1, spec, file, self._gate(spec)

    def _drop(self, cgroup: _Cgroup) -> None:
        self.open_fds -= cgroup.close()
        cgroup.gone = True

    def _forget(self, cgroup: _Cgroup) -> None:
        """Drop a removed cgroup now; the next rescan reopens it if its path is back (a restarted unit)."""
        self._drop(cgroup)
        self._cgroups.pop(cgroup.path, None)
        self._seen = []
        self.generation += 1

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
        self._gates(cgroup)
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

    def _read_files(self, cgroup: _Cgroup, *, slow: bool, every: bool) -> tuple[dict[str, int], ...] | None:
        """(per-second values, slow values) of the files due now; None when one failed (then left out)."""
        values: dict[str, int] = {}
        slow_values: dict[str, int] = {}
        for i, (held, spec, file, gate) in enumerate(cgroup.files):
            if spec.slow:
                if not slow:
                    continue
            elif not every and gate is not None and not cgroup.wants(spec, gate, self._now):
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
                self._failed(cgroup)
                return None
            except ValueError as exc:
                self._warn(spec, f"unparseable: {exc}", cgroup.path)
                self._failed(cgroup)
                return None
        return values, slow_values

    def _read_one(self, cgroup: _Cgroup, *, slow: bool) -> tuple[dict[str, int], dict[str, int] | None] | None:
        """(per-second values, slow values or None) when any file was read; None when none was or the read failed."""
        slow = slow or not cgroup.slow_read
        every = slow or cgroup.fresh
        got = self._read_files(cgroup, slow=slow, every=every)
        if got is None:
            return None
        values, slow_values = got
        for gate, witness in self._witness if cgroup.parents else ():
            sig = tuple([values[k] for k in witness if k in values])
            if sig and cgroup.sig.get(gate) != sig:
                cgroup.sig[gate] = sig
                cgroup.moved[gate] = self._now
        cgroup.fresh = False
        if every:
            cgroup.values = values
        elif values:
            cgroup.values.update(values)
        else:
            return None
        if not slow:
            return cgroup.values, None
        memsw = slow_values.pop("memsw_current", None)
        if memsw is not None and "memory_current" in values:
            slow_values["swap_current"] = max(0, memsw - values["memory_current"])
        cgroup.quota = slow_values.get("quota")
        cgroup.slow_read = True
        return cgroup.values, slow_values

    def _failed(self, cgroup: _Cgroup) -> None:
        """A cgroup left out of this read: read in full next time; its children are read now."""
        cgroup.fresh = True
        for gate in cgroup.moved:
            cgroup.moved[gate] = self._now
        self.left_out.append(cgroup.path)

    def _block(self, cgroup: _Cgroup, i: int) -> None:
        """Close a file that failed to read; it is reopened at the next read."""
        held, spec, file, _ = cgroup.files.pop(i)
        if held >= 0:
            os.close(held)
            self.open_fds -= 1
        cgroup.blocked.append((file, spec))
        self._gates(cgroup)

    def read(self, *, slow: bool = True) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
        """(path → per-second values, path → slow values) of the cgroups read now; ``left_out``: those that failed.

        Cgroups are visited parents first.  A cgroup's per-second files are
        read when it is new, its last read failed, ``slow`` is set, it has no
        tracked parent, or its parent's witness (``WITNESS``: CPU time, memory
        in use; both hierarchical) in the file's hierarchy changed in this
        read; a file whose hierarchy gives the parent no witness is always
        read.  Throttling-only files (v1 ``cpu.stat``) are not read while
        the cgroup's quota is unlimited (the kernel leaves them unchanged).
        A cgroup is in the first map when any of its files was read, with
        all its per-second values (those not read repeat); in the second when
        its slow files were read: always with ``slow``, else only when new.
        A cgroup in neither and not in ``left_out`` is unchanged.
        """
        self._refresh()
        self._now += 1
        self.left_out = []
        found: dict[str, dict[str, int]] = {}
        found_slow: dict[str, dict[str, int]] = {}
        for cgroup in self._order:
            if cgroup.gone or (not slow and not cgroup.fresh and cgroup.idle(self._now)):
                continue
            if cgroup.blocked and not self._retry_blocked(cgroup):
                self._failed(cgroup)
                continue
            got = self._read_one(cgroup, slow=slow)
            if got is not None:
                found[cgroup.path] = got[0]
                if got[1] is not None:
                    found_slow[cgroup.path] = got[1]
        return found, found_slow

    def tracks(self, path: str) -> bool:
        """Whether ``path`` is among the cgroups read."""
        return path in self._cgroups

    def close(self) -> None:
        """Close every open file."""
        for cgroup in self._cgroups.values():
            cgroup.close()
        self._cgroups.clear()
        self._order = []
        self.open_fds = 0
        self._seen = []
