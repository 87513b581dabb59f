"""cgroup v2 discovery and bounded slot assignment for per-cgroup BPF counters.

Invariants:
- ``bpf_get_current_cgroup_id()`` is the inode number of the task's cgroup v2
  directory, so walking the cgroup2 mount with ``stat`` maps ids to paths.
- A cgroup is labelled ``name`` = its path, shortened to the last three
  components (``.../b/c/d``) when deeper, as the original does.
- A cgroup leaves the index only when its directory is really gone: a walk
  that races with the removal of a sibling must not drop (and so reset) it.
- At most ``capacity`` cgroups hold a slot.  A slot's row is zeroed before its
  id is published to the BPF hash map, and the id is removed from the map when
  the cgroup disappears, so a reused id or slot never inherits old counts.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rezolus_agent import bpfsys

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


def cgroup2_mount(proc: Path = Path("/proc")) -> Path | None:
    """Where the cgroup v2 hierarchy is mounted, from /proc/self/mountinfo."""
    try:
        lines = (proc / "self" / "mountinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        left, _, right = line.partition(" - ")
        if right.split(" ", 1)[0] == "cgroup2":
            return Path(left.split(" ")[4])
    return None


def display_name(path: str) -> str:
    """The original's ``name`` label: the path, or ``.../`` + its last three components."""
    parts = [p for p in path.split("/") if p]
    if len(parts) <= 3:
        return "/" + "/".join(parts)
    return ".../" + "/".join(parts[-3:])


def scan(mount: Path) -> dict[int, str]:
    """Every cgroup under the mount: inode id → path relative to the mount (``/`` is the root)."""
    found: dict[int, str] = {}
    stack = [(mount, "/")]
    while stack:
        directory, rel = stack.pop()
        try:
            found[directory.stat().st_ino] = rel
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        child = f"{rel.rstrip('/')}/{entry.name}"
                        stack.append((Path(entry.path), child))
        except OSError:
            continue
    return found


@dataclass
class CgroupIndex:
    """A periodically refreshed id → path map shared by the cgroup samplers."""

    mount: Path
    min_refresh_s: float = 1.0
    paths: dict[int, str] = field(default_factory=dict)
    _refreshed_at: float = -1.0e9

    def refresh(self) -> dict[int, str]:
        """Rescan if the last scan is older than ``min_refresh_s``."""
        now = time.monotonic()
        if now - self._refreshed_at >= self.min_refresh_s:
            found = scan(self.mount)
            for cgid, path in self.paths.items():
                if cgid not in found and self._still_there(cgid, path):
                    found[cgid] = path
            self.paths = found
            self._refreshed_at = now
        return self.paths

    def _still_there(self, cgid: int, path: str) -> bool:
        """Whether a cgroup a walk missed still exists (a walk races with siblings being removed)."""
        try:
            return (self.mount / path.lstrip("/")).stat().st_ino == cgid
        except OSError:
            return False


class SlotTable:
    """Assigns cgroups to the slots of one BPF hash map and its counter rows."""

    def __init__(self, hash_fd: int, rows: NDArray[np.uint64], width: int, capacity: int) -> None:
        self._fd = hash_fd
        self._rows = rows
        self._width = width
        self.capacity = capacity
        self.slots: dict[int, int] = {}
        self.untracked = 0
        self._free = list(range(capacity - 1, -1, -1))

    def sync(self, paths: dict[int, str]) -> dict[int, int]:
        """Follow the live cgroups; returns id → slot for those tracked."""
        for cgid in [c for c in self.slots if c not in paths]:
            bpfsys.delete(self._fd, cgid.to_bytes(8, "little"))
            self._free.append(self.slots.pop(cgid))
        self.untracked = 0
        for cgid in sorted(paths, key=lambda c: (paths[c].count("/"), paths[c])):
            if cgid in self.slots:
                continue
            if not self._free:
                self.untracked += 1
                continue
            slot = self._free.pop()
            self._rows[slot * self._width : (slot + 1) * self._width] = 0
            bpfsys.update(self._fd, cgid.to_bytes(8, "little"), slot.to_bytes(4, "little"))
            self.slots[cgid] = slot
        return self.slots
